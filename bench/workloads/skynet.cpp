// SPDX-License-Identifier: Apache-2.0
// skynet: a tree of fibers, fan-out 10; each node makes its own unbuffered channel, spawns its
// children, sums what they send and sends the sum to its parent; leaves send their index.
#include "workload.hpp"

namespace {

void skynet(goro::chan<long> parent, long index, long size) {
  if (size <= 1) {  // n is meant to be a power of 10; smaller pieces are leaves
    parent.send(index);
    return;
  }
  const long child_size = size / 10;
  goro::chan<long> children;
  for (long i = 0; i < 10; ++i) goro::go(skynet, children, index + i * child_size, child_size);
  long sum = 0;
  for (int i = 0; i < 10; ++i) sum += *children.recv();
  parent.send(sum);
}

}  // namespace

int main(int argc, char** argv) {
  const long n = workload::size_arg(argc, argv, 1'000'000);
  goro::runtime rt(workload::runtime_options());
  goro::chan<long> result;
  const workload::stopwatch watch;
  rt.go(skynet, result, 0L, n);
  const long sum = *result.recv();
  const double ms = watch.elapsed_ns() / 1e6;
  return workload::report("skynet", rt.workers(), n, ms, "ms", "%.1f", sum == n * (n - 1) / 2);
}
