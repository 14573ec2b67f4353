// SPDX-License-Identifier: Apache-2.0
// Tests of goro::counting_semaphore: counts, misuse, bounds, hand-off order, cancellation and
// deadlines. Go's sync tests written again as behaviour; concurrency tests run once per worker
// count, and the heavy mixes are in sync_stress_test.cpp.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
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

TEST(SyncSemaphoreTest, CountsAndTries) {
  goro::counting_semaphore<3> s{2};
  static_assert(goro::counting_semaphore<3>::max() == 3);
  static_assert(goro::counting_semaphore<>::max() == PTRDIFF_MAX);
  EXPECT_TRUE(s.try_acquire());
  EXPECT_TRUE(s.try_acquire());
  EXPECT_FALSE(s.try_acquire());
  EXPECT_FALSE(s.try_acquire_for(10ms));
  EXPECT_FALSE(s.try_acquire_until(std::chrono::system_clock::now() + 1ms));
  s.release(3);
  for (int i = 0; i < 3; ++i) s.acquire();
  EXPECT_FALSE(s.try_acquire());
  s.release(0);
  EXPECT_FALSE(s.try_acquire());
}

TEST(SyncSemaphoreTest, MisuseThrowsAndLeavesTheCount) {
  goro::binary_semaphore b{1};
  try {
    b.release();
    ADD_FAILURE() << "no std::logic_error";
  } catch (const std::logic_error& e) {
    EXPECT_NE(std::string(e.what()).find("goro::counting_semaphore::release"), std::string::npos);
    EXPECT_NE(std::string(e.what()).find("max()"), std::string::npos);
  }
  EXPECT_TRUE(b.try_acquire());
  EXPECT_FALSE(b.try_acquire());
  goro::counting_semaphore<5> s{4};
  EXPECT_THROW(s.release(2), std::logic_error);
  EXPECT_THROW(s.release(-1), std::invalid_argument);
  s.release(1);
  for (int i = 0; i < 5; ++i) EXPECT_TRUE(s.try_acquire());
  EXPECT_FALSE(s.try_acquire());
  EXPECT_THROW(goro::binary_semaphore{2}, std::invalid_argument);
  EXPECT_THROW(goro::counting_semaphore<>{-1}, std::invalid_argument);
  goro::counting_semaphore<> big{PTRDIFF_MAX};
  EXPECT_THROW(big.release(), std::logic_error);
  EXPECT_TRUE(big.try_acquire());
  big.release();
}

class SyncSemaphoreWorkersTest : public goro_test::workers_test {};
INSTANTIATE_TEST_SUITE_P(Workers, SyncSemaphoreWorkersTest, goro_test::worker_counts(),
                         goro_test::worker_count_name);

TEST_P(SyncSemaphoreWorkersTest, BoundsHowManyRunAtOnce) {
  constexpr int limit = 3;
  constexpr int fibers = 12;
  goro::counting_semaphore<limit> s{limit};
  std::atomic<int> inside{0};
  std::atomic<int> max_inside{0};
  {
    goro::runtime rt{opts()};
    for (int i = 0; i < fibers; ++i) {
      rt.go([&] {
        s.acquire();
        note_max(max_inside, inside.fetch_add(1) + 1);
        goro::this_fiber::sleep_for(1ms);
        inside.fetch_sub(1);
        s.release();
      });
    }
  }
  EXPECT_LE(max_inside.load(), limit);
  EXPECT_GE(max_inside.load(), 1);
}

TEST_P(SyncSemaphoreWorkersTest, ReleaseHandsPermitsToWaitersInOrder) {
  constexpr int n = 4;
  goro::counting_semaphore<> s{0};
  goro::mutex m;
  std::vector<int> order;  // GUARDED_BY(m)
  event_count queued;
  event_count through;
  goro::runtime rt{opts()};
  for (int i = 0; i < n; ++i) {
    rt.go([&, i] {
      queued.arrive();
      s.acquire();
      {
        std::lock_guard lock(m);
        order.push_back(i);
      }
      through.arrive();
    });
    ASSERT_TRUE(queued.wait_for(i + 1));
    // Only a sleep can let fiber i queue (a few instructions after arrive()) before fiber i+1
    // starts; generous, as a loaded machine may preempt it in between.
    std::this_thread::sleep_for(50ms);
  }
  s.release(2);
  ASSERT_TRUE(through.wait_for(2));
  s.release(2);
  ASSERT_TRUE(through.wait_for(4));
  std::lock_guard lock(m);
  ASSERT_EQ(order.size(), std::size_t{n});
  std::vector<int> first(order.begin(), order.begin() + 2);
  std::sort(first.begin(), first.end());
  EXPECT_EQ(first, (std::vector<int>{0, 1}));
  EXPECT_FALSE(s.try_acquire());
}

