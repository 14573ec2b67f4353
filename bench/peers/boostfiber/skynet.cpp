// SPDX-License-Identifier: Apache-2.0
//
// Boost.Fiber peer of goro's skynet workload (WORKLOADS.md): a recursive tree with fan-out 10 in
// which every inner node makes its own unbuffered channel, spawns its children as detached
// fibers, sums what they send and sends the sum to its parent, and every leaf sends its index.
// The tree covers the indices [0, n), so the root's sum must be n(n-1)/2. A node splits its
// range into at most ten nearly equal parts; when n is a power of ten this is the classic tree.

#include "common.hpp"

namespace {

using channel = boost::fibers::unbuffered_channel<std::int64_t>;

constexpr std::int64_t fan_out = 10;

// Sends on `out` the sum of the indices [first, first + count).
void skynet(channel& out, std::int64_t first, std::int64_t count) {
  if (count == 1) {
    out.push(first);
    return;
  }
  const std::int64_t children = std::min(fan_out, count);
  channel in;
  for (std::int64_t i = 0; i < children; ++i) {
    const std::int64_t lo = first + count * i / children;
    const std::int64_t hi = first + count * (i + 1) / children;
    boost::fibers::fiber{[&in, lo, hi] { skynet(in, lo, hi - lo); }}.detach();
  }
  std::int64_t sum = 0;
  for (std::int64_t i = 0; i < children; ++i) {
    sum += in.value_pop();
  }
  out.push(sum);
}

}  // namespace

int main(int argc, char** argv) {
  const unsigned procs = peer::procs_from_env();
  const std::int64_t n = peer::size_from_args(argc, argv, 1'000'000);
  peer::worker_pool pool{procs};

  const peer::stopwatch timer;
  channel root;
  boost::fibers::fiber{[&root, n] { skynet(root, 0, n); }}.detach();
  const std::int64_t sum = root.value_pop();
  const auto elapsed = timer.elapsed();

  return peer::report("skynet", procs, n, peer::millis(elapsed), "ms", sum == n * (n - 1) / 2);
}
