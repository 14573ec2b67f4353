// SPDX-License-Identifier: Apache-2.0
// Go's package time, as far as select needs it: after(), a one-shot timer with stop and reset,
// and a ticker. Each delivers steady_clock time points on a channel of capacity 1. Timers run
// on the runtime of the fiber that creates them (the default runtime outside fibers). Design:
// docs/scheduler.md, "Timers".
#pragma once

#include <chrono>
#include <memory>

#include "goro/chan.hpp"

namespace goro {

namespace detail {
struct timer_state;
}

using time_channel = chan<std::chrono::steady_clock::time_point>;

// A channel that receives the current time once `d` has elapsed (Go's time.After).
time_channel after(std::chrono::steady_clock::duration d);
template <class Rep, class Period>
time_channel after(std::chrono::duration<Rep, Period> d) {
  return after(std::chrono::ceil<std::chrono::steady_clock::duration>(d));
}

// A one-shot timer (Go's time.Timer): once `d` has elapsed it sends the current time on c(),
// without blocking (if the previous value is still unread, the new one is dropped).
class timer {
 public:
  explicit timer(std::chrono::steady_clock::duration d);
  ~timer();  // stops the timer
  timer(timer&&) noexcept;
  timer& operator=(timer&&) noexcept;

  const time_channel& c() const noexcept;

  // Prevents the timer from firing. True if this call stopped it; false if it had already
  // fired or been stopped. After false, a value is, or is about to be, in c() unless it was
  // already received: stop() waits out a firing in progress.
  bool stop() noexcept;

  // Stops the timer and starts it again to fire after `d`. True if it had been active. As in
  // Go, drain c() first if the timer may have fired, or a stale value may be received.
  bool reset(std::chrono::steady_clock::duration d);

 private:
  std::unique_ptr<detail::timer_state> state_;
};

// Sends the current time on c() every `period` (Go's time.Ticker); a slow receiver misses
// ticks rather than queueing them.
class ticker {
 public:
  // Throws std::invalid_argument unless period > 0.
  explicit ticker(std::chrono::steady_clock::duration period);
  ~ticker();  // stops the ticker
  ticker(ticker&&) noexcept;
  ticker& operator=(ticker&&) noexcept;

  const time_channel& c() const noexcept;
  // No more ticks will be sent once this returns.
  void stop() noexcept;
  // Stops the ticker and restarts it with a new period. Throws std::invalid_argument unless
  // period > 0.
  void reset(std::chrono::steady_clock::duration period);

 private:
  std::unique_ptr<detail::timer_state> state_;
};

}  // namespace goro