TEST_P(SyncSemaphoreWorkersTest, AcquireCancelledFromAFiberAndAThreadKeepsNoPermit) {
  goro::counting_semaphore<> s{0};
  std::stop_source by_fiber;
  std::stop_source by_thread;
  std::atomic<int> cancelled{0};
  event_count returned;
  event_count served;
  goro::runtime rt{opts()};
  for (std::stop_source* src : {&by_fiber, &by_thread}) {
    rt.go([&, src] {
      if (!s.acquire(src->get_token())) cancelled.fetch_add(1);
      returned.arrive();
    });
  }
  rt.go([&] {
    s.acquire();  // queued behind the cancellable ones
    served.arrive();
  });
  rt.go([&] {
    goro::this_fiber::sleep_for(20ms);  // lets the acquirers queue
    by_fiber.request_stop();
  });
  let_it_block();
  std::thread([&] { by_thread.request_stop(); }).join();
  ASSERT_TRUE(returned.wait_for(2));
  EXPECT_EQ(cancelled.load(), 2);
  s.release();  // must reach the plain acquire, not a cancelled one
  EXPECT_TRUE(served.wait_for(1));
  EXPECT_FALSE(s.try_acquire());
}

TEST_P(SyncSemaphoreWorkersTest, DeadlinesAndASignalFromAThread) {
  goro::binary_semaphore s{0};
  event_count done;
  goro::runtime rt{opts()};
  rt.go([&] {
    const auto start = steady::now();
    EXPECT_FALSE(s.try_acquire_for(20ms));
    EXPECT_GE(steady::now() - start, 20ms);
    std::stop_source never;
    EXPECT_FALSE(s.try_acquire_until(steady::now() + 5ms, never.get_token()));
    done.arrive();
    EXPECT_TRUE(s.try_acquire_for(patience));  // the thread's release below
    done.arrive();
  });
  ASSERT_TRUE(done.wait_for(1));
  std::thread([&] { s.release(); }).join();
  EXPECT_TRUE(done.wait_for(2));
}

// A semaphore used as a completion signal: whoever takes the last permit it waits for may
// delete it, even while the release() that added that permit is still returning. Each round,
// three waiters are cancelled at about the moment of a release and then spin on try_acquire();
// a fourth stays parked (even rounds) or is not there (odd rounds). The release finds waiters
// queued or leaving, so it takes the slow path; what it cannot hand over goes to the count,
// where the spinning waiters take it. The last waiter to finish deletes the semaphore.
// release() once added those permits under the spinlock and released the spinlock after: a
// window of a few instructions, which this test did not catch unaided on the 2-CPU development
// machine, only with it widened by a delay (see the commit); it stands guard over the order,
// under ASan.
TEST_P(SyncSemaphoreWorkersTest, MayBeDestroyedByItsLastUserWhileAReleaseReturns) {
  const int rounds = static_cast<int>(scaled(goro_test::sanitized ? 3000 : 500));
  constexpr int cancelled = 3;
  goro::runtime rt{opts()};
  // The releaser is this thread, so that it runs beside the waiters' fibers.
  for (int r = 0; r < rounds; ++r) {
    const int users = cancelled + (r % 2 == 0 ? 1 : 0);
    auto* s = new goro::counting_semaphore<>{0};
    auto* left = new std::atomic<int>(users);
    std::stop_source stop;
    goro::wait_group users_done;
    users_done.add(users);
    auto finish = [s, left, &users_done] {
      if (left->fetch_sub(1) == 1) {  // the last user: nobody else touches the semaphore again
        delete s;
        delete left;
      }
      users_done.done();
    };
    const std::uint64_t parked_before = rt.metrics().fibers_parked;
    if (users > cancelled) {
      rt.go([s, finish] {
        s->acquire();
        finish();
      });
    }
    for (int i = 0; i < cancelled; ++i) {
      rt.go([s, token = stop.get_token(), finish] {
        if (!s->acquire(token)) {
          while (!s->try_acquire()) goro::this_fiber::yield();
        }
        finish();
      });
    }
    // Let the waiters queue: the parked count rises as they do (with metrics built in).
    for (int i = 0;
         i < 1000 && rt.metrics().fibers_parked - parked_before < static_cast<std::uint64_t>(users);
         ++i) {
      std::this_thread::yield();
    }
    stop.request_stop();
    spin_for(r / 2 * 37 % 1024 * 16);
    s->release(users);
    users_done.wait();
  }
}

}  // namespace
