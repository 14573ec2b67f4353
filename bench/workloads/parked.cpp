// SPDX-License-Identifier: Apache-2.0
// parked: n fibers all block receiving from one channel; once all are parked, the VmRSS growth
// divided by n is the memory cost of a parked fiber. Then the channel is closed and all joined.
// With GORO_COMPACT_STACKS=1 the fibers run on compact stacks and the report names the workload
// parked-compact; run it with LD_BIND_NOW=1 too, as bench/compare does (lazy symbol binding does
// not fit in a compact stack, so without it the runtime refuses them: docs/scheduler.md,
// "Compact stacks").
#include <atomic>

#include "workload.hpp"

int main(int argc, char** argv) {
  const long n = workload::size_arg(argc, argv, 100'000);
  const goro::options opts = workload::runtime_options();
  goro::runtime rt(opts);
  goro::chan<int> gate;
  goro::wait_group started, finished;
  std::atomic<long> woken{0};
  const long before = workload::vm_rss_bytes();
  started.add(n);
  finished.add(n);
  for (long i = 0; i < n; ++i) {
    rt.go([&] {
      started.done();
      if (!gate.recv().has_value()) woken.fetch_add(1, std::memory_order_relaxed);
      finished.done();
    });
  }
  started.wait();
  // started.done() comes just before the receive; this sleep lets the last few fibers reach it
  // and park (the Go and Boost.Fiber versions settle the same way).
  goro::this_fiber::sleep_for(std::chrono::milliseconds(100));
  const long after = workload::vm_rss_bytes();
  gate.close();
  finished.wait();
  const double per_fiber = static_cast<double>(after - before) / static_cast<double>(n);
  return workload::report(opts.compact_stacks ? "parked-compact" : "parked", rt.workers(), n,
                          per_fiber, "bytes", "%.0f", woken.load() == n);
}
