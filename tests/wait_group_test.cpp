// SPDX-License-Identifier: Apache-2.0
// Tests of goro::wait_group (goro/wait_group.hpp), Go's sync.WaitGroup: counting, misuse
// (a counter below zero throws std::logic_error naming the operation and leaves the counter
// as it was), waiters that are fibers and plain threads, reuse across rounds, the
// happens-before edge from done() to the wait() it releases, the deadline and stop-token
// forms of wait(), and Go's TestWaitGroup and TestWaitGroupRace written again as behaviour.
// Concurrency tests run once per worker count.
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <functional>
#include <limits>
#include <stdexcept>
#include <stop_token>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "goro/goro.hpp"
#include "test_support.hpp"

namespace {

using namespace std::chrono_literals;
using goro_test::ms_since;
using goro_test::scaled;
using clock_type = std::chrono::steady_clock;

void expect_negative_counter_error(const std::function<void()>& f) {
  try {
    f();
    ADD_FAILURE() << "no std::logic_error";
  } catch (const std::logic_error& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("wait_group::add"), std::string::npos) << what;
    EXPECT_NE(what.find("negative"), std::string::npos) << what;
  }
}

// ---- single-threaded semantics -----------------------------------------------------------

TEST(WaitGroupTest, StartsAtZeroAndWaitReturnsAtOnce) {
  goro::wait_group wg;
  EXPECT_EQ(wg.count(), 0);
  wg.wait();
  wg.wait();
  EXPECT_EQ(wg.count(), 0);
}

TEST(WaitGroupTest, AddAndDoneMoveTheCounter) {
  goro::wait_group wg;
  wg.add(3);
  EXPECT_EQ(wg.count(), 3);
  wg.done();
  EXPECT_EQ(wg.count(), 2);
  wg.add();
  EXPECT_EQ(wg.count(), 3);
  wg.add(-3);
  EXPECT_EQ(wg.count(), 0);
  wg.wait();
  wg.add(0);
  EXPECT_EQ(wg.count(), 0);
}

TEST(WaitGroupTest, CounterBelowZeroThrowsAndLeavesTheCounterAlone) {
  goro::wait_group wg;
  expect_negative_counter_error([&] { wg.done(); });
  EXPECT_EQ(wg.count(), 0);
  expect_negative_counter_error([&] { wg.add(-1); });
  EXPECT_EQ(wg.count(), 0);
  wg.add(2);
  expect_negative_counter_error([&] { wg.add(-3); });
  EXPECT_EQ(wg.count(), 2);
  wg.done();
  wg.done();
  EXPECT_EQ(wg.count(), 0);
  wg.wait();
}

TEST(WaitGroupTest, AddOfTheMostNegativeDeltaThrows) {
  // A delta with no negation: the range check itself must not overflow (UBSan would stop the
  // asan preset here).
  goro::wait_group wg;
  expect_negative_counter_error([&] { wg.add(std::numeric_limits<std::int64_t>::min()); });
  EXPECT_EQ(wg.count(), 0);
}

TEST(WaitGroupTest, CounterOutOfRangeThrowsRatherThanWrapping) {
  // The counter is 32 bits wide (as Go's); an add() that cannot be represented must not
  // silently wrap around.
  goro::wait_group wg;
  wg.add(std::numeric_limits<std::int32_t>::max());
  try {
    wg.add(1);
    ADD_FAILURE() << "no throw";
  } catch (const std::logic_error& e) {
    // It said "negative wait_group counter" before.
    EXPECT_STREQ(e.what(), "goro::wait_group::add: wait_group counter overflow");
  }
  EXPECT_EQ(wg.count(), std::numeric_limits<std::int32_t>::max());
  wg.add(-std::int64_t{std::numeric_limits<std::int32_t>::max()});
  EXPECT_EQ(wg.count(), 0);
  EXPECT_THROW(wg.add(std::int64_t{1} << 32), std::logic_error);
  EXPECT_EQ(wg.count(), 0);
  wg.wait();
}

