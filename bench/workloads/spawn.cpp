// SPDX-License-Identifier: Apache-2.0
// spawn: a fiber spawns n fibers that each only call wait_group::done, then waits for them.
#include <atomic>

#include "workload.hpp"

int main(int argc, char** argv) {
  const long n = workload::size_arg(argc, argv, 1'000'000);
  goro::runtime rt(workload::runtime_options());
  goro::wait_group wg;
  std::atomic<long> ran{0};
  goro::chan<double> elapsed;
  rt.go([&] {
    const workload::stopwatch watch;
    wg.add(n);
    for (long i = 0; i < n; ++i) {
      goro::go([&] {
        ran.fetch_add(1, std::memory_order_relaxed);
        wg.done();
      });
    }
    wg.wait();
    elapsed.send(watch.elapsed_ns());
  });
  const double ns = *elapsed.recv();
  return workload::report("spawn", rt.workers(), n, ns / static_cast<double>(n), "ns", "%.1f",
                          ran.load() == n);
}
