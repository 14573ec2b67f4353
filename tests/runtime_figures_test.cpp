// SPDX-License-Identifier: Apache-2.0
// Measurements of the runtime core for the release notes, each printed as a "[ figure ]" line
// and recorded as a test property: the cost of spawning a fiber (spawn, run, exit), the cost
// of one yield between two fibers alternating on one worker, and resident memory per sleeping
// fiber at 100,000 sleeping fibers. Each also asserts a bound that only a broken runtime
// misses; the figures themselves are meaningful only from the release preset.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <stop_token>
#include <string>

#include <gtest/gtest.h>

#include "goro/goro.hpp"
#include "test_support.hpp"

namespace {

using namespace std::chrono_literals;
using goro_test::ms_since;
using goro_test::scaled;
using clock_type = std::chrono::steady_clock;

void report(const char* property, const char* text, double value, const char* unit) {
  std::printf("[ figure ] %s: %.1f %s\n", text, value, unit);
  ::testing::Test::RecordProperty(property, std::to_string(value));
}

TEST(RuntimeFiguresTest, SpawnCostPerFiber) {
  // A fifth under TSan (fiber_count), whose figure is no goro's anyway.
  const std::size_t n = goro_test::live_fiber_cap(goro_test::fiber_count(scaled(200'000)));
  goro::runtime rt{goro::options{.workers = 1}};

  // From a fiber on the same worker: the usual case of go() in a fiber.
  goro::wait_group children;
  goro::wait_group measured;
  children.add(static_cast<std::int64_t>(n));
  measured.add(1);
  double from_fiber_ns = 0;
  rt.go([&] {
    const auto start = clock_type::now();
    for (std::size_t i = 0; i < n; ++i) goro::go([&children] { children.done(); });
    children.wait();
    from_fiber_ns = ms_since(start) * 1e6 / static_cast<double>(n);
    measured.done();
  });
  measured.wait();

  // From a plain thread, through the global queue.
  goro::wait_group wg2;
  wg2.add(static_cast<std::int64_t>(n));
  const auto start = clock_type::now();
  for (std::size_t i = 0; i < n; ++i) rt.go([&wg2] { wg2.done(); });
  wg2.wait();
  const double from_thread_ns = ms_since(start) * 1e6 / static_cast<double>(n);

  // Every fiber alive at once (each parks until all are spawned): a fresh stack per fiber,
  // first-touch page faults included.
  goro::wait_group gate;
  goro::wait_group cold;
  gate.add(1);
  cold.add(static_cast<std::int64_t>(n));
  const auto cold_start = clock_type::now();
  for (std::size_t i = 0; i < n; ++i) {
    rt.go([&] {
      gate.wait();
      cold.done();
    });
  }
  gate.done();
  cold.wait();
  const double all_alive_ns = ms_since(cold_start) * 1e6 / static_cast<double>(n);

  report("spawn_ns_from_fiber", "spawn+run+exit per fiber, spawned from a fiber, 1 worker",
         from_fiber_ns, "ns");
  report("spawn_ns_all_alive",
         "spawn+park+wake+exit per fiber, spawned from a thread, all alive at once, 1 worker",
         all_alive_ns, "ns");
  report("spawn_ns_from_thread", "spawn+run+exit per fiber, spawned from a thread, 1 worker",
         from_thread_ns, "ns");
  EXPECT_GT(from_fiber_ns, 0.0);
  if (!goro_test::sanitized) {  // sanitized builds are slower by an unknown factor
    EXPECT_LT(from_fiber_ns, 50'000.0);
    EXPECT_LT(all_alive_ns, 50'000.0);
    EXPECT_LT(from_thread_ns, 50'000.0);
  }
}

TEST(RuntimeFiguresTest, YieldCost) {
  const std::size_t rounds = scaled(1'000'000);
  goro::runtime rt{goro::options{.workers = 1}};
  goro::wait_group both_here;
  goro::wait_group both_done;
  both_here.add(2);
  both_done.add(2);
  clock_type::time_point start;
  for (int f = 0; f < 2; ++f) {
    rt.go([&] {
      // Both check in first, so that from here on every yield is a switch to the other.
      both_here.done();
      both_here.wait();
      if (start == clock_type::time_point{}) start = clock_type::now();
      for (std::size_t i = 0; i < rounds; ++i) goro::this_fiber::yield();
      both_done.done();
    });
  }
  both_done.wait();
  const double ns = ms_since(start) * 1e6 / static_cast<double>(2 * rounds);
  report("yield_ns", "yield between two fibers alternating on 1 worker", ns, "ns per yield");
  EXPECT_GT(ns, 0.0);
  if (!goro_test::sanitized) {
    EXPECT_LT(ns, 20'000.0);
  }
}

TEST(RuntimeFiguresTest, MemoryPerSleepingFiber) {
#ifdef GORO_TEST_TSAN
  GTEST_SKIP() << "ThreadSanitizer's shadow memory (about 870 KiB per fiber) is all this "
                  "would measure, and creating fibers under it is too slow for the deadline";
#endif
  // At 100,000 sleeping fibers (fewer under sanitizers, by the knob). They are spawned from a
  // fiber, which is quick (each child runs until it sleeps), and sleep until a deadline far
  // beyond any spawning time, so all of them are asleep at once when VmRSS is read; then a
  // stop request wakes them all. (A deadline of 3 s once failed on a loaded machine.)
  const std::size_t n = goro_test::sanitized ? goro_test::live_fiber_cap(scaled(100'000)) : 100'000;
  goro::runtime rt{goro::options{.workers = 2}};
  goro::wait_group asleep;
  goro::wait_group finished;
  std::stop_source wake;
  std::atomic<std::size_t> overslept{0};
  asleep.add(static_cast<std::int64_t>(n));
  finished.add(static_cast<std::int64_t>(n));
  const std::size_t before = goro_test::resident_bytes();
  const auto wake_at = clock_type::now() + 10min;
  rt.go([&] {
    for (std::size_t i = 0; i < n; ++i) {
      goro::go([&] {
        asleep.done();
        if (goro::this_fiber::sleep_until(wake_at, wake.get_token())) overslept.fetch_add(1);
        finished.done();
      });
    }
  });
  asleep.wait();
  const bool all_asleep = clock_type::now() < wake_at;
  const std::size_t during = goro_test::resident_bytes();
  wake.request_stop();
  finished.wait();
  EXPECT_EQ(overslept.load(), 0u);  // every one was still asleep when the stop came
  const double per_fiber =
      static_cast<double>(during - std::min(during, before)) / static_cast<double>(n);
  std::printf("[ figure ] VmRSS per sleeping fiber at %zu fibers (stack %zu KiB): %.0f bytes\n", n,
              rt.stack_size() / 1024, per_fiber);
  RecordProperty("rss_bytes_per_sleeping_fiber", std::to_string(per_fiber));
  ASSERT_TRUE(all_asleep) << "spawning took longer than the sleep; the figure would be wrong";
  EXPECT_GT(per_fiber, 0.0);
  EXPECT_LT(per_fiber, 16.0 * 1024);
}

}  // namespace
