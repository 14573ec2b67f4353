// SPDX-License-Identifier: Apache-2.0
// Tests of goro::condition_variable: signal and broadcast, arrival order, lost notifications, stop
// and deadline forms. Go's sync tests written again as behaviour; concurrency tests run once per
// worker count, and the heavy mixes are in sync_stress_test.cpp.
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

TEST(SyncCondVarTest, WaitWithoutTheLockThrows) {
  goro::mutex m;
  goro::condition_variable cv;
  std::unique_lock lock(m, std::defer_lock);
  try {
    cv.wait(lock);
    ADD_FAILURE() << "no std::logic_error";
  } catch (const std::logic_error& e) {
    EXPECT_NE(std::string(e.what()).find("goro::condition_variable::wait"), std::string::npos);
  }
}

TEST(SyncCondVarTest, TimedWaitsTimeOutOnAThread) {
  goro::mutex m;
  goro::condition_variable cv;
  std::unique_lock lock(m);
  const auto start = steady::now();
  EXPECT_EQ(cv.wait_for(lock, 20ms), std::cv_status::timeout);
  EXPECT_GE(steady::now() - start, 20ms);
  EXPECT_TRUE(lock.owns_lock());
  EXPECT_EQ(cv.wait_until(lock, std::chrono::system_clock::now() + 5ms), std::cv_status::timeout);
  EXPECT_FALSE(cv.wait_for(lock, 5ms, [] { return false; }));
  EXPECT_TRUE(cv.wait_for(lock, 5ms, [] { return true; }));
  std::stop_source stop;
  stop.request_stop();
  EXPECT_FALSE(cv.wait(lock, stop.get_token(), [] { return false; }));
  EXPECT_TRUE(cv.wait(lock, stop.get_token(), [] { return true; }));
  EXPECT_TRUE(lock.owns_lock());
  cv.notify_one();  // no waiters: nothing happens
  cv.notify_all();
}

class SyncCondVarWorkersTest : public goro_test::workers_test {};
INSTANTIATE_TEST_SUITE_P(Workers, SyncCondVarWorkersTest, goro_test::worker_counts(),
                         goro_test::worker_count_name);

TEST_P(SyncCondVarWorkersTest, SignalWakesOneWaiterAtATime) {
  // Go's TestCondSignal: n fibers wait; each notify_one lets exactly one through.
  constexpr int n = 4;
  goro::mutex m;
  goro::condition_variable cv;
  int waiting = 0;  // GUARDED_BY(m)
  int tickets = 0;  // GUARDED_BY(m)
  event_count through;
  goro::runtime rt{opts()};
  for (int i = 0; i < n; ++i) {
    rt.go([&] {
      std::unique_lock lock(m);
      ++waiting;
      cv.wait(lock, [&] { return tickets > 0; });
      --tickets;
      lock.unlock();
      through.arrive();
    });
  }
  // Wait until every fiber is waiting (waiting is bumped under m just before the wait).
  for (;;) {
    std::unique_lock lock(m);
    if (waiting == n) break;
    lock.unlock();
    std::this_thread::sleep_for(1ms);
  }
  for (int i = 1; i <= n; ++i) {
    {
      std::lock_guard lock(m);
      ++tickets;
    }
    cv.notify_one();
    ASSERT_TRUE(through.wait_for(i));
    EXPECT_EQ(through.count(), i);
  }
}

TEST_P(SyncCondVarWorkersTest, WaitersWakeInArrivalOrder) {
  // Waiters queue in the order they waited (each registers under the mutex before releasing
  // it), and notify_one serves the longest waiter first.
  constexpr int n = 5;
  goro::mutex m;
  goro::condition_variable cv;
  goro::condition_variable arrived;
  int registered = 0;      // GUARDED_BY(m)
  std::vector<int> order;  // GUARDED_BY(m)
  goro::runtime rt{opts()};
  for (int i = 0; i < n; ++i) {
    rt.go([&, i] {
      std::unique_lock lock(m);
      ++registered;
      arrived.notify_all();
      cv.wait(lock);
      order.push_back(i);
      arrived.notify_all();
    });
    std::unique_lock lock(m);
    ASSERT_TRUE(arrived.wait_for(lock, patience, [&] { return registered == i + 1; }));
  }
  for (int i = 0; i < n; ++i) {
    std::unique_lock lock(m);
    cv.notify_one();
    ASSERT_TRUE(
        arrived.wait_for(lock, patience, [&] { return order.size() == std::size_t(i) + 1; }));
  }
  std::lock_guard lock(m);
  EXPECT_EQ(order, (std::vector<int>{0, 1, 2, 3, 4}));
}

