// SPDX-License-Identifier: Apache-2.0
// Stress tests of the runtime core at the sizes, every one scaled by GORO_STRESS_SCALE:
// a million fibers spawned into one wait_group and a skynet-shaped tree of a million leaves
// (both per worker count), ~runtime() racing the last exits, and, once, a million fibers alive
// at the same time on stock Linux settings (vm.max_map_count = 65530), all parked until the
// test releases them. Under ThreadSanitizer the sizes are also capped below its thread table
// (test_support.hpp).
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <functional>

#include <gtest/gtest.h>

#include "goro/goro.hpp"
#include "test_support.hpp"

namespace {

using goro_test::ms_since;
using goro_test::scaled;
using clock_type = std::chrono::steady_clock;

class RuntimeStressTest : public goro_test::workers_test {};
INSTANTIATE_TEST_SUITE_P(Workers, RuntimeStressTest, goro_test::worker_counts(),
                         goro_test::worker_count_name);

TEST_P(RuntimeStressTest, SpawnsAMillionFibersIntoOneWaitGroup) {
  // Spawned from a thread faster than they finish, so many may be alive at once. Each spawn
  // repeats the same race with the joins, so TSan checks it on fewer (fiber_count).
  const std::size_t n = goro_test::fiber_count(goro_test::live_fiber_cap(scaled(1'000'000)));
  goro::runtime rt{opts()};
  goro::wait_group wg;
  std::atomic<std::uint64_t> sum{0};
  wg.add(static_cast<std::int64_t>(n));
  const auto start = clock_type::now();
  for (std::size_t i = 0; i < n; ++i) {
    rt.go(
        [&](std::uint64_t v) {
          sum.fetch_add(v, std::memory_order_relaxed);
          wg.done();
        },
        i);
  }
  wg.wait();
  std::printf("[ figure ] %zu fibers spawned from a thread and joined on %zu workers: %.0f ms\n", n,
              workers(), ms_since(start));
  EXPECT_EQ(sum.load(), n * (n - 1) / 2);
  EXPECT_EQ(wg.count(), 0);
}

// One skynet node: leaves report their number, inner nodes spawn ten children and add up
// what they report. Every node reports into its parent's accumulator, then done()s.
void skynet(std::atomic<std::uint64_t>& parent_sum, goro::wait_group& parent_wg, std::uint64_t num,
            std::uint64_t size) {
  if (size == 1) {
    parent_sum.fetch_add(num, std::memory_order_relaxed);
    parent_wg.done();
    return;
  }
  std::atomic<std::uint64_t> sum{0};
  goro::wait_group wg;
  const std::uint64_t child = size / 10;
  wg.add(10);
  for (std::uint64_t i = 0; i < 10; ++i) {
    goro::go(skynet, std::ref(sum), std::ref(wg), num + i * child, child);
  }
  wg.wait();
  parent_sum.fetch_add(sum.load(std::memory_order_relaxed), std::memory_order_relaxed);
  parent_wg.done();
}

TEST_P(RuntimeStressTest, SkynetOfAMillionLeaves) {
  // The largest power of ten within the scaled size, at least 10.
  std::uint64_t leaves = 10;
  while (leaves * 10 <= goro_test::live_fiber_cap(scaled(1'000'000))) leaves *= 10;
  goro::runtime rt{opts()};
  std::atomic<std::uint64_t> sum{0};
  goro::wait_group wg;
  wg.add(1);
  const auto start = clock_type::now();
  rt.go(skynet, std::ref(sum), std::ref(wg), std::uint64_t{0}, leaves);
  wg.wait();
  std::printf("[ figure ] skynet of %llu leaves (%llu fibers) on %zu workers: %.0f ms\n",
              static_cast<unsigned long long>(leaves),
              static_cast<unsigned long long>(leaves + (leaves - 1) / 9), workers(),
              ms_since(start));
  EXPECT_EQ(sum.load(), leaves * (leaves - 1) / 2);
}

// ~runtime() sums per-worker counts of created and finished fibers, and hears of the last exit
// only when a worker parks (docs/scheduler.md, "Counting live fibers"). Here the destructor
// starts while the last fibers, spawned by fibers on every worker, are still exiting: a lost
// wake-up hangs (and the ctest timeout fails it), an early return leaves `exited` short.
TEST_P(RuntimeStressTest, DestructorRacesTheLastExits) {
  const std::size_t rounds = scaled(300);
  constexpr int parents = 8;
  for (std::size_t round = 0; round < rounds; ++round) {
    std::atomic<int> exited{0};
    {
      goro::runtime rt{opts()};
      for (int p = 0; p < parents; ++p) {
        rt.go([&exited, round] {
          goro::go([&exited] { exited.fetch_add(1, std::memory_order_relaxed); });
          if (round % 2 == 0) goro::this_fiber::yield();
          exited.fetch_add(1, std::memory_order_relaxed);
        });
      }
    }
    ASSERT_EQ(exited.load(std::memory_order_relaxed), 2 * parents) << "round " << round;
  }
}

TEST(RuntimeStressOnceTest, AMillionFibersAliveAtOnce) {
  // Under TSan a fifth of the scaled number (fiber_count): the number is the point of the test
  // in the release build, and the races of the spawn and wake-up under TSan are the same.
  const std::size_t n = goro_test::live_fiber_cap(goro_test::fiber_count(scaled(1'000'000)));
  goro::runtime rt{goro::options{.workers = 4}};
  goro::wait_group alive;     // every fiber has started and is about to park
  goro::wait_group release;   // what they park on, until all are alive
  goro::wait_group finished;  // every fiber has returned from its park
  alive.add(static_cast<std::int64_t>(n));
  release.add(1);
  finished.add(static_cast<std::int64_t>(n));
  std::atomic<std::uint64_t> sum{0};
  const std::size_t rss_before = goro_test::resident_bytes();
  const auto start = clock_type::now();
  // Spawned from a few fibers as well as from this thread, so the spawning itself is spread.
  constexpr std::size_t spawners = 4;
  alive.add(static_cast<std::int64_t>(spawners));
  for (std::size_t s = 0; s < spawners; ++s) {
    rt.go([&, s] {
      for (std::size_t i = s; i < n; i += spawners) {
        goro::go(
            [&](std::uint64_t v) {
              alive.done();
              release.wait();
              sum.fetch_add(v, std::memory_order_relaxed);
              finished.done();
            },
            std::uint64_t{i});
      }
      alive.done();
    });
  }
  alive.wait();
  const double spawn_ms = ms_since(start);
  const std::size_t rss_alive = goro_test::resident_bytes();
  // Nobody has been released yet, so every one of the n fibers is alive right now.
  EXPECT_EQ(finished.count(), static_cast<std::int64_t>(n));
  const auto release_start = clock_type::now();
  release.done();
  finished.wait();
  const double rss_per_fiber =
      static_cast<double>(rss_alive - std::min(rss_alive, rss_before)) / static_cast<double>(n);
  std::printf(
      "[ figure ] %zu fibers alive at once: spawned and parked in %.0f ms, released "
      "and joined in %.0f ms, VmRSS +%.0f MiB (%.0f bytes per fiber)\n",
      n, spawn_ms, ms_since(release_start),
      static_cast<double>(rss_alive - std::min(rss_alive, rss_before)) / (1 << 20), rss_per_fiber);
  RecordProperty("alive_fibers", std::to_string(n));
  RecordProperty("alive_rss_bytes_per_fiber", std::to_string(rss_per_fiber));
  EXPECT_EQ(sum.load(), static_cast<std::uint64_t>(n) * (n - 1) / 2);
}

}  // namespace
