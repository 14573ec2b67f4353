// SPDX-License-Identifier: Apache-2.0
// Tests of goro::call_once: one call, arguments, the retry after a throw, waiters. Go's sync tests
// written again as behaviour; concurrency tests run once per worker count, and the heavy mixes are
// in sync_stress_test.cpp.
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

TEST(SyncOnceTest, CallsOnceAndPassesArguments) {
  goro::once_flag flag;
  int calls = 0;
  for (int i = 0; i < 3; ++i)
    goro::call_once(
        flag, [&](int k) { calls += k; }, 5);
  EXPECT_EQ(calls, 5);
}

TEST(SyncOnceTest, RetriesAfterAThrow) {
  // Go's TestOncePanic, with std::call_once's rule: a call that throws does not count.
  goro::once_flag flag;
  int calls = 0;
  EXPECT_THROW(goro::call_once(flag,
                               [&] {
                                 ++calls;
                                 throw std::runtime_error("first");
                               }),
               std::runtime_error);
  goro::call_once(flag, [&] { ++calls; });
  goro::call_once(flag, [&] { ++calls; });
  EXPECT_EQ(calls, 2);
}

class SyncOnceWorkersTest : public goro_test::workers_test {};
INSTANTIATE_TEST_SUITE_P(Workers, SyncOnceWorkersTest, goro_test::worker_counts(),
                         goro_test::worker_count_name);

TEST_P(SyncOnceWorkersTest, ConcurrentFirstCallsWaitForTheOne) {
  // Go's TestOnce: many callers at once; one call; every caller returns after it finished.
  constexpr int fibers = 16;
  constexpr int threads = 2;
  goro::once_flag flag;
  std::atomic<int> calls{0};
  std::atomic<bool> finished{false};
  std::atomic<int> early{0};
  auto caller = [&] {
    goro::call_once(flag, [&] {
      calls.fetch_add(1);
      goro::this_fiber::sleep_for(5ms);  // keeps the others waiting
      finished.store(true);
    });
    if (!finished.load()) early.fetch_add(1);
  };
  {
    goro::runtime rt{opts()};
    for (int i = 0; i < fibers; ++i) rt.go(caller);
    std::vector<std::thread> pool;
    for (int i = 0; i < threads; ++i) pool.emplace_back(caller);
    for (auto& t : pool) t.join();
  }
  EXPECT_EQ(calls.load(), 1);
  EXPECT_EQ(early.load(), 0);
}

TEST_P(SyncOnceWorkersTest, AThrowPassesTheTurnToAWaiter) {
  constexpr int fibers = 8;
  goro::once_flag flag;
  std::atomic<int> calls{0};
  std::atomic<int> threw{0};
  {
    goro::runtime rt{opts()};
    for (int i = 0; i < fibers; ++i) {
      rt.go([&] {
        try {
          goro::call_once(flag, [&] {
            const int n = calls.fetch_add(1);
            goro::this_fiber::sleep_for(2ms);  // keeps the others waiting
            if (n == 0) throw std::runtime_error("first call fails");
          });
        } catch (const std::runtime_error&) {
          threw.fetch_add(1);
        }
      });
    }
  }
  EXPECT_EQ(calls.load(), 2);
  EXPECT_EQ(threw.load(), 1);
}

}  // namespace
