// SPDX-License-Identifier: Apache-2.0
// Stress tests of goro's sync toolkit: many fibers and a few plain threads mixing blocking,
// try, timed and cancellable calls on one mutex, shared_mutex, semaphore and condition
// variable, while a canceller stops tokens underneath them; plus many once flags and nested
// groups. Each checks a conservation law (a counter equals the successful acquisitions, no
// permit is lost or made up, every item is consumed once). Sizes scale with GORO_STRESS_SCALE.
#include <atomic>
#include <chrono>
#include <cstddef>
#include <deque>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <stdexcept>
#include <stop_token>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "goro/condition_variable.hpp"
#include "goro/go.hpp"
#include "goro/group.hpp"
#include "goro/mutex.hpp"
#include "goro/once.hpp"
#include "goro/runtime.hpp"
#include "goro/semaphore.hpp"
#include "goro/shared_mutex.hpp"
#include "goro/this_fiber.hpp"
#include "goro/wait_group.hpp"
#include "test_support.hpp"

namespace {

using namespace std::chrono_literals;
using goro_test::scaled;

// Stop sources requested one after another, every `period`, by a fiber: an operation that takes
// token(i) may be cancelled before it starts, while it waits, or never.
class canceller {
 public:
  explicit canceller(std::size_t n) : sources_(n) {}
  std::stop_token token(std::size_t i) const { return sources_[i % sources_.size()].get_token(); }
  // Runs on the calling fiber until every source is stopped or `done` is set.
  void run(const std::atomic<bool>& done, std::chrono::microseconds period) {
    for (auto& s : sources_) {
      if (done.load()) break;
      goro::this_fiber::sleep_for(period);
      s.request_stop();
    }
  }

