// SPDX-License-Identifier: Apache-2.0
// Tests of goro::group (Go's errgroup): waiting, the first exception, limits, stop propagation,
// misuse. Go's sync tests written again as behaviour; concurrency tests run once per worker count,
// and the heavy mixes are in sync_stress_test.cpp.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <mutex>
#include <shared_mutex>
#include <stdexcept>
#include <stop_token>
#include <string>
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
#include "sync_test_support.hpp"
#include "test_support.hpp"

namespace {

using namespace std::chrono_literals;
using goro_test::scaled;
using steady = std::chrono::steady_clock;
using namespace sync_test;

class SyncGroupWorkersTest : public goro_test::workers_test {};
INSTANTIATE_TEST_SUITE_P(Workers, SyncGroupWorkersTest, goro_test::worker_counts(),
                         goro_test::worker_count_name);

// Runs body in a fiber on `rt` and waits for it from this thread.
template <class F>
void in_fiber(goro::runtime& rt, F body) {
  goro::binary_semaphore done{0};
  rt.go([&] {
    body();
    done.release();
  });
  done.acquire();
}

TEST_P(SyncGroupWorkersTest, WaitsForEveryFunction) {
  constexpr int n = 50;
  goro::runtime rt{opts()};
  std::atomic<int> ran{0};
  in_fiber(rt, [&] {
    goro::group g;
    for (int i = 0; i < n; ++i) {
      g.go([&] { ran.fetch_add(1); });
      g.go([&](std::stop_token st) {
        EXPECT_FALSE(st.stop_requested());
        ran.fetch_add(1);
      });
    }
    g.wait();
    EXPECT_TRUE(g.get_stop_token().stop_requested()) << "wait() requests stop, as Go's cancel";
  });
  EXPECT_EQ(ran.load(), 2 * n);
}

TEST_P(SyncGroupWorkersTest, FirstExceptionIsRethrownAndStopsTheOthers) {
  constexpr int others = 6;
  goro::runtime rt{opts()};
  std::atomic<int> saw_stop{0};
  in_fiber(rt, [&] {
    goro::group g;
    for (int i = 0; i < others; ++i) {
      g.go([&](std::stop_token st) {
        // Blocks until the group is stopped: a semaphore nobody releases.
        goro::binary_semaphore never{0};
        if (!never.acquire(st)) saw_stop.fetch_add(1);
      });
    }
    g.go([] {
      goro::this_fiber::sleep_for(2ms);
      throw std::runtime_error("boom");
    });
    g.go([] {
      goro::this_fiber::sleep_for(30ms);
      throw std::logic_error("second");  // after the stop: dropped
    });
    try {
      g.wait();
      ADD_FAILURE() << "wait() did not rethrow";
    } catch (const std::runtime_error& e) {
      EXPECT_STREQ(e.what(), "boom");
    }
  });
  EXPECT_EQ(saw_stop.load(), others);
}

TEST_P(SyncGroupWorkersTest, LimitCapsHowManyRunAtOnce) {
  constexpr int limit = 3;
  constexpr int n = 20;
  goro::runtime rt{opts()};
  std::atomic<int> running{0};
  std::atomic<int> max_running{0};
  event_count reached;  // the limit was reached once
  in_fiber(rt, [&] {
    goro::group g{limit};
    for (int i = 0; i < n; ++i) {
      g.go([&] {
        const int now = running.fetch_add(1) + 1;
        note_max(max_running, now);
        if (now == limit) reached.arrive();
        // The first `limit` functions wait for each other, so the limit is reached for sure.
        EXPECT_TRUE(reached.wait_for(1));
        goro::this_fiber::yield();
        running.fetch_sub(1);
      });
    }
    g.wait();
  });
  EXPECT_EQ(max_running.load(), limit);
}

TEST_P(SyncGroupWorkersTest, TryGoAndSetLimit) {
  goro::runtime rt{opts()};
  in_fiber(rt, [&] {
    goro::group g;
    g.set_limit(1);
    goro::binary_semaphore release_first{0};
    EXPECT_TRUE(g.try_go([&] { release_first.acquire(); }));
    EXPECT_FALSE(g.try_go([] {})) << "at the limit";
    EXPECT_THROW(g.set_limit(2), std::logic_error) << "a function is running";
    release_first.release();
    g.wait();
  });
}

TEST_P(SyncGroupWorkersTest, ParentStopReachesTheGroup) {
  goro::runtime rt{opts()};
  std::stop_source parent;
  std::atomic<bool> stopped{false};
  event_count started;
  goro::binary_semaphore done{0};
  rt.go([&] {
    goro::group g{parent.get_token()};
    g.go([&](std::stop_token st) {
      started.arrive();
      goro::binary_semaphore never{0};
      stopped.store(!never.acquire(st));
    });
    g.wait();
    done.release();
  });
  ASSERT_TRUE(started.wait_for(1));
  std::thread([&] { parent.request_stop(); }).join();
  EXPECT_TRUE(done.try_acquire_for(patience));
  EXPECT_TRUE(stopped.load());
}

TEST(SyncGroupTest, MisuseAfterWaitThrows) {
  goro::runtime rt{goro::options{.workers = 1}};
  in_fiber(rt, [] {
    goro::group g;
    g.go([] {});
    g.wait();
    try {
      g.go([] {});
      ADD_FAILURE() << "no std::logic_error";
    } catch (const std::logic_error& e) {
      EXPECT_NE(std::string(e.what()).find("goro::group::go"), std::string::npos);
    }
    EXPECT_THROW(g.try_go([] {}), std::logic_error);
    EXPECT_THROW(g.wait(), std::logic_error);
    EXPECT_THROW(g.set_limit(2), std::logic_error);
  });
}

TEST(SyncGroupTest, WaitFromAPlainThreadAndDestroyWithoutWait) {
  // From a plain thread, go() uses the default runtime; wait() blocks the thread.
  std::atomic<int> ran{0};
  {
    goro::group g{2};
    for (int i = 0; i < 10; ++i) g.go([&] { ran.fetch_add(1); });
    g.wait();
  }
  EXPECT_EQ(ran.load(), 10);
  std::atomic<bool> saw_stop{false};
  {
    goro::group g;
    g.go([&](std::stop_token st) {
      goro::binary_semaphore never{0};
      saw_stop.store(!never.acquire(st));
    });
  }  // ~group requests stop and waits
  EXPECT_TRUE(saw_stop.load());
}

}  // namespace