TEST(WaitGroupTest, CounterBelowZeroThrowsInsideFibers) {
  goro::runtime rt{goro::options{.workers = 1}};
  goro::wait_group wg;
  goro::wait_group done;
  done.add(1);
  bool threw = false;
  rt.go([&] {
    try {
      wg.done();
    } catch (const std::logic_error&) {
      threw = true;
    }
    done.done();
  });
  done.wait();
  EXPECT_TRUE(threw);
  EXPECT_EQ(wg.count(), 0);
}

// ---- waits with a deadline or a stop token ---------------------------------------------

TEST(WaitGroupTest, LimitedWaitsAtZeroReturnTrueAtOnce) {
  goro::wait_group wg;
  std::stop_source stop;
  stop.request_stop();
  EXPECT_TRUE(wg.wait_for(0ms));
  EXPECT_TRUE(wg.wait_for(-1s));
  EXPECT_TRUE(wg.wait_until(clock_type::now() - 1s));
  EXPECT_TRUE(wg.wait(stop.get_token()));
}

TEST(WaitGroupTest, WaitForTimesOutOnPlainThreadsAndInFibers) {
  goro::runtime rt{goro::options{.workers = 2}};
  goro::wait_group wg;
  wg.add(1);
  auto check = [&wg] {
    const auto start = clock_type::now();
    EXPECT_FALSE(wg.wait_for(20ms));
    const double ms = ms_since(start);
    EXPECT_GE(ms, 20.0);
    EXPECT_LT(ms, 1000.0);
    EXPECT_FALSE(wg.wait_until(clock_type::now() - 1ms));  // already past: no wait
  };
  check();  // this thread
  goro::wait_group fiber_done;
  fiber_done.add(1);
  rt.go([&] {
    check();
    fiber_done.done();
  });
  fiber_done.wait();
  EXPECT_EQ(wg.count(), 1);
  // The timed-out waiters are gone: releasing the group now wakes only the real waiter.
  goro::wait_group released;
  released.add(1);
  rt.go([&] {
    wg.wait();
    released.done();
  });
  wg.done();
  released.wait();
  EXPECT_EQ(wg.count(), 0);
}

