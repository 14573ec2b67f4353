// SPDX-License-Identifier: Apache-2.0
// Mutex hot paths: an uncontended lock/unlock (goro::mutex beside std::mutex), and a mutex
// contended by 8 fibers on 1 and 2 workers beside std::mutex contended by 8 std::threads, each
// side doing the same number of short critical sections; plus an uncontended semaphore and
// shared_mutex round trip. Cross-thread benchmarks use real time.
#include <benchmark/benchmark.h>

#include <cstddef>
#include <mutex>
#include <shared_mutex>
#include <thread>
#include <vector>

#include <goro/mutex.hpp>
#include <goro/runtime.hpp>
#include <goro/semaphore.hpp>
#include <goro/shared_mutex.hpp>
#include <goro/wait_group.hpp>

namespace {

constexpr int contenders = 8;
constexpr long sections_per_contender = 20'000;

// glibc takes its locks without the bus-locking prefix while a process has only one thread; a
// goro program always has worker threads. So make this process multi-threaded before any
// benchmark runs, or std::mutex's uncontended figure would be one no goro program could see.
const bool multi_threaded = [] {
  std::thread([] {}).join();
  return true;
}();

template <class Mutex>
void BM_Mutex_Uncontended(benchmark::State& state) {
  benchmark::DoNotOptimize(multi_threaded);
  Mutex m;
  for (auto _ : state) {
    m.lock();
    benchmark::ClobberMemory();
    m.unlock();
  }
}
BENCHMARK(BM_Mutex_Uncontended<goro::mutex>)->Name("BM_Mutex_Uncontended/goro::mutex");
BENCHMARK(BM_Mutex_Uncontended<std::mutex>)->Name("BM_Mutex_Uncontended/std::mutex");

// A critical section of a few dozen instructions on shared data.
inline void critical_section(long& counter) {
  for (int i = 0; i < 16; ++i) benchmark::DoNotOptimize(++counter);
}

void BM_Mutex_Contended_Fibers(benchmark::State& state) {
  const auto workers = static_cast<std::size_t>(state.range(0));
  goro::runtime rt{goro::options{.workers = workers}};
  for (auto _ : state) {
    goro::mutex m;
    long counter = 0;
    goro::wait_group wg;
    wg.add(contenders);
    for (int f = 0; f < contenders; ++f) {
      rt.go([&] {
        for (long i = 0; i < sections_per_contender; ++i) {
          std::lock_guard guard(m);
          critical_section(counter);
        }
        wg.done();
      });
    }
    wg.wait();
    benchmark::DoNotOptimize(counter);
  }
  state.SetItemsProcessed(state.iterations() * contenders * sections_per_contender);
}
BENCHMARK(BM_Mutex_Contended_Fibers)
    ->ArgName("workers")
    ->Arg(1)
    ->Arg(2)
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);

void BM_Mutex_Contended_StdThreads(benchmark::State& state) {
  for (auto _ : state) {
    std::mutex m;
    long counter = 0;
    std::vector<std::thread> pool;
    for (int t = 0; t < contenders; ++t) {
      pool.emplace_back([&] {
        for (long i = 0; i < sections_per_contender; ++i) {
          std::lock_guard guard(m);
          critical_section(counter);
        }
      });
    }
    for (auto& t : pool) t.join();
    benchmark::DoNotOptimize(counter);
  }
  state.SetItemsProcessed(state.iterations() * contenders * sections_per_contender);
}
BENCHMARK(BM_Mutex_Contended_StdThreads)->UseRealTime()->Unit(benchmark::kMillisecond);

// The same goro::mutex workload on plain threads (the futex path).
void BM_Mutex_Contended_GoroMutexOnThreads(benchmark::State& state) {
  for (auto _ : state) {
    goro::mutex m;
    long counter = 0;
    std::vector<std::thread> pool;
    for (int t = 0; t < contenders; ++t) {
      pool.emplace_back([&] {
        for (long i = 0; i < sections_per_contender; ++i) {
          std::lock_guard guard(m);
          critical_section(counter);
        }
      });
    }
    for (auto& t : pool) t.join();
    benchmark::DoNotOptimize(counter);
  }
  state.SetItemsProcessed(state.iterations() * contenders * sections_per_contender);
}
BENCHMARK(BM_Mutex_Contended_GoroMutexOnThreads)->UseRealTime()->Unit(benchmark::kMillisecond);

template <class Mutex>
void BM_SharedMutex_UncontendedShared(benchmark::State& state) {
  Mutex m;
  for (auto _ : state) {
    m.lock_shared();
    benchmark::ClobberMemory();
    m.unlock_shared();
  }
}
BENCHMARK(BM_SharedMutex_UncontendedShared<goro::shared_mutex>)
    ->Name("BM_SharedMutex_UncontendedShared/goro::shared_mutex");
BENCHMARK(BM_SharedMutex_UncontendedShared<std::shared_mutex>)
    ->Name("BM_SharedMutex_UncontendedShared/std::shared_mutex");

void BM_Semaphore_Uncontended(benchmark::State& state) {
  goro::counting_semaphore<> s{1};
  for (auto _ : state) {
    s.acquire();
    benchmark::ClobberMemory();
    s.release();
  }
}
BENCHMARK(BM_Semaphore_Uncontended);

}  // namespace
