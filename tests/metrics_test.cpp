// SPDX-License-Identifier: Apache-2.0
// goro::runtime_metrics (goro/metrics.hpp, docs/diagnostics.md "Metrics"): the counts add up
// (spawns == finished + alive) at rest and while fibers are parked on a channel; a ping-pong of
// known length counts its context switches and its channel operations exactly; selects and
// their wake-ups are counted; workers' sleeps, wake-ups and steals show up; goro::metrics()
// reads the calling fiber's runtime; and a plain thread may read the metrics while fibers run,
// always finding them consistent (a ThreadSanitizer check as well).
#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <thread>

#include <gtest/gtest.h>

#include "goro/goro.hpp"
#include "test_support.hpp"

namespace {

using namespace std::chrono_literals;
using goro::chan;
using goro::runtime_metrics;

// Polls rt's metrics until pred holds of them or 10 s pass; returns the last snapshot. Polling
// the metrics is what is under test here: nothing else could say when fibers have parked or
// finished, as wait_group::done() runs before its fiber returns.
runtime_metrics wait_for(const goro::runtime& rt,
                         const std::function<bool(const runtime_metrics&)>& pred) {
  const auto until = std::chrono::steady_clock::now() + 10s;
  runtime_metrics m = rt.metrics();
  while (!pred(m) && std::chrono::steady_clock::now() < until) {
    std::this_thread::yield();
    m = rt.metrics();
  }
  return m;
}

runtime_metrics wait_until_idle(const goro::runtime& rt) {
  return wait_for(rt, [](const runtime_metrics& m) { return m.fibers_alive == 0; });
}

void expect_consistent(const runtime_metrics& m) {
  EXPECT_EQ(m.spawns, m.finished + m.fibers_alive);
  EXPECT_LE(m.fibers_runnable, m.fibers_alive);
  EXPECT_LE(m.fibers_parked, m.fibers_alive);
  EXPECT_LE(m.worker_wakeups, m.worker_sleeps);
}

// What holds once nothing runs, beside the above.
void expect_consistent_at_rest(const runtime_metrics& m) {
  expect_consistent(m);
  EXPECT_LE(m.select_wakeups, m.selects);
  EXPECT_LE(m.fibers_runnable + m.fibers_parked, m.fibers_alive);
}

// The event counters are compiled out with GORO_METRICS=OFF; what needs them is skipped there.
#define SKIP_WITHOUT_EVENTS(rt)                           \
  do {                                                    \
    if (!(rt).metrics().events_counted) {                 \
      GTEST_SKIP() << "goro built with GORO_METRICS=OFF"; \
    }                                                     \
  } while (false)

class MetricsTest : public goro_test::workers_test {};

TEST_P(MetricsTest, SpawnsEqualFinishedPlusAliveAtRest) {
  goro::runtime rt(opts());
  const runtime_metrics start = rt.metrics();
  EXPECT_EQ(start.workers, workers());
  EXPECT_EQ(start.spawns, 0u);
  expect_consistent(start);
  constexpr int n = 500;
  goro::wait_group wg;
  wg.add(n);
  for (int i = 0; i < n; ++i) {
    rt.go([&wg, &rt] {
      rt.go([] {});  // a grandchild, spawned from a fiber
      wg.done();
    });
  }
  wg.wait();
  const runtime_metrics m = wait_until_idle(rt);
  EXPECT_EQ(m.fibers_alive, 0u);
  EXPECT_EQ(m.spawns, 2u * n);
  EXPECT_EQ(m.finished, 2u * n);
  EXPECT_EQ(m.fibers_runnable, 0u);
  EXPECT_EQ(m.fibers_parked, 0u);
  if (m.events_counted) {
    EXPECT_GE(m.context_switches, 2u * n);  // each fiber ran at least once
  }
  expect_consistent_at_rest(m);
}

TEST_P(MetricsTest, FibersParkedOnAChannelAreCounted) {
  goro::runtime rt(opts());
  SKIP_WITHOUT_EVENTS(rt);
  constexpr std::uint64_t n = 64;
  chan<int> ch;
  goro::wait_group wg;
  wg.add(static_cast<std::int64_t>(n));
  for (std::uint64_t i = 0; i < n; ++i) {
    rt.go([ch, &wg] {
      EXPECT_TRUE(ch.recv().has_value());
      wg.done();
    });
  }
  const runtime_metrics parked =
      wait_for(rt, [](const runtime_metrics& m) { return m.fibers_parked >= n; });
  EXPECT_GE(parked.fibers_alive, n);
  EXPECT_GE(parked.fibers_parked, n);
  EXPECT_EQ(parked.fibers_runnable, 0u);
  EXPECT_GE(parked.parks, n);
  EXPECT_GE(parked.chan_receives, n);
  expect_consistent(parked);
  for (std::uint64_t i = 0; i < n; ++i) ch.send(1);  // from a plain thread: not counted
  wg.wait();
  const runtime_metrics done = wait_until_idle(rt);
  EXPECT_EQ(done.fibers_alive, 0u);
  EXPECT_EQ(done.fibers_parked, 0u);
  EXPECT_EQ(done.spawns, n);
  EXPECT_EQ(done.finished, n);
  EXPECT_EQ(done.chan_receives, n);
  EXPECT_EQ(done.chan_sends, 0u);
  expect_consistent_at_rest(done);
}

TEST_P(MetricsTest, PingPongCountsSwitchesAndChannelOperations) {
  goro::runtime rt(opts());
  SKIP_WITHOUT_EVENTS(rt);
  constexpr std::uint64_t rounds = 2000;
  chan<int> ping;
  chan<int> pong;
  goro::wait_group wg;
  wg.add(2);
  rt.go([ping, pong, &wg] {
    for (std::uint64_t i = 0; i < rounds; ++i) {
      ping.send(1);
      EXPECT_TRUE(pong.recv().has_value());
    }
    wg.done();
  });
  rt.go([ping, pong, &wg] {
    for (std::uint64_t i = 0; i < rounds; ++i) {
      EXPECT_TRUE(ping.recv().has_value());
      pong.send(1);
    }
    wg.done();
  });
  wg.wait();
  const runtime_metrics m = wait_until_idle(rt);
  // Every round trip parks and resumes each side at least once (unbuffered: a receiver that
  // comes first parks, a sender then hands over and goes on to its receive, and parks).
  EXPECT_GE(m.context_switches, 2 * rounds);
  EXPECT_GE(m.parks, rounds);
  EXPECT_EQ(m.chan_sends, 2 * rounds);
  EXPECT_EQ(m.chan_receives, 2 * rounds);
  EXPECT_EQ(m.selects, 0u);
  expect_consistent_at_rest(m);
}

TEST_P(MetricsTest, SelectsAndTheirWakeupsAreCounted) {
  goro::runtime rt(opts());
  SKIP_WITHOUT_EVENTS(rt);
  chan<int> a;
  chan<int> b(1);
  goro::wait_group wg;
  wg.add(1);
  rt.go([a, b, &wg] {
    b.send(7);  // one chan_send
    // Ready at once (b is buffered and full): a select, no wake-up.
    EXPECT_EQ(goro::select(goro::on_recv(a), goro::on_recv(b)), 1u);
    // Nothing ready: parks until main sends on a.
    EXPECT_EQ(goro::select(goro::on_recv(a), goro::on_recv(b)), 0u);
    wg.done();
  });
  wait_for(rt, [](const runtime_metrics& m) { return m.fibers_parked >= 1 && m.selects >= 2; });
  a.send(1);
  wg.wait();
  const runtime_metrics m = wait_until_idle(rt);
  EXPECT_EQ(m.selects, 2u);
  EXPECT_EQ(m.select_wakeups, 1u);
  EXPECT_EQ(m.chan_sends, 1u);
  EXPECT_EQ(m.chan_receives, 0u);  // select cases are not counted as receives
  expect_consistent_at_rest(m);
}

TEST_P(MetricsTest, MetricsFromAFiberAreItsRuntimes) {
  goro::runtime rt(opts());
  chan<runtime_metrics> out(1);
  rt.go([out] { out.send(goro::metrics()); });
  const auto m = out.recv();
  ASSERT_TRUE(m.has_value());
  EXPECT_EQ(m->workers, workers());
  EXPECT_EQ(m->spawns, 1u);
  EXPECT_GE(m->fibers_alive, 1u);  // itself
  EXPECT_EQ(m->chan_sends, 0u);    // counted at the send's entry, after the read
}

// A plain thread reads the metrics in a loop while fibers spawn, hand off and finish: every
// snapshot is consistent, and the counters never go down.
TEST_P(MetricsTest, ReadableFromAPlainThreadWhileFibersRun) {
  goro::runtime rt(opts());
  SKIP_WITHOUT_EVENTS(rt);
  std::atomic<bool> stop{false};
  std::uint64_t snapshots = 0;
  std::thread reader([&rt, &stop, &snapshots] {
    runtime_metrics last = rt.metrics();
    // At least one snapshot after the first, even where the fibers finish before this thread
    // gets a CPU (seen under ASan).
    do {
      const runtime_metrics m = rt.metrics();
      expect_consistent(m);
      EXPECT_GE(m.spawns, last.spawns);
      EXPECT_GE(m.finished, last.finished);
      EXPECT_GE(m.context_switches, last.context_switches);
      EXPECT_GE(m.chan_sends, last.chan_sends);
      EXPECT_GE(m.worker_sleeps, last.worker_sleeps);
      last = m;
      ++snapshots;
    } while (!stop.load(std::memory_order_acquire));
  });
  const std::size_t pairs = goro_test::scaled(20);
  goro::wait_group wg;
  wg.add(static_cast<std::int64_t>(pairs));
  for (std::size_t p = 0; p < pairs; ++p) {
    rt.go([&wg, &rt] {
      chan<int> ch;
      goro::wait_group inner;
      inner.add(1);
      rt.go([ch, &inner] {
        while (ch.recv()) {
        }
        inner.done();
      });
      for (int i = 0; i < 500; ++i) ch.send(i);
      ch.close();
      inner.wait();
      wg.done();
    });
  }
  wg.wait();
  const runtime_metrics m = wait_until_idle(rt);
  stop.store(true, std::memory_order_release);
  reader.join();
  EXPECT_GT(snapshots, 0u);
  EXPECT_EQ(m.spawns, 2 * pairs);
  EXPECT_EQ(m.chan_sends, 500 * pairs);
  EXPECT_EQ(m.chan_receives, 501 * pairs);  // the last one finds the channel closed
  expect_consistent_at_rest(m);
}

INSTANTIATE_TEST_SUITE_P(Workers, MetricsTest, goro_test::worker_counts(),
                         goro_test::worker_count_name);

// A worker with nothing to do sleeps; a fiber spawned from outside wakes one. Retried: a worker
// may still be spinning when the spawn comes, and then nobody needs waking.
TEST(MetricsWorkersTest, SleepsAndWakeupsAreCounted) {
  goro::runtime rt(goro::options{.workers = 2});
  SKIP_WITHOUT_EVENTS(rt);
  bool woken = false;
  for (int attempt = 0; attempt < 200 && !woken; ++attempt) {
    const runtime_metrics before =
        wait_for(rt, [](const runtime_metrics& m) { return m.worker_sleeps >= 2; });
    ASSERT_GE(before.worker_sleeps, 2u);
    // A sleep, so that both workers are asleep (past their spin) when the spawn comes.
    std::this_thread::sleep_for(5ms);
    goro::wait_group wg;
    wg.add(1);
    rt.go([&wg] { wg.done(); });
    wg.wait();
    woken = rt.metrics().worker_wakeups > before.worker_wakeups;
  }
  EXPECT_TRUE(woken);
  expect_consistent_at_rest(wait_until_idle(rt));
}

// An idle worker steals from a busy one. Retried: the busy worker may finish its queue before
// the idle one wakes.
TEST(MetricsWorkersTest, StealsAreCounted) {
  goro::runtime rt(goro::options{.workers = 2});
  SKIP_WITHOUT_EVENTS(rt);
  for (int attempt = 0; attempt < 50 && rt.metrics().steals == 0; ++attempt) {
    goro::wait_group wg;
    wg.add(64);
    rt.go([&wg, &rt] {
      for (int i = 0; i < 64; ++i) {
        rt.go([&wg] {
          // Work long enough for the other worker to wake and steal.
          const auto until = std::chrono::steady_clock::now() + 200us;
          while (std::chrono::steady_clock::now() < until) {
          }
          wg.done();
        });
      }
    });
    wg.wait();
  }
  EXPECT_GT(rt.metrics().steals, 0u);
  expect_consistent_at_rest(wait_until_idle(rt));
}

}  // namespace