TEST(WaitGroupTest, WaitForReturnsTrueWhenReleasedInTime) {
  goro::runtime rt{goro::options{.workers = 2}};
  goro::wait_group wg;
  goro::wait_group waiting;
  goro::wait_group finished;
  wg.add(1);
  waiting.add(2);
  finished.add(2);
  std::atomic<int> released{0};
  double fiber_ms = 0;
  rt.go([&] {
    waiting.done();
    const auto start = clock_type::now();
    if (wg.wait_for(60s)) released.fetch_add(1);
    fiber_ms = ms_since(start);
    finished.done();
  });
  std::thread t([&] {
    waiting.done();
    if (wg.wait_until(clock_type::now() + 60s)) released.fetch_add(1);
    finished.done();
  });
  waiting.wait();
  wg.done();
  finished.wait();
  t.join();
  EXPECT_EQ(released.load(), 2);
  EXPECT_LT(fiber_ms, 30'000.0);
}

TEST(WaitGroupTest, StopTokenCancelsAWait) {
  goro::runtime rt{goro::options{.workers = 2}};
  goro::wait_group wg;
  wg.add(1);
  {
    std::stop_source already;
    already.request_stop();
    EXPECT_FALSE(wg.wait(already.get_token()));
  }
  std::stop_source stop;
  goro::wait_group waiting;
  goro::wait_group finished;
  waiting.add(2);
  finished.add(2);
  std::atomic<int> cancelled{0};
  rt.go([&] {
    waiting.done();
    if (!wg.wait(stop.get_token())) cancelled.fetch_add(1);
    finished.done();
  });
  std::thread t([&] {
    waiting.done();
    if (!wg.wait(stop.get_token())) cancelled.fetch_add(1);
    finished.done();
  });
  waiting.wait();
  stop.request_stop();
  finished.wait();
  t.join();
  EXPECT_EQ(cancelled.load(), 2);
  EXPECT_EQ(wg.count(), 1);
  wg.done();
  wg.wait();
}

// A waiter that gives up from the middle of the queue leaves the ones before and after it
// queued, and the count right: the next release wakes exactly those two. One worker, and every
// fiber spawned from a fiber, so each runs (and queues) before its parent goes on.
TEST(WaitGroupTest, AWaiterGivingUpMidQueueLeavesTheOthersQueued) {
  goro::runtime rt{goro::options{.workers = 1}};
  goro::wait_group wg;
  wg.add(1);
  goro::wait_group finished;
  finished.add(1);
  std::atomic<int> released{0};
  std::atomic<int> timed_out{0};
  rt.go([&] {
    goro::wait_group returned;
    goro::wait_group gave_up;
    returned.add(2);
    gave_up.add(1);
    auto forever = [&] {
      if (wg.wait_for(1h)) released.fetch_add(1);
      returned.done();
    };
    goro::go(forever);  // first in the queue
    goro::go([&] {      // second
      if (!wg.wait_for(10ms)) timed_out.fetch_add(1);
      gave_up.done();
    });
    goro::go(forever);  // third
    gave_up.wait();
    EXPECT_EQ(timed_out.load(), 1);
    EXPECT_EQ(released.load(), 0);
    wg.done();
    returned.wait();
    finished.done();
  });
  finished.wait();
  EXPECT_EQ(released.load(), 2);
  EXPECT_EQ(timed_out.load(), 1);
  EXPECT_EQ(wg.count(), 0);
}

// ---- concurrency, per worker count -------------------------------------------------------

class WaitGroupWorkersTest : public goro_test::workers_test {};
INSTANTIATE_TEST_SUITE_P(Workers, WaitGroupWorkersTest, goro_test::worker_counts(),
                         goro_test::worker_count_name);

TEST_P(WaitGroupWorkersTest, FiberWaitsAtZeroWithoutParking) {
  goro::runtime rt{opts()};
  goro::wait_group zero;
  goro::wait_group wg;
  wg.add(1);
  rt.go([&] {
    zero.wait();
    wg.done();
  });
  wg.wait();
}

TEST_P(WaitGroupWorkersTest, ReleasesNoWaiterEarlyAndReusesAcrossRounds) {
  // Go's TestWaitGroup: n fibers report in on wg1 and then wait on wg2; none may leave before
  // the last wg2.done(). The same two groups serve a second round.
  goro::runtime rt{opts()};
  constexpr int n = 16;
  goro::wait_group wg1;
  goro::wait_group wg2;
  for (int round = 0; round < 2; ++round) {
    SCOPED_TRACE(round);
    std::atomic<int> exited{0};
    goro::wait_group all_exited;
    wg1.add(n);
    wg2.add(n);
    all_exited.add(n);
    for (int i = 0; i < n; ++i) {
      rt.go([&] {
        wg1.done();
        wg2.wait();
        exited.fetch_add(1);
        all_exited.done();
      });
    }
    wg1.wait();
    for (int i = 0; i < n; ++i) {
      EXPECT_EQ(exited.load(), 0) << "wait_group released a waiter too soon";
      wg2.done();
    }
    all_exited.wait();
    EXPECT_EQ(exited.load(), n);
    EXPECT_EQ(wg1.count(), 0);
    EXPECT_EQ(wg2.count(), 0);
  }
}

TEST_P(WaitGroupWorkersTest, AddAndDoneRaceWithWait) {
  // Go's TestWaitGroupRace: two fibers per round, each counted just before it is spawned.
  goro::runtime rt{opts()};
  const int rounds = static_cast<int>(scaled(2000));
  for (int round = 0; round < rounds; ++round) {
    goro::wait_group wg;
    std::atomic<int> n{0};
    wg.add(1);
    rt.go([&] {
      n.fetch_add(1);
      wg.done();
    });
    wg.add(1);
    rt.go([&] {
      n.fetch_add(1);
      wg.done();
    });
    wg.wait();
    ASSERT_EQ(n.load(), 2) << "round " << round;
  }
}

TEST_P(WaitGroupWorkersTest, DoneHappensBeforeTheWaitItReleases) {
  // Plain (non-atomic) writes before done() must be visible after wait(); ThreadSanitizer
  // checks the edge, the values check the result.
  goro::runtime rt{opts()};
  const int n = static_cast<int>(scaled(10'000));
  std::vector<int> slots(static_cast<std::size_t>(n), 0);
  goro::wait_group wg;
  wg.add(n);
  for (int i = 0; i < n; ++i) {
    rt.go([&, i] {
      if (i % 2 == 0) goro::this_fiber::yield();
      slots[static_cast<std::size_t>(i)] = i + 1;
      wg.done();
    });
  }
  wg.wait();
  for (int i = 0; i < n; ++i) ASSERT_EQ(slots[static_cast<std::size_t>(i)], i + 1);
}

TEST_P(WaitGroupWorkersTest, ManyFiberAndThreadWaitersAllRelease) {
  goro::runtime rt{opts()};
  const int fiber_waiters = static_cast<int>(scaled(1000));
  constexpr int thread_waiters = 4;
  goro::wait_group gate;      // what everyone waits on
  goro::wait_group arrived;   // every waiter is about to wait
  goro::wait_group released;  // every waiter has returned from wait()
  std::atomic<bool> opened{false};
  std::atomic<int> early{0};
  gate.add(1);
  arrived.add(fiber_waiters + thread_waiters);
  released.add(fiber_waiters + thread_waiters);
  auto waiter = [&] {
    arrived.done();
    gate.wait();
    if (!opened.load()) early.fetch_add(1);
    released.done();
  };
  for (int i = 0; i < fiber_waiters; ++i) rt.go(waiter);
  std::vector<std::thread> threads;
  for (int i = 0; i < thread_waiters; ++i) threads.emplace_back(waiter);
  arrived.wait();
  opened.store(true);
  gate.done();
  released.wait();
  for (auto& t : threads) t.join();
  EXPECT_EQ(early.load(), 0);
  EXPECT_EQ(gate.count(), 0);
}

TEST_P(WaitGroupWorkersTest, FibersCountEachOtherInAndOut) {
  // Fibers add to the group for children they spawn while the main thread already waits; the
  // counter goes up and down many times before it reaches zero once.
  goro::runtime rt{opts()};
  const int parents = static_cast<int>(scaled(200));
  constexpr int children = 20;
  goro::wait_group wg;
  std::atomic<int> ran{0};
  wg.add(parents);
  for (int p = 0; p < parents; ++p) {
    rt.go([&] {
      for (int c = 0; c < children; ++c) {
        wg.add(1);
        goro::go([&wg, &ran, c] {
          if (c % 2 == 0) goro::this_fiber::yield();
          ran.fetch_add(1);
          wg.done();
        });
      }
      ran.fetch_add(1);
      wg.done();
    });
  }
  wg.wait();
  EXPECT_EQ(ran.load(), parents * (children + 1));
  EXPECT_EQ(wg.count(), 0);
}

TEST_P(WaitGroupWorkersTest, ThreadsAndFibersSignalOneGroup) {
  goro::runtime rt{opts()};
  const int fibers = static_cast<int>(scaled(4000));
  constexpr int threads = 4;
  constexpr int per_thread = 250;
  goro::wait_group wg;
  wg.add(fibers + threads * per_thread);
  for (int i = 0; i < fibers; ++i) rt.go([&] { wg.done(); });
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t) {
    pool.emplace_back([&] {
      for (int i = 0; i < per_thread; ++i) wg.done();
    });
  }
  wg.wait();
  for (auto& t : pool) t.join();
  EXPECT_EQ(wg.count(), 0);
}

TEST_P(WaitGroupWorkersTest, DeadlinesRaceWithTheReleasingDone) {
  // Many fibers wait with a deadline that falls just when the group is released, and each
  // reuses its stack at once by spawning a fiber that scribbles over it. Every waiter must
  // return exactly once, either way, and done() must return.
  goro::runtime rt{opts()};
  const int rounds = static_cast<int>(scaled(300));
  const int waiters = static_cast<int>(goro_test::live_fiber_cap(500));
  long timed_out = 0;
  long released = 0;
  for (int round = 0; round < rounds; ++round) {
    goro::wait_group wg;
    goro::wait_group returned;
    wg.add(1);
    returned.add(waiters);
    std::atomic<long> to{0};
    std::atomic<long> rel{0};
    const auto deadline = clock_type::now() + 2ms;
    for (int i = 0; i < waiters; ++i) {
      rt.go([&] {
        (wg.wait_until(deadline) ? rel : to).fetch_add(1);
        returned.done();
        goro::go([] {
          char junk[2048];
          std::memset(junk, 0x5a, sizeof junk);
          asm volatile("" : : "r"(junk) : "memory");  // the writes are kept
        });
      });
    }
    std::this_thread::sleep_until(deadline - std::chrono::microseconds(round % 200));
    wg.done();
    returned.wait();
    ASSERT_EQ(to.load() + rel.load(), waiters);
    timed_out += to.load();
    released += rel.load();
  }
  std::printf("%ld waits timed out, %ld were released\n", timed_out, released);
}

}  // namespace

TEST_P(WaitGroupWorkersTest, MayBeDestroyedOnceAWaitReturnsWhileTheReleasingDoneFinishes) {
  // As with std::latch: once a wait() returns, its caller may destroy the wait_group, here
  // while a second waiter, parked, is still to be released. The done() that releases it must
  // be done with the wait_group by then; it once still took its lock afterwards (ASan:
  // heap-use-after-free in add(), under a wait() that had found the counter at zero).
  goro::runtime rt{opts()};
  // The test sees the helper parked through runtime_metrics::fibers_parked.
  if (rt.metrics().spawns == 0) {
    goro::wait_group spawned;
    spawned.add(1);
    rt.go([&] { spawned.done(); });
    spawned.wait();
    if (rt.metrics().spawns == 0) GTEST_SKIP() << "built without GORO_METRICS";
  }
  // Only ASan sees the freed wait_group used; the other builds run a few rounds for the logic.
  const int rounds = static_cast<int>(scaled(goro_test::sanitized ? 1000 : 300));
  std::atomic<goro::wait_group*> to_release{nullptr};
  std::atomic<bool> stop{false};
  std::thread releaser([&] {
    while (!stop.load()) {
      if (goro::wait_group* wg = to_release.exchange(nullptr)) {
        wg->done();
      } else {
        std::this_thread::yield();
      }
    }
  });
  for (int round = 0; round < rounds; ++round) {
    auto* wg = new goro::wait_group;
    wg->add(1);
    goro::wait_group helper_returned;
    helper_returned.add(1);
    const std::uint64_t parked_before = rt.metrics().fibers_parked;
    rt.go([wg, &helper_returned] {
      wg->wait();
      helper_returned.done();
    });
    // Every earlier park and wake-up is counted (helper_returned ordered them before us), so
    // the count rises only once the helper has queued itself on wg and parked.
    while (rt.metrics().fibers_parked <= parked_before) std::this_thread::yield();
    to_release.store(wg);
    while (wg->count() != 0) {
    }
    wg->wait();  // finds the counter at zero, perhaps while the done() is still at work
    delete wg;
    helper_returned.wait();
  }
  stop.store(true);
  releaser.join();
}
