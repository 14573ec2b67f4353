// SPDX-License-Identifier: Apache-2.0
// Tests of goro's timers (goro/timer.hpp), after Go's time/sleep_test.go and tick_test.go
// written again as behaviour: after(d) delivers exactly once, no sooner than d; timer::stop()
// before expiry returns true and nothing is ever delivered, after expiry returns false with the
// value in c(); timer::reset() reports whether the timer was active and delivers again after
// the new duration; a ticker ticks repeatedly, stop() halts it, reset() changes its period;
// timers in selects; and timers that still fire on one worker busy with ping-pong or yield
// loops (no starvation). Then durations too long for the steady clock (they mean never, and do
// not overflow), timers and tickers used after their runtime is destroyed (stop is false,
// reset throws std::logic_error, also racing ~runtime()), sleepers woken in one batch running
// in deadline order, and receives on a timer's own channel, which must never deadlock a worker.
// A few checks must show that nothing arrives: they wait past the deadline in question, and
// say so. Concurrency tests run once per worker count (1, 2, 4, 8).
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "goro/detail/deadline.hpp"
#include "goro/goro.hpp"
#include "test_support.hpp"

namespace {

using goro_test::run_fibers;
using namespace std::chrono_literals;
using clock_type = std::chrono::steady_clock;
using goro::chan;
using goro::chan_status;
using goro::time_channel;

// A handle on a timer's or ticker's channel: c() gives a const reference, and receiving needs
// a non-const chan.
template <class Timer>
time_channel chan_of(const Timer& t) {
  return t.c();
}

// Waits until a timer's value is in its channel, without taking it: a bounded poll of the
// channel's own size, for the checks that need a timer fired but its value left unread.
void wait_until_buffered(const time_channel& c) {
  while (c.size() == 0) goro::this_fiber::sleep_for(1ms);
}

// Calls attempt(d) for d = 1, 2, 4, ... 64 ms until it returns an empty string; fails with the
// last message otherwise. Go's timing tests retry with growing durations in the same way, so a
// loaded machine does not make them flaky.
template <class F>
void retry_with_growing_duration(F attempt) {
  std::string why;
  for (auto d = 1ms; d <= 64ms; d *= 2) {
    why = attempt(std::chrono::duration_cast<clock_type::duration>(d));
    if (why.empty()) return;
  }
  ADD_FAILURE() << why;
}

// ---- after() and timer, from a plain thread (the default runtime's timers) ---------------

TEST(TimerTest, AfterDeliversOnceNoSoonerThanItsDuration) {
  const auto start = clock_type::now();
  time_channel c = goro::after(20ms);
  EXPECT_EQ(c.capacity(), 1u);
  const auto v = c.recv();
  const auto elapsed = clock_type::now() - start;
  ASSERT_TRUE(v.has_value());
  EXPECT_GE(elapsed, 20ms);
  EXPECT_GE(*v - start, 20ms);
  EXPECT_LE(*v, clock_type::now());
  // Waits well past a second delivery's chance to prove there is none.
  EXPECT_EQ(c.recv_for(30ms).status, chan_status::timeout);
}

TEST(TimerTest, AfterWithZeroOrNegativeDurationFiresAtOnce) {
  EXPECT_TRUE(goro::after(0ms).recv().has_value());
  EXPECT_TRUE(goro::after(-5ms).recv().has_value());
  EXPECT_TRUE(goro::after(std::chrono::microseconds(1)).recv().has_value());
}

// Go's TestAfterQueuing: timers fire in deadline order whatever order they were started in.
TEST(TimerTest, AfterFiresInDeadlineOrder) {
  goro::runtime rt{goro::options{.workers = 2}};
  retry_with_growing_duration([&rt](clock_type::duration unit) -> std::string {
    const int slots[] = {5, 3, 6, 6, 6, 1, 1, 2, 7, 9, 4, 8, 0};
    const auto delta = unit * 20;
    chan<int> result(std::size(slots));
    const auto start = clock_type::now();
    for (int slot : slots) {
      rt.go([slot, result, delta]() mutable {
        (void)goro::after(delta * slot).recv();
        result.send(slot);
      });
    }
    std::vector<int> order;
    std::string why;
    for (std::size_t i = 0; i < std::size(slots); ++i) {
      const int slot = *result.recv();
      order.push_back(slot);
      if (clock_type::now() - start < delta * slot) why = "a timer fired early";
    }
    if (!std::is_sorted(order.begin(), order.end())) why = "timers fired out of order";
    return why;
  });
}

TEST(TimerTest, StopBeforeExpiryReturnsTrueAndNothingIsDelivered) {
  goro::timer t(200ms);
  EXPECT_EQ(t.c().capacity(), 1u);
  EXPECT_TRUE(t.stop());
  EXPECT_FALSE(t.stop());  // already stopped
  // Waits past the original deadline to prove nothing is delivered.
  EXPECT_EQ(chan_of(t).recv_for(250ms).status, chan_status::timeout);
}

// A moved-from timer or ticker is empty, not a null dereference (each call crashed before).
TEST(TimerTest, MovedFromTimersAndTickersAreEmptyAndSaySo) {
  goro::timer t(1h);
  goro::timer moved = std::move(t);
  // NOLINTBEGIN(bugprone-use-after-move): the documented moved-from state
  EXPECT_FALSE(t.stop());
  EXPECT_FALSE(static_cast<bool>(t.c()));  // nil: a receive would wait forever
  EXPECT_THROW(t.reset(1ms), std::logic_error);
  goro::ticker k(1h);
  goro::ticker moved_ticker = std::move(k);
  k.stop();
  EXPECT_FALSE(static_cast<bool>(k.c()));
  EXPECT_THROW(k.reset(1ms), std::logic_error);
  // NOLINTEND(bugprone-use-after-move)
  EXPECT_TRUE(moved.stop());
  moved_ticker.stop();
}

TEST(TimerTest, StopAfterTheTimerFiredReturnsFalse) {
  goro::timer t(1ms);
  EXPECT_TRUE(chan_of(t).recv().has_value());
  EXPECT_FALSE(t.stop());
  EXPECT_EQ(chan_of(t).try_recv().status, chan_status::empty);
}

TEST(TimerTest, StopAfterFiringLeavesTheValueInTheChannel) {
  const auto start = clock_type::now();
  goro::timer t(2ms);
  wait_until_buffered(t.c());
  EXPECT_FALSE(t.stop());
  const auto r = chan_of(t).try_recv();
  ASSERT_EQ(r.status, chan_status::ok);
  EXPECT_GE(*r.value - start, 2ms);
}

TEST(TimerTest, ResetOfAnActiveTimerReturnsTrueAndMovesItsDeadline) {
  goro::timer t(1h);
  auto start = clock_type::now();
  EXPECT_TRUE(t.reset(20ms));
  auto v = chan_of(t).recv();
  ASSERT_TRUE(v.has_value());
  EXPECT_GE(*v - start, 20ms);

  // Later: a timer reset further out does not fire at its old deadline.
  retry_with_growing_duration([](clock_type::duration d) -> std::string {
    goro::timer late(10 * d);
    const auto reset_at = clock_type::now();
    if (!late.reset(40 * d)) return "resetting an unfired timer returned false";
    // Waits past the old deadline to prove it was dropped.
    if (chan_of(late).recv_for(20 * d).status != chan_status::timeout) return "fired early";
    const auto fired = chan_of(late).recv();
    if (!fired || *fired - reset_at < 40 * d) return "fired before the new deadline";
    return "";
  });
}

TEST(TimerTest, ResetOfAFiredOrStoppedTimerReturnsFalseAndDeliversAgain) {
  goro::timer t(1ms);
  ASSERT_TRUE(chan_of(t).recv().has_value());
  auto start = clock_type::now();
  EXPECT_FALSE(t.reset(10ms));
  auto v = chan_of(t).recv();
  ASSERT_TRUE(v.has_value());
  EXPECT_GE(*v - start, 10ms);

  EXPECT_FALSE(t.reset(1h));  // fired and drained: not active, but armed again
  EXPECT_TRUE(t.stop());
  start = clock_type::now();
  EXPECT_FALSE(t.reset(5ms));
  v = chan_of(t).recv();
  ASSERT_TRUE(v.has_value());
  EXPECT_GE(*v - start, 5ms);
  EXPECT_FALSE(t.stop());
}

// Go's TestReset: a timer reset before it fires does not fire at the old time, then fires.
TEST(TimerTest, ResetBeforeExpiryIsNotEarlyAndStillFires) {
  retry_with_growing_duration([](clock_type::duration d) -> std::string {
    goro::timer t(2 * d);
    std::this_thread::sleep_for(d);
    if (!t.reset(3 * d)) return "resetting an unfired timer returned false";
    std::this_thread::sleep_for(2 * d);
    if (chan_of(t).try_recv()) return "the timer fired early";
    std::this_thread::sleep_for(2 * d);
    if (!chan_of(t).try_recv()) return "the reset timer did not fire";
    if (t.reset(50ms)) return "resetting an expired timer returned true";
    return "";
  });
}

TEST(TimerTest, DestroyingATimerStopsIt) {
  time_channel c{nullptr};
  {
    goro::timer t(100ms);
    c = t.c();
  }
  // Waits past the deadline to prove the destroyed timer never fires.
  EXPECT_EQ(c.recv_for(150ms).status, chan_status::timeout);
}

TEST(TimerTest, MovedTimersKeepTheirChannel) {
  goro::timer a(5ms);
  const time_channel ca = a.c();
  goro::timer b(std::move(a));
  EXPECT_EQ(b.c(), ca);
  EXPECT_TRUE(chan_of(b).recv().has_value());

  goro::timer x(100ms);
  time_channel old = x.c();
  x = goro::timer(5ms);  // stops the timer x held
  EXPECT_FALSE(x.c() == old);
  EXPECT_TRUE(chan_of(x).recv().has_value());
  // Waits past the replaced timer's deadline to prove it was stopped.
  EXPECT_EQ(old.recv_for(150ms).status, chan_status::timeout);
}

// A runtime destroyed while after() timers on it are still pending must free them: under
// AddressSanitizer, LeakSanitizer reports them otherwise.
TEST(TimerTest, PendingAfterTimersAreFreedWithTheirRuntime) {
  goro::runtime rt{goro::options{.workers = 1}};
  run_fibers(rt, 1, [](std::size_t) {
    time_channel c = goro::after(1h);
    EXPECT_EQ(c.try_recv().status, chan_status::empty);
  });
}

// ---- ticker ------------------------------------------------------------------------------

TEST(TimerTest, TickerTicksRepeatedly) {
  constexpr auto period = 5ms;
  const auto start = clock_type::now();
  goro::ticker tk(period);
  EXPECT_EQ(tk.c().capacity(), 1u);
  clock_type::time_point last = start;
  for (int i = 1; i <= 5; ++i) {
    const auto v = chan_of(tk).recv();
    ASSERT_TRUE(v.has_value());
    EXPECT_GT(*v, last);
    EXPECT_GE(*v - start, i * period);  // the i-th tick received is at least the i-th tick
    last = *v;
  }
  tk.stop();
}

TEST(TimerTest, TickerStopHaltsTicks) {
  goro::ticker tk(2ms);
  ASSERT_TRUE(chan_of(tk).recv().has_value());
  ASSERT_TRUE(chan_of(tk).recv().has_value());
  tk.stop();
  (void)chan_of(tk).try_recv();  // a tick sent before stop() may be buffered
  // Waits many periods to prove no tick comes after stop().
  EXPECT_EQ(chan_of(tk).recv_for(30ms).status, chan_status::timeout);
  tk.stop();  // stopping twice is harmless
}

TEST(TimerTest, TickerResetChangesThePeriod) {
  goro::ticker slow(1h);
  const auto start = clock_type::now();
  slow.reset(5ms);
  for (int i = 1; i <= 3; ++i) {
    const auto v = chan_of(slow).recv();
    ASSERT_TRUE(v.has_value());
    EXPECT_GE(*v - start, i * 5ms);
  }

  goro::ticker fast(2ms);
  ASSERT_TRUE(chan_of(fast).recv().has_value());
  fast.reset(1h);
  (void)chan_of(fast).try_recv();  // a tick sent before reset() may be buffered
  // Waits many old periods to prove the old period is gone.
  EXPECT_EQ(chan_of(fast).recv_for(30ms).status, chan_status::timeout);
}

TEST(TimerTest, TickerRejectsNonPositivePeriods) {
  EXPECT_THROW(goro::ticker(0ms), std::invalid_argument);
  EXPECT_THROW(goro::ticker(-1ms), std::invalid_argument);
  goro::ticker tk(5ms);
  EXPECT_THROW(tk.reset(0ms), std::invalid_argument);
  EXPECT_THROW(tk.reset(-3ms), std::invalid_argument);
  EXPECT_TRUE(chan_of(tk).recv().has_value()) << "a rejected reset stopped the ticker";
}

// Go's runtime serialises Reset and Stop of one timer called at once (several goroutines
// resetting a shared watchdog). Two threads reset one timer, and one ticker, at the same moment,
// round after round, and stop them after each round: nothing may stay queued. Before session 12
// both resets queued the entry, stop() removed one copy and the other fired after it (and read
// freed memory once the timer was destroyed). The deadline is far beyond a round's length, so
// only a copy left queued can deliver; the final wait, past it, shows that none did.
TEST(TimerTest, ConcurrentResetsAndStopLeaveNothingQueued) {
  // A fifth as many rounds under TSan, where each round's spinning takes far longer (15 s of
  // the tsan suite with 20,000): the race each round repeats is the same.
  constexpr int rounds = static_cast<int>(goro_test::fiber_count(20000));
  constexpr auto due = 200ms;
  goro::timer t(1h);
  goro::ticker k(1h);
  std::atomic<int> arrived{0};
  std::atomic<int> finished{0};
  // Both sides arrive, then both reset at once.
  const auto round_of = [&](int round) {
    arrived.fetch_add(1);
    while (arrived.load() < 2 * (round + 1)) {
    }
    (void)t.reset(due);
    k.reset(due);
    finished.fetch_add(1);
  };
  std::thread other([&] {
    for (int round = 0; round < rounds; ++round) {
      round_of(round);
      while (finished.load() < 2 * (round + 1)) {  // the stops below come first
      }
    }
  });
  for (int round = 0; round < rounds; ++round) {
    round_of(round);
    while (finished.load() < 2 * (round + 1)) {
    }
    (void)t.stop();
    k.stop();
  }
  other.join();
  EXPECT_EQ(chan_of(t).recv_for(due + 100ms).status, chan_status::timeout)
      << "a timer fired after its stop()";
  EXPECT_EQ(chan_of(k).recv_for(due + 100ms).status, chan_status::timeout)
      << "a ticker ticked after its stop()";
}

// A ticker destroyed while a worker is inside its fire(), which re-arms it: the worker must
// not touch the freed ticker afterwards (AddressSanitizer reports a heap-use-after-free in
// timer_heap::fire_due otherwise, ThreadSanitizer a race with the delete).
TEST(TimerTest, TickerDestroyedWhileFiring) {
  for (int i = 0; i < 20000; ++i) {
    goro::ticker tk(std::chrono::microseconds(1));
    if (i % 2 == 1) std::this_thread::yield();
  }
}

// A slow receiver misses ticks rather than queueing them.
TEST(TimerTest, TickerDropsTicksForASlowReceiver) {
  goro::ticker tk(1ms);
  std::this_thread::sleep_for(30ms);  // a receiver that falls behind by many periods
  EXPECT_LE(tk.c().size(), 1u);
  EXPECT_TRUE(chan_of(tk).recv().has_value());
  EXPECT_LE(tk.c().size(), 1u);
}

// Go's TestTeardown: starting, reading and stopping tickers in a row does not deadlock.
TEST(TimerTest, TickerTeardown) {
  for (int i = 0; i < 3; ++i) {
    goro::ticker tk(1ms);
    (void)chan_of(tk).recv();
    tk.stop();
  }
  for (int i = 0; i < 100; ++i) {
    goro::ticker tk(1ms);  // destroyed at once, possibly while firing
  }
}

// ---- timers in fibers, once per worker count ---------------------------------------------

class TimerFiberTest : public goro_test::workers_test {};

TEST_P(TimerFiberTest, AfterInManyFibers) {
  goro::runtime rt{opts()};
  std::atomic<int> early{0};
  std::atomic<int> missing{0};
  run_fibers(rt, 100, [&](std::size_t i) {
    const auto d = std::chrono::milliseconds(1 + static_cast<int>(i % 20));
    const auto start = clock_type::now();
    const auto v = goro::after(d).recv();
    if (!v) missing.fetch_add(1);
    if (clock_type::now() - start < d || (v && *v - start < d)) early.fetch_add(1);
  });
  EXPECT_EQ(missing.load(), 0);
  EXPECT_EQ(early.load(), 0);
}

TEST_P(TimerFiberTest, AfterAsASelectTimeout) {
  goro::runtime rt{opts()};
  std::atomic<int> wrong{0};
  run_fibers(rt, 8, [&](std::size_t) {
    chan<int> never;
    const auto start = clock_type::now();
    const std::size_t k = goro::select(goro::on_recv(never), goro::on_recv(goro::after(10ms)));
    if (k != 1 || clock_type::now() - start < 10ms) wrong.fetch_add(1);
    // A value that is ready wins over a timeout that is not due.
    chan<int> ready(1);
    ready.send(1);
    if (goro::select(goro::on_recv(ready), goro::on_recv(goro::after(1h))) != 0) wrong.fetch_add(1);
  });
  EXPECT_EQ(wrong.load(), 0);
}

// Go's TestTimerStopStress: timers stopped before their deadline never fire.
TEST_P(TimerFiberTest, StoppedTimersNeverFire) {
  goro::runtime rt{opts()};
  std::atomic<int> not_stopped{0};
  std::atomic<int> fired{0};
  std::vector<std::unique_ptr<goro::timer>> timers(100);  // alive until the check below
  run_fibers(rt, timers.size(), [&](std::size_t i) {
    timers[i] = std::make_unique<goro::timer>(300ms);
    goro::this_fiber::sleep_for(std::chrono::milliseconds(static_cast<int>(i % 5)));
    if (!timers[i]->stop()) not_stopped.fetch_add(1);
    timers[i]->reset(300ms);
    if (!timers[i]->stop()) not_stopped.fetch_add(1);
  });
  // Waits past every deadline to prove none of the stopped timers fires.
  std::this_thread::sleep_for(350ms);
  for (const auto& t : timers) {
    if (chan_of(*t).try_recv()) fired.fetch_add(1);
  }
  EXPECT_EQ(not_stopped.load(), 0);
  EXPECT_EQ(fired.load(), 0);
}

TEST_P(TimerFiberTest, StopAndResetInFibers) {
  goro::runtime rt{opts()};
  std::atomic<int> wrong{0};
  auto check = [&wrong](bool ok) {
    if (!ok) wrong.fetch_add(1);
  };
  run_fibers(rt, 16, [&](std::size_t) {
    goro::timer t(1ms);
    check(chan_of(t).recv().has_value());
    check(!t.stop());
    const auto start = clock_type::now();
    check(!t.reset(5ms));
    const auto v = chan_of(t).recv();
    check(v.has_value() && *v - start >= 5ms);
    goro::timer s(1h);
    check(s.stop());
    check(chan_of(s).try_recv().status == chan_status::empty);
    goro::ticker tk(1ms);
    for (int i = 0; i < 3; ++i) check(chan_of(tk).recv().has_value());
    tk.stop();
  });
  EXPECT_EQ(wrong.load(), 0);
}

INSTANTIATE_TEST_SUITE_P(Workers, TimerFiberTest, goro_test::worker_counts(),
                         goro_test::worker_count_name);

// ---- starvation: timers fire on a worker kept busy ---------------------------------------

// How long a 10 ms timer may take on a worker kept busy before it counts as starved.
constexpr auto starvation_limit = 500ms;

// With one worker, two fibers ping-pong over unbuffered channels for as long as the test
// lasts; a third fiber's 10 ms timer must still fire promptly.
TEST(TimerStarvationTest, PingPongDoesNotStarveTimers) {
  goro::runtime rt{goro::options{.workers = 1}};
  for (int variant = 0; variant < 2; ++variant) {
    SCOPED_TRACE(variant == 0 ? "select on after()" : "timer");
    std::atomic<bool> done{false};
    chan<int> ping;
    chan<int> pong;
    goro::wait_group players;
    players.add(2);
    rt.go([ping, pong, &done, &players]() mutable {
      for (int i = 0; !done.load(std::memory_order_relaxed); ++i) {
        ping.send(i);
        (void)pong.recv();
      }
      ping.close();
      players.done();
    });
    rt.go([ping, pong, &players]() mutable {
      while (auto v = ping.recv()) pong.send(*v);
      players.done();
    });
    std::atomic<std::int64_t> waited_ms{-1};
    run_fibers(rt, 1, [&](std::size_t) {
      const auto start = clock_type::now();
      if (variant == 0) {
        goro::select(goro::on_recv(goro::after(10ms)));
      } else {
        goro::timer t(10ms);
        (void)chan_of(t).recv();
      }
      waited_ms =
          std::chrono::duration_cast<std::chrono::milliseconds>(clock_type::now() - start).count();
      done = true;
    });
    players.wait();
    EXPECT_GE(waited_ms.load(), 10);
    EXPECT_LT(waited_ms.load(), starvation_limit.count());
  }
}

// The same with fibers that only yield, forever, until told to stop.
TEST(TimerStarvationTest, YieldLoopsDoNotStarveTimers) {
  goro::runtime rt{goro::options{.workers = 1}};
  std::atomic<bool> done{false};
  goro::wait_group spinners;
  spinners.add(2);
  for (int i = 0; i < 2; ++i) {
    rt.go([&done, &spinners] {
      while (!done.load(std::memory_order_relaxed)) goro::this_fiber::yield();
      spinners.done();
    });
  }
  std::atomic<std::int64_t> waited_ms{-1};
  run_fibers(rt, 1, [&](std::size_t) {
    const auto start = clock_type::now();
    goro::select(goro::on_recv(goro::after(10ms)));
    goro::ticker tk(5ms);
    (void)chan_of(tk).recv();
    waited_ms =
        std::chrono::duration_cast<std::chrono::milliseconds>(clock_type::now() - start).count();
    done = true;
  });
  spinners.wait();
  EXPECT_GE(waited_ms.load(), 15);
  EXPECT_LT(waited_ms.load(), starvation_limit.count());
}

// ---- durations beyond the steady clock's range ------------------------------------------

TEST(TimerDeadlineTest, SaturatingConversionsNeverOverflow) {
  using goro::detail::saturating_add;
  using goro::detail::saturating_duration;
  using std::chrono::hours;
  using std::chrono::nanoseconds;
  EXPECT_EQ(saturating_duration(hours::max()), clock_type::duration::max());
  EXPECT_EQ(saturating_duration(hours::min()), clock_type::duration::min());
  EXPECT_EQ(saturating_duration(std::chrono::duration<double>(1e300)), clock_type::duration::max());
  EXPECT_EQ(saturating_duration(std::chrono::seconds(9'223'372'036)),
            std::chrono::seconds(9'223'372'036));
  EXPECT_EQ(saturating_duration(std::chrono::seconds(9'223'372'037)), clock_type::duration::max());
  EXPECT_EQ(saturating_duration(std::chrono::duration<double, std::nano>(1.5)), nanoseconds(2));
  EXPECT_EQ(saturating_duration(nanoseconds::max()), nanoseconds::max());
  const auto now = clock_type::now();
  EXPECT_EQ(saturating_add(now, nanoseconds::max()), clock_type::time_point::max());
  EXPECT_EQ(saturating_add(now, 1h), now + 1h);
  EXPECT_EQ(goro::detail::deadline_after(hours::max()), clock_type::time_point::max());
  EXPECT_EQ(goro::detail::deadline_after(nanoseconds::max()), clock_type::time_point::max());
  const auto at_once = goro::detail::deadline_after(hours::min());
  EXPECT_LE(at_once, clock_type::now());
  // A NaN waits no time (its conversion was undefined: UBSan's float-cast-overflow).
  const std::chrono::duration<double> nan(std::numeric_limits<double>::quiet_NaN());
  EXPECT_EQ(saturating_duration(nan), clock_type::duration::zero());
  const auto nan_deadline = goro::detail::deadline_after(nan);
  EXPECT_LE(nan_deadline, clock_type::now());
}

// Each waits well past "at once" to prove that a duration too long to represent never fires
// (wrapped around, it would be a deadline in the past).
TEST(TimerDeadlineTest, HugeDurationsNeverFire) {
  using std::chrono::hours;
  using std::chrono::nanoseconds;
  constexpr auto wait = 20ms;
  EXPECT_EQ(goro::after(hours::max()).recv_for(wait).status, chan_status::timeout);
  EXPECT_EQ(goro::after(nanoseconds::max()).recv_for(wait).status, chan_status::timeout);
  EXPECT_EQ(goro::after(std::chrono::duration<double>(1e300)).recv_for(wait).status,
            chan_status::timeout);

  goro::timer t(hours::max());
  EXPECT_EQ(chan_of(t).recv_for(wait).status, chan_status::timeout);
  EXPECT_TRUE(t.stop()) << "a timer set for never is still active";
  EXPECT_FALSE(t.reset(nanoseconds::max()));
  EXPECT_EQ(chan_of(t).recv_for(wait).status, chan_status::timeout);
  EXPECT_TRUE(t.reset(hours::max()));
  EXPECT_EQ(chan_of(t).recv_for(wait).status, chan_status::timeout);
  EXPECT_TRUE(t.reset(1ms)) << "a timer set for never, reset, fires";
  EXPECT_TRUE(chan_of(t).recv().has_value());

  goro::ticker tk(hours::max());
  EXPECT_EQ(chan_of(tk).recv_for(wait).status, chan_status::timeout);
  tk.reset(nanoseconds::max());
  EXPECT_EQ(chan_of(tk).recv_for(wait).status, chan_status::timeout);
  tk.reset(1ms);
  EXPECT_TRUE(chan_of(tk).recv().has_value());
  EXPECT_THROW(goro::ticker{hours::min()}, std::invalid_argument);
  EXPECT_THROW(tk.reset(hours::min()), std::invalid_argument);

  // In a fiber, on the fiber's runtime.
  goro::runtime rt{goro::options{.workers = 2}};
  std::atomic<int> fired{0};
  run_fibers(rt, 4, [&](std::size_t i) {
    if (i % 2 == 0) {
      if (goro::after(hours::max()).recv_for(wait).status != chan_status::timeout) ++fired;
    } else {
      goro::ticker k(nanoseconds::max());
      if (chan_of(k).recv_for(wait).status != chan_status::timeout) ++fired;
    }
  });
  EXPECT_EQ(fired.load(), 0);
}

// ---- timers and tickers that outlive their runtime ---------------------------------------

// Made in a fiber of a runtime that is then destroyed, in every state: fired, stopped, pending
// (a timer), stopped and ticking (a ticker). Afterwards stop() is false, reset() throws
// std::logic_error and leaves it stopped, and the destructors are safe (AddressSanitizer
// reports a heap-use-after-free of the scheduler otherwise).
TEST(TimerLifetimeTest, TimersOutliveTheirRuntime) {
  std::unique_ptr<goro::timer> fired;
  std::unique_ptr<goro::timer> stopped;
  std::unique_ptr<goro::timer> pending;
  std::unique_ptr<goro::ticker> stopped_ticker;
  std::unique_ptr<goro::ticker> ticking;
  {
    goro::runtime rt{goro::options{.workers = 2}};
    run_fibers(rt, 1, [&](std::size_t) {
      fired = std::make_unique<goro::timer>(0ns);
      EXPECT_TRUE(chan_of(*fired).recv().has_value());
      stopped = std::make_unique<goro::timer>(1h);
      EXPECT_TRUE(stopped->stop());
      pending = std::make_unique<goro::timer>(1h);
      stopped_ticker = std::make_unique<goro::ticker>(1ms);
      EXPECT_TRUE(chan_of(*stopped_ticker).recv().has_value());
      stopped_ticker->stop();
      ticking = std::make_unique<goro::ticker>(1ms);
      EXPECT_TRUE(chan_of(*ticking).recv().has_value());
    });
  }
  for (goro::timer* t : {fired.get(), stopped.get(), pending.get()}) {
    EXPECT_FALSE(t->stop());
    EXPECT_THROW(t->reset(1ms), std::logic_error);
    EXPECT_FALSE(t->stop());
  }
  for (goro::ticker* t : {stopped_ticker.get(), ticking.get()}) {
    t->stop();
    EXPECT_THROW(t->reset(1ms), std::logic_error);
  }
  (void)chan_of(*ticking).try_recv();  // a tick sent before the runtime went may be buffered
  // Waits many periods to prove that nothing fires any more.
  EXPECT_EQ(chan_of(*ticking).recv_for(20ms).status, chan_status::timeout);
  EXPECT_EQ(chan_of(*pending).try_recv().status, chan_status::empty);
  fired.reset();
  stopped.reset();
  pending.reset();
  stopped_ticker.reset();
  ticking.reset();
}

// stop() and reset() on another thread racing ~runtime(): each either works on the live
// runtime or finds it gone (ThreadSanitizer and AddressSanitizer watch the race).
TEST(TimerLifetimeTest, StopAndResetRaceRuntimeDestruction) {
  const std::size_t rounds = goro_test::scaled(200);
  for (std::size_t round = 0; round < rounds; ++round) {
    auto rt = std::make_unique<goro::runtime>(goro::options{.workers = 2});
    std::unique_ptr<goro::timer> t;
    std::unique_ptr<goro::ticker> tk;
    run_fibers(*rt, 1, [&](std::size_t) {
      t = std::make_unique<goro::timer>(std::chrono::microseconds(round % 3));
      tk = std::make_unique<goro::ticker>(std::chrono::microseconds(1 + round % 5));
    });
    goro::wait_group started;
    started.add(1);
    std::thread user([&] {
      started.done();
      for (bool gone = false; !gone;) {
        (void)t->stop();
        tk->stop();
        try {
          (void)t->reset(std::chrono::microseconds(round % 2));
          tk->reset(1us);
        } catch (const std::logic_error&) {
          gone = true;
        }
      }
    });
    started.wait();
    rt.reset();
    user.join();
    EXPECT_FALSE(t->stop());
  }
}

// ---- what a timer's firing may do ---------------------------------------------------------

// Sleepers whose deadlines all pass while their one worker is busy are woken in one batch,
// and run in deadline order, whatever order they went to sleep in. (With more workers, idle
// ones may take some of them, so the order is only promised here.) An attempt counts only if
// every sleeper was asleep before the first deadline; a slow (sanitized) build retries with
// more room.
TEST(TimerOrderTest, SleepersWokenInOneBatchRunInDeadlineOrder) {
  goro::runtime rt{goro::options{.workers = 1}};
  constexpr int sleepers = 8;
  for (auto room = 10ms; room <= 640ms; room *= 2) {
    std::vector<int> woke;  // one worker: the sleepers never run at the same time
    bool all_asleep = false;
    run_fibers(rt, 1, [&](std::size_t) {
      goro::wait_group done;
      done.add(sleepers);
      const auto first = clock_type::now() + room;
      for (int i = 0; i < sleepers; ++i) {
        const int slot = (i * 5) % sleepers;  // sleep in an order unlike the deadline order
        goro::go([&, slot] {                  // runs at once, until it sleeps
          goro::this_fiber::sleep_until(first + std::chrono::milliseconds(slot));
          woke.push_back(slot);
          done.done();
        });
      }
      all_asleep = clock_type::now() < first;
      // Holds the worker, without yielding, until every deadline has passed: nothing fires
      // meanwhile, so the sleepers wake in one batch when this fiber parks.
      while (clock_type::now() < first + std::chrono::milliseconds(sleepers + 10)) {
      }
      done.wait();
    });
    if (!all_asleep) continue;
    ASSERT_EQ(woke.size(), static_cast<std::size_t>(sleepers));
    EXPECT_TRUE(std::is_sorted(woke.begin(), woke.end())) << ::testing::PrintToString(woke);
    return;
  }
  ADD_FAILURE() << "the sleepers never all went to sleep in time";
}

// A fiber receiving, again and again, from a fresh timer's channel: each receive parks the
// fiber with the channel's lock held until its switch is done, and a due timer on that very
// channel must not fire then (its send would spin on the lock for ever). One worker also runs
// without membarrier, which turns off the lock's bias to that worker (with the bias, the send
// took the lock again instead of spinning). Run as a program so that a deadlock is a timeout,
// not a hung test.
TEST(TimerOrderTest, ReceivingOnATimersChannelNeverDeadlocksItsWorker) {
  const std::string iterations = std::to_string(goro_test::sanitized ? 300 : 3000);
  struct setup {
    const char* workers;
    std::vector<std::string> env;
  };
  const setup setups[] = {
      {"1", {}}, {"1", {"GORO_NO_MEMBARRIER=1"}}, {"2", {}}, {"4", {}}, {"8", {}}};
  for (const char* how : {"timer", "after", "micro"}) {
    for (const setup& s : setups) {
      const auto r = goro_test::run_program(goro_test::program_path("timer_recv_loop"),
                                            {s.workers, iterations, how}, 20s, s.env);
      ASSERT_TRUE(r.exited && r.exit_code == 0)
          << how << " on " << s.workers << " workers" << (s.env.empty() ? "" : " without bias")
          << ": " << r.describe();
      EXPECT_NE(r.out.find("done"), std::string::npos);
    }
  }
}

}  // namespace