TEST_P(SyncCondVarWorkersTest, BroadcastWakesEveryWaiterFibersAndThreads) {
  // Go's TestCondBroadcast, with some waiters on plain threads.
  constexpr int fibers = 6;
  constexpr int threads = 2;
  goro::mutex m;
  goro::condition_variable cv;
  int generation = 0;  // GUARDED_BY(m)
  int waiting = 0;     // GUARDED_BY(m)
  event_count woke;
  goro::runtime rt{opts()};
  auto waiter = [&] {
    std::unique_lock lock(m);
    const int g = generation;
    ++waiting;
    cv.wait(lock, [&] { return generation != g; });
    lock.unlock();
    woke.arrive();
  };
  for (int i = 0; i < fibers; ++i) rt.go(waiter);
  std::vector<std::thread> pool;
  for (int i = 0; i < threads; ++i) pool.emplace_back(waiter);
  for (;;) {
    std::unique_lock lock(m);
    if (waiting == fibers + threads) break;
    lock.unlock();
    std::this_thread::sleep_for(1ms);
  }
  {
    std::lock_guard lock(m);
    ++generation;
  }
  cv.notify_all();
  EXPECT_TRUE(woke.wait_for(fibers + threads));
  for (auto& t : pool) t.join();
}

TEST_P(SyncCondVarWorkersTest, PingPongLosesNoNotification) {
  const int rounds = static_cast<int>(scaled(5000));
  goro::mutex m;
  goro::condition_variable cv;
  int turn = 0;  // GUARDED_BY(m): even = ping's turn, odd = pong's
  event_count done;
  goro::runtime rt{opts()};
  for (int side = 0; side < 2; ++side) {
    rt.go([&, side] {
      for (int i = 0; i < rounds; ++i) {
        std::unique_lock lock(m);
        cv.wait(lock, [&] { return turn % 2 == side; });
        ++turn;
        cv.notify_one();
      }
      done.arrive();
    });
  }
  ASSERT_TRUE(done.wait_for(2));
  std::lock_guard lock(m);
  EXPECT_EQ(turn, 2 * rounds);
}

TEST_P(SyncCondVarWorkersTest, WaitCancelledFromAnotherFiberAndFromAThread) {
  goro::mutex m;
  goro::condition_variable cv;
  std::stop_source by_fiber;
  std::stop_source by_thread;
  std::atomic<int> cancelled{0};
  event_count returned;
  goro::runtime rt{opts()};
  for (std::stop_source* s : {&by_fiber, &by_thread}) {
    rt.go([&, s] {
      std::unique_lock lock(m);
      if (!cv.wait(lock, s->get_token(), [] { return false; })) cancelled.fetch_add(1);
      EXPECT_TRUE(lock.owns_lock());
      lock.unlock();
      returned.arrive();
    });
  }
  rt.go([&] {
    goro::this_fiber::sleep_for(20ms);  // lets the waiters park
    by_fiber.request_stop();
  });
  let_it_block();
  std::thread([&] { by_thread.request_stop(); }).join();
  ASSERT_TRUE(returned.wait_for(2));
  EXPECT_EQ(cancelled.load(), 2);
  // The mutex came back free, and the cancelled waiters left the queue: a notify has nobody
  // stale to wake, and a new waiter is served.
  ASSERT_TRUE(m.try_lock());
  m.unlock();
  bool flag = false;
  event_count served;
  rt.go([&] {
    std::unique_lock lock(m);
    if (cv.wait_for(lock, patience, [&] { return flag; })) served.arrive();
  });
  let_it_block();
  {
    std::lock_guard lock(m);
    flag = true;
  }
  cv.notify_one();
  EXPECT_TRUE(served.wait_for(1));
}

TEST_P(SyncCondVarWorkersTest, DeadlineAndStopForms) {
  goro::mutex m;
  goro::condition_variable cv;
  event_count done;
  goro::runtime rt{opts()};
  rt.go([&] {
    std::unique_lock lock(m);
    const auto start = steady::now();
    EXPECT_EQ(cv.wait_for(lock, 20ms), std::cv_status::timeout);
    EXPECT_GE(steady::now() - start, 20ms);
    std::stop_source never;
    EXPECT_FALSE(cv.wait_for(lock, 10ms, never.get_token(), [] { return false; }));
    EXPECT_FALSE(
        cv.wait_until(lock, steady::now() + 10ms, never.get_token(), [] { return false; }));
    EXPECT_FALSE(cv.wait_until(lock, std::chrono::system_clock::now() + 5ms, [] { return false; }));
    done.arrive();
  });
  EXPECT_TRUE(done.wait_for(1));
}

TEST_P(SyncCondVarWorkersTest, NotifiedBeforeStopReturnsTrue) {
  goro::mutex m;
  goro::condition_variable cv;
  std::stop_source stop;
  bool ready = false;  // GUARDED_BY(m)
  bool result = false;
  event_count done;
  goro::runtime rt{opts()};
  rt.go([&] {
    std::unique_lock lock(m);
    result = cv.wait(lock, stop.get_token(), [&] { return ready; });
    done.arrive();
  });
  let_it_block();
  {
    std::lock_guard lock(m);
    ready = true;
  }
  cv.notify_all();
  ASSERT_TRUE(done.wait_for(1));
  stop.request_stop();
  EXPECT_TRUE(result);
}

}  // namespace
