// SPDX-License-Identifier: Apache-2.0
// Channel hot paths: unbuffered ping-pong, buffered producer/consumer at several capacities,
// 4x4 mpmc and a two-way select, each on 1 and 2 workers; the std::mutex + condition_variable
// queue between two std::threads is the plain-threads baseline.
#include <benchmark/benchmark.h>

#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>

#include <goro/goro.hpp>

namespace {

// Runs body() in a fiber on a runtime with `workers` workers and waits for it.
template <class F>
void in_runtime(std::size_t workers, F body) {
  goro::runtime rt{goro::options{.workers = workers}};
  rt.go(std::move(body));
}

void BM_Chan_PingPong(benchmark::State& state) {
  const auto workers = static_cast<std::size_t>(state.range(0));
  for (auto _ : state) {
    const long n = 100'000;
    in_runtime(workers, [n] {
      goro::chan<long> ping, pong;
      goro::go([=]() mutable {
        for (long i = 0; i < n; ++i) pong.send(*ping.recv());
      });
      for (long i = 0; i < n; ++i) {
        ping.send(i);
        benchmark::DoNotOptimize(pong.recv());
      }
    });
    state.SetItemsProcessed(state.items_processed() + n);
  }
}
BENCHMARK(BM_Chan_PingPong)
    ->ArgName("workers")
    ->Arg(1)
    ->Arg(2)
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);

void BM_Chan_Buffered(benchmark::State& state) {
  const auto capacity = static_cast<std::size_t>(state.range(0));
  const auto workers = static_cast<std::size_t>(state.range(1));
  for (auto _ : state) {
    const long n = 200'000;
    in_runtime(workers, [n, capacity] {
      goro::chan<long> ch(capacity);
      goro::go([=]() mutable {
        for (long i = 0; i < n; ++i) ch.send(i);
        ch.close();
      });
      long sum = 0;
      for (long v : ch) sum += v;
      benchmark::DoNotOptimize(sum);
    });
    state.SetItemsProcessed(state.items_processed() + n);
  }
}
BENCHMARK(BM_Chan_Buffered)
    ->ArgNames({"cap", "workers"})
    ->ArgsProduct({{1, 16, 128, 1024}, {1, 2}})
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);

void BM_Chan_Mpmc4x4(benchmark::State& state) {
  const auto workers = static_cast<std::size_t>(state.range(0));
  for (auto _ : state) {
    const long per_producer = 100'000;
    in_runtime(workers, [per_producer] {
      goro::chan<long> ch(128);
      goro::wait_group producers, consumers;
      producers.add(4);
      consumers.add(4);
      for (int p = 0; p < 4; ++p) {
        goro::go([&] {
          for (long i = 0; i < per_producer; ++i) ch.send(i);
          producers.done();
        });
      }
      for (int c = 0; c < 4; ++c) {
        goro::go([&] {
          long sum = 0;
          for (long v : ch) sum += v;
          benchmark::DoNotOptimize(sum);
          consumers.done();
        });
      }
      producers.wait();
      ch.close();
      consumers.wait();
    });
    state.SetItemsProcessed(state.items_processed() + 4 * per_producer);
  }
}
BENCHMARK(BM_Chan_Mpmc4x4)
    ->ArgName("workers")
    ->Arg(1)
    ->Arg(2)
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);

void BM_Select_TwoProducers(benchmark::State& state) {
  const auto workers = static_cast<std::size_t>(state.range(0));
  for (auto _ : state) {
    const long n = 100'000;
    in_runtime(workers, [n] {
      goro::chan<long> a, b;
      goro::go([=]() mutable {
        for (long i = 0; i < n / 2; ++i) a.send(i);
      });
      goro::go([=]() mutable {
        for (long i = 0; i < n / 2; ++i) b.send(i);
      });
      long sum = 0;
      const auto add = [&sum](std::optional<long> v) { sum += *v; };
      for (long i = 0; i < n; ++i) goro::select(goro::on_recv(a, add), goro::on_recv(b, add));
      benchmark::DoNotOptimize(sum);
    });
    state.SetItemsProcessed(state.items_processed() + n);
  }
}
BENCHMARK(BM_Select_TwoProducers)
    ->ArgName("workers")
    ->Arg(1)
    ->Arg(2)
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);

// Baseline: a bounded queue of capacity 128 on std::mutex + std::condition_variable between two
// std::threads.
void BM_Threads_MutexQueue(benchmark::State& state) {
  for (auto _ : state) {
    const long n = 200'000;
    std::mutex mu;
    std::condition_variable not_empty, not_full;
    std::deque<long> q;
    std::thread producer([&] {
      for (long i = 0; i < n; ++i) {
        std::unique_lock lock(mu);
        not_full.wait(lock, [&] { return q.size() < 128; });
        q.push_back(i);
        not_empty.notify_one();
      }
    });
    long sum = 0;
    for (long i = 0; i < n; ++i) {
      std::unique_lock lock(mu);
      not_empty.wait(lock, [&] { return !q.empty(); });
      sum += q.front();
      q.pop_front();
      not_full.notify_one();
    }
    producer.join();
    benchmark::DoNotOptimize(sum);
    state.SetItemsProcessed(state.items_processed() + n);
  }
}
BENCHMARK(BM_Threads_MutexQueue)->UseRealTime()->Unit(benchmark::kMillisecond);

}  // namespace
