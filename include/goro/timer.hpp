// SPDX-License-Identifier: Apache-2.0
/// @file
/// Go's package time, as far as select needs it: after(), a one-shot timer with stop and reset,
/// and a ticker. Each delivers steady_clock time points on a channel of capacity 1. Timers run
/// on the runtime of the fiber that creates them (the default runtime outside fibers). Any
/// duration is accepted: one too long for the steady clock (hours::max()) means "never", and
/// converts without overflow. Design: docs/scheduler.md, "Timers"; contract: docs/select.md,
/// "Timers".
#pragma once

#include <chrono>
#include <memory>

#include "goro/chan.hpp"
#include "goro/detail/deadline.hpp"

namespace goro {

namespace detail {
struct timer_state;
// Owns a timer or ticker's state: stops it, then frees it (so destruction and move assignment
// both stop the timer they drop).
struct timer_state_stopper {
  void operator()(timer_state* state) const noexcept;
};
}  // namespace detail

using time_channel = chan<std::chrono::steady_clock::time_point>;

/// A channel that receives the current time once `d` has elapsed (Go's time.After): at once
/// for d <= 0, never for a duration beyond the steady clock's range.
time_channel after(std::chrono::steady_clock::duration d);
template <class Rep, class Period>
time_channel after(std::chrono::duration<Rep, Period> d) {
  return after(detail::saturating_duration(d));
}

/// A one-shot timer (Go's time.Timer): once `d` has elapsed it sends the current time on c(),
/// without blocking (if the previous value is still unread, the new one is dropped).
class timer {
 public:
  explicit timer(std::chrono::steady_clock::duration d);
  template <class Rep, class Period>
  explicit timer(std::chrono::duration<Rep, Period> d) : timer(detail::saturating_duration(d)) {}
  ~timer();  ///< stops the timer; safe after its runtime has been destroyed
  /// A moved-from timer has none: c() is a nil channel (a receive waits forever), stop()
  /// returns false, reset() throws std::logic_error.
  timer(timer&&) noexcept;
  timer& operator=(timer&&) noexcept;

  const time_channel& c() const noexcept;

  /// Prevents the timer from firing. True if this call stopped it; false if it had already
  /// fired or been stopped, or its runtime has been destroyed (which stops it for good, without
  /// a value). stop() waits out a firing in progress: after false because the timer fired, its
  /// value is in c() (or, if c() still held an unread value, that one is) unless received.
  bool stop() noexcept;

  /// Stops the timer and starts it again to fire after `d`. True if it had been active. As in
  /// Go, drain c() first if the timer may have fired, or a stale value may be received. Throws
  /// std::logic_error if the timer's runtime has been destroyed (the timer stays stopped).
  bool reset(std::chrono::steady_clock::duration d);
  template <class Rep, class Period>
  bool reset(std::chrono::duration<Rep, Period> d) {
    return reset(detail::saturating_duration(d));
  }

 private:
  std::unique_ptr<detail::timer_state, detail::timer_state_stopper> state_;
};

/// Sends the current time on c() every `period` (Go's time.Ticker); a slow receiver misses
/// ticks rather than queueing them.
class ticker {
 public:
  /// Throws std::invalid_argument unless period > 0.
  explicit ticker(std::chrono::steady_clock::duration period);
  template <class Rep, class Period>
  explicit ticker(std::chrono::duration<Rep, Period> period)
      : ticker(detail::saturating_duration(period)) {}
  ~ticker();  ///< stops the ticker; safe after its runtime has been destroyed
  /// A moved-from ticker has none: c() is a nil channel, stop() does nothing, reset() throws
  /// std::logic_error.
  ticker(ticker&&) noexcept;
  ticker& operator=(ticker&&) noexcept;

  const time_channel& c() const noexcept;
  /// No more ticks will be sent once this returns.
  void stop() noexcept;
  /// Stops the ticker and restarts it with a new period. Throws std::invalid_argument unless
  /// period > 0 (the ticker keeps its old period and keeps ticking), std::logic_error if its
  /// runtime has been destroyed (it stays stopped).
  void reset(std::chrono::steady_clock::duration period);
  template <class Rep, class Period>
  void reset(std::chrono::duration<Rep, Period> period) {
    reset(detail::saturating_duration(period));
  }

 private:
  std::unique_ptr<detail::timer_state, detail::timer_state_stopper> state_;
};

}  // namespace goro
