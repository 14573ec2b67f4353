// SPDX-License-Identifier: Apache-2.0
// Scheduler hot paths: spawning a fiber, a yield between two fibers on one worker, a wait_group
// round; std::thread creation is the plain-threads baseline.
#include <benchmark/benchmark.h>

#include <thread>

#include <goro/goro.hpp>

namespace {

void BM_Runtime_Spawn(benchmark::State& state) {
  const auto workers = static_cast<std::size_t>(state.range(0));
  goro::runtime rt{goro::options{.workers = workers}};
  for (auto _ : state) {
    const long n = 100'000;
    goro::wait_group all;
    all.add(1);
    rt.go([&] {
      goro::wait_group wg;
      wg.add(n);
      for (long i = 0; i < n; ++i) goro::go([&wg] { wg.done(); });
      wg.wait();
      all.done();
    });
    all.wait();
    state.SetItemsProcessed(state.items_processed() + n);
  }
}
BENCHMARK(BM_Runtime_Spawn)
    ->ArgName("workers")
    ->Arg(1)
    ->Arg(2)
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);

void BM_Runtime_Yield(benchmark::State& state) {
  goro::runtime rt{goro::options{.workers = 1}};
  for (auto _ : state) {
    const long n = 200'000;
    goro::wait_group wg;
    wg.add(2);
    for (int k = 0; k < 2; ++k) {
      rt.go([&] {
        for (long i = 0; i < n; ++i) goro::this_fiber::yield();
        wg.done();
      });
    }
    wg.wait();
    state.SetItemsProcessed(state.items_processed() + 2 * n);
  }
}
BENCHMARK(BM_Runtime_Yield)->UseRealTime()->Unit(benchmark::kMillisecond);

// Baseline: creating and joining a std::thread.
void BM_Threads_Spawn(benchmark::State& state) {
  for (auto _ : state) {
    std::thread t([] {});
    t.join();
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_Threads_Spawn)->UseRealTime();

}  // namespace
