// SPDX-License-Identifier: Apache-2.0
// select: two producers each send n/2 values on their own unbuffered channel; one consumer
// selects over both n times.
#include "workload.hpp"

int main(int argc, char** argv) {
  const long n = workload::size_arg(argc, argv, 1'000'000) / 2 * 2;
  goro::runtime rt(workload::runtime_options());
  goro::chan<long> a, b;
  goro::chan<double> elapsed;
  long total = 0;
  rt.go([=]() mutable {
    for (long i = 0; i < n / 2; ++i) a.send(1);
  });
  rt.go([=]() mutable {
    for (long i = 0; i < n / 2; ++i) b.send(2);
  });
  rt.go([&] {
    const workload::stopwatch watch;
    long sum = 0;
    const auto add = [&sum](std::optional<long> v) { sum += *v; };
    for (long i = 0; i < n; ++i) goro::select(goro::on_recv(a, add), goro::on_recv(b, add));
    total = sum;
    elapsed.send(watch.elapsed_ns());
  });
  const double ns = *elapsed.recv();
  return workload::report("select", rt.workers(), n, ns / static_cast<double>(n), "ns", "%.1f",
                          total == n / 2 * 3);
}
