// SPDX-License-Identifier: Apache-2.0
// Turning the durations and time points that goro's timed calls and timers accept into
// steady-clock durations and deadlines without overflow: whatever lies beyond what the steady
// clock can represent saturates to its largest value, time_point::max() being "never"; and the
// limit of one blocking call (a deadline and a stop token), which the timed calls pass to the
// parking layer (src/park/park.hpp).
#pragma once

#include <chrono>
#include <cmath>
#include <stop_token>
#include <type_traits>

namespace goro::detail {

using clock = std::chrono::steady_clock;

// `d` as a steady-clock duration, rounded up, saturated to clock::duration::max() or min()
// where it does not fit (after(hours::max()) must not wrap around to the past). The range test
// is done in long double seconds, which hold every duration's magnitude without overflow;
// inside the range, ceil converts exactly.
template <class Rep, class Period>
constexpr clock::duration saturating_duration(std::chrono::duration<Rep, Period> d) noexcept {
  if constexpr (std::is_same_v<std::chrono::duration<Rep, Period>, clock::duration>) {
    return d;
  } else {
    using seconds_f = std::chrono::duration<long double>;
    const seconds_f s = std::chrono::duration_cast<seconds_f>(d);
    // A NaN compares false with everything, and its conversion below would be undefined: it
    // waits no time, as zero does.
    if (std::isnan(s.count())) return clock::duration::zero();
    if (s >= std::chrono::duration_cast<seconds_f>(clock::duration::max())) {
      return clock::duration::max();
    }
    if (s <= std::chrono::duration_cast<seconds_f>(clock::duration::min())) {
      return clock::duration::min();
    }
    return std::chrono::ceil<clock::duration>(d);
  }
}

// `from + d`, or clock::time_point::max() ("never") if that is beyond what the clock can
// represent. REQUIRES: d > 0 and from >= the clock's epoch (the steady clock never reads
// before it), so that max() - from cannot overflow.
inline clock::time_point saturating_add(clock::time_point from, clock::duration d) noexcept {
  return d >= clock::time_point::max() - from ? clock::time_point::max() : from + d;
}

// The steady-clock deadline `d` from now: now() for d <= 0, time_point::max() for a duration
// too long to represent (try_lock_for(hours::max()) waits forever, after(hours::max()) never
// fires).
template <class Rep, class Period>
clock::time_point deadline_after(std::chrono::duration<Rep, Period> d) noexcept {
  const clock::time_point now = clock::now();
  if (d <= d.zero()) return now;
  return saturating_add(now, saturating_duration(d));
}

// `tp` as a steady-clock deadline: exact for the steady clock (rounded up to its resolution,
// saturated to time_point::max()), otherwise converted once through the time left on Clock (as
// std::condition_variable does for other clocks).
template <class Clock, class Duration>
clock::time_point deadline_at(std::chrono::time_point<Clock, Duration> tp) noexcept {
  if constexpr (std::is_same_v<Clock, clock>) {
    return clock::time_point(saturating_duration(tp.time_since_epoch()));
  } else {
    // The time left, in long double seconds: tp - Clock::now() in Clock's own arithmetic
    // overflows for Clock's min() (and for max() of a coarse duration such as hours).
    using seconds_f = std::chrono::duration<long double>;
    if (tp == std::chrono::time_point<Clock, Duration>::max()) return clock::time_point::max();
    const seconds_f left = std::chrono::duration_cast<seconds_f>(tp.time_since_epoch()) -
                           std::chrono::duration_cast<seconds_f>(Clock::now().time_since_epoch());
    return deadline_after(left);
  }
}

// How long a blocking operation may wait: until `deadline`, and until `stop` is requested.
struct wait_limit {
  clock::time_point deadline = clock::time_point::max();
  std::stop_token stop;

  bool unlimited() const noexcept {
    return deadline == clock::time_point::max() && !stop.stop_possible();
  }
};

}  // namespace goro::detail
