// SPDX-License-Identifier: Apache-2.0
// Turning the durations and time points that goro's timed calls accept into the steady-clock
// deadlines that waiter::park_until takes, without overflow.
#pragma once

#include <chrono>
#include <type_traits>

namespace goro::detail {

using clock = std::chrono::steady_clock;

// The steady-clock deadline `d` from now: now() for d <= 0, time_point::max() for a duration
// too long to represent (try_lock_for(hours::max()) waits forever).
template <class Rep, class Period>
clock::time_point deadline_after(std::chrono::duration<Rep, Period> d) noexcept {
  const clock::time_point now = clock::now();
  if (d <= d.zero()) return now;
  using seconds_f = std::chrono::duration<double>;
  if (std::chrono::duration_cast<seconds_f>(d) >=
      std::chrono::duration_cast<seconds_f>(clock::time_point::max() - now)) {
    return clock::time_point::max();
  }
  return now + std::chrono::ceil<clock::duration>(d);
}

// `tp` as a steady-clock deadline: exact for the steady clock, otherwise converted once
// through the time left on Clock (as std::condition_variable does for other clocks).
template <class Clock, class Duration>
clock::time_point deadline_at(std::chrono::time_point<Clock, Duration> tp) noexcept {
  if constexpr (std::is_same_v<Clock, clock>) {
    using seconds_f = std::chrono::duration<double>;
    if (std::chrono::duration_cast<seconds_f>(tp.time_since_epoch()) >=
        std::chrono::duration_cast<seconds_f>(clock::time_point::max().time_since_epoch())) {
      return clock::time_point::max();
    }
    return std::chrono::ceil<clock::duration>(tp);
  } else {
    return deadline_after(tp - Clock::now());
  }
}

}  // namespace goro::detail