 private:
  std::vector<std::stop_source> sources_;
};

class SyncStressTest : public goro_test::workers_test {};
INSTANTIATE_TEST_SUITE_P(Workers, SyncStressTest, goro_test::worker_counts(),
                         goro_test::worker_count_name);

TEST_P(SyncStressTest, MutexUnderEveryKindOfLock) {
  const int fibers = 16;
  const int threads = 2;
  const int rounds = static_cast<int>(scaled(4000));
  goro::mutex m;
  long counter = 0;  // GUARDED_BY(m)
  std::atomic<long> successes{0};
  std::atomic<bool> done{false};
  canceller cancel(256);
  auto body = [&](int id) {
    for (int i = 0; i < rounds; ++i) {
      bool ok = false;
      switch ((i + id) % 5) {
        case 0:
          m.lock();
          ok = true;
          break;
        case 1: ok = m.try_lock(); break;
        case 2: ok = m.try_lock_for(50us); break;
        case 3: ok = m.lock(cancel.token(static_cast<std::size_t>(i))); break;
        default:
          ok = m.try_lock_until(std::chrono::steady_clock::now() + 200us,
                                cancel.token(static_cast<std::size_t>(i + id)));
      }
      if (!ok) continue;
      ++counter;
      if (i % 50 == 0) goro::this_fiber::yield();
      m.unlock();
      successes.fetch_add(1, std::memory_order_relaxed);
    }
  };
  {
    goro::runtime rt{opts()};
    rt.go([&] { cancel.run(done, 200us); });
    goro::wait_group wg;
    wg.add(fibers);
    for (int f = 0; f < fibers; ++f) {
      rt.go([&, f] {
        body(f);
        wg.done();
      });
    }
    std::vector<std::thread> pool;
    for (int t = 0; t < threads; ++t) pool.emplace_back(body, fibers + t);
    for (auto& t : pool) t.join();
    wg.wait();
    done.store(true);
  }
  EXPECT_EQ(counter, successes.load());
  EXPECT_TRUE(m.try_lock());
  m.unlock();
}

TEST_P(SyncStressTest, SharedMutexReadersWritersTimeoutsAndCancels) {
  const int fibers = 16;
  const int rounds = static_cast<int>(scaled(3000));
  goro::shared_mutex m;
  std::atomic<int> activity{0};
  std::atomic<int> violations{0};
  std::atomic<bool> done{false};
  canceller cancel(256);
  {
    goro::runtime rt{opts()};
    rt.go([&] { cancel.run(done, 200us); });
    goro::wait_group wg;
    wg.add(fibers);
    for (int f = 0; f < fibers; ++f) {
      rt.go([&, f] {
        for (int i = 0; i < rounds; ++i) {
          const auto tok = cancel.token(static_cast<std::size_t>(i + f));
          if ((i + f) % 4 == 0) {
            bool ok = false;
            switch (i % 3) {
              case 0:
                m.lock();
                ok = true;
                break;
              case 1: ok = m.lock(tok); break;
              default: ok = m.try_lock_for(100us);
            }
            if (!ok) continue;
            if (activity.fetch_add(10000) != 0) violations.fetch_add(1);
            if (i % 32 == 0) goro::this_fiber::yield();
            activity.fetch_sub(10000);
            m.unlock();
          } else {
            bool ok = false;
            switch (i % 3) {
              case 0:
                m.lock_shared();
                ok = true;
                break;
              case 1: ok = m.lock_shared(tok); break;
              default: ok = m.try_lock_shared_for(100us);
            }
            if (!ok) continue;
            if (activity.fetch_add(1) >= 10000) violations.fetch_add(1);
            if (i % 32 == 0) goro::this_fiber::yield();
            activity.fetch_sub(1);
            m.unlock_shared();
          }
        }
        wg.done();
      });
    }
    wg.wait();
    done.store(true);
  }
  EXPECT_EQ(violations.load(), 0);
  EXPECT_EQ(activity.load(), 0);
  EXPECT_TRUE(m.try_lock());
  m.unlock();
}

TEST_P(SyncStressTest, SemaphoreConservesPermits) {
  const int consumers = 12;
  const int producers = 4;
  const long per_producer = static_cast<long>(scaled(5000));
  goro::counting_semaphore<> s{0};
  std::atomic<long> acquired{0};
  std::atomic<bool> produced_all{false};
  std::atomic<bool> done{false};
  canceller cancel(256);
  {
    goro::runtime rt{opts()};
    rt.go([&] { cancel.run(done, 200us); });
    goro::wait_group producing;
    goro::wait_group consuming;
    producing.add(producers);
    consuming.add(consumers);
    for (int p = 0; p < producers; ++p) {
      rt.go([&, p] {
        for (long i = 0; i < per_producer; ++i) {
          s.release((i + p) % 3 == 0 ? 2 : 1);
          if (i % 64 == 0) goro::this_fiber::yield();
        }
        producing.done();
      });
    }
    for (int c = 0; c < consumers; ++c) {
      rt.go([&, c] {
        for (long i = 0;; ++i) {
          bool ok = false;
          switch ((i + c) % 4) {
            case 0: ok = s.try_acquire(); break;
            case 1: ok = s.try_acquire_for(100us); break;
            case 2: ok = s.acquire(cancel.token(static_cast<std::size_t>(i))); break;
            default:
              ok = s.try_acquire_until(std::chrono::steady_clock::now() + 300us,
                                       cancel.token(static_cast<std::size_t>(i + c)));
          }
          if (ok) {
            acquired.fetch_add(1);
          } else if (produced_all.load()) {
            break;
          }
        }
        consuming.done();
      });
    }
    producing.wait();
    produced_all.store(true);
    consuming.wait();
    done.store(true);
  }
  long expected = 0;
  for (int p = 0; p < producers; ++p) {
    for (long i = 0; i < per_producer; ++i) expected += (i + p) % 3 == 0 ? 2 : 1;
  }
  long left = 0;
  while (s.try_acquire()) ++left;
  EXPECT_EQ(acquired.load() + left, expected);
}

TEST_P(SyncStressTest, CondVarBoundedQueueFibersAndThreads) {
  const int producers = 4;
  const int consumers = 4;
  const int threads = 1;  // one more consumer on a plain thread
  const long per_producer = static_cast<long>(scaled(50'000));
  const std::size_t capacity = 8;
  goro::mutex m;
  goro::condition_variable not_full;
  goro::condition_variable not_empty;
  std::deque<long> queue;     // GUARDED_BY(m)
  int producing = producers;  // GUARDED_BY(m)
  std::atomic<long> sum{0};
  std::atomic<long> count{0};
  auto consume = [&](int id) {
    std::stop_source never;
    for (long i = 0;; ++i) {
      std::unique_lock lock(m);
      auto ready = [&] { return !queue.empty() || producing == 0; };
      if ((i + id) % 3 == 0) {
        // A timed wait that may expire: it must neither lose nor invent an item.
        if (!not_empty.wait_for(lock, 50us, never.get_token(), ready)) continue;
      } else {
        not_empty.wait(lock, ready);
      }
      if (queue.empty()) return;  // producing == 0 and drained
      sum.fetch_add(queue.front());
      queue.pop_front();
      count.fetch_add(1);
      lock.unlock();
      not_full.notify_one();
    }
  };
  {
    goro::runtime rt{opts()};
    for (int p = 0; p < producers; ++p) {
      rt.go([&] {
        for (long i = 1; i <= per_producer; ++i) {
          std::unique_lock lock(m);
          not_full.wait(lock, [&] { return queue.size() < capacity; });
          queue.push_back(i);
          lock.unlock();
          not_empty.notify_one();
        }
        std::lock_guard lock(m);
        if (--producing == 0) not_empty.notify_all();
      });
    }
    for (int c = 0; c < consumers; ++c) rt.go(consume, c);
    std::vector<std::thread> pool;
    for (int t = 0; t < threads; ++t) pool.emplace_back(consume, consumers + t);
    for (auto& t : pool) t.join();
  }
  EXPECT_EQ(count.load(), producers * per_producer);
  EXPECT_EQ(sum.load(), producers * per_producer * (per_producer + 1) / 2);
}

TEST_P(SyncStressTest, ManyOnceFlagsRacedByFibers) {
  const std::size_t flags = scaled(20'000);
  constexpr int callers = 4;
  auto once = std::make_unique<goro::once_flag[]>(flags);
  auto calls = std::make_unique<std::atomic<int>[]>(flags);
  {
    goro::runtime rt{opts()};
    for (int c = 0; c < callers; ++c) {
      rt.go([&] {
        for (std::size_t i = 0; i < flags; ++i) {
          goro::call_once(once[i], [&] {
            calls[i].fetch_add(1);
            if (i % 16 == 0) goro::this_fiber::yield();
          });
        }
      });
    }
  }
  for (std::size_t i = 0; i < flags; ++i) ASSERT_EQ(calls[i].load(), 1) << "flag " << i;
}

TEST_P(SyncStressTest, NestedGroupsWithFailuresAndLimits) {
  const int outer = static_cast<int>(scaled(200));
  constexpr int inner = 8;
  std::atomic<int> failures_seen{0};
  std::atomic<int> ran{0};
  {
    goro::runtime rt{opts()};
    goro::binary_semaphore done{0};
    rt.go([&] {
      goro::group top{4};
      for (int i = 0; i < outer; ++i) {
        top.go([&, i](std::stop_token parent) {
          goro::group g{parent, 3};
          for (int j = 0; j < inner; ++j) {
            g.go([&, i, j](std::stop_token st) {
              ran.fetch_add(1);
              if (i % 5 == 0 && j == 3) throw std::runtime_error("inner failure");
              if (j % 2 == 0) {
                goro::binary_semaphore never{0};
                (void)never.try_acquire_until(std::chrono::steady_clock::now() + 1ms, st);
              }
            });
          }
          try {
            g.wait();
          } catch (const std::runtime_error&) {
            failures_seen.fetch_add(1);
          }
        });
      }
      top.wait();
      done.release();
    });
    done.acquire();
  }
  EXPECT_EQ(failures_seen.load(), (outer + 4) / 5);
  EXPECT_EQ(ran.load(), outer * inner);
}

}  // namespace
