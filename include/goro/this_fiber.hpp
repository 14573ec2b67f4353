// SPDX-License-Identifier: Apache-2.0
/// @file
/// goro::this_fiber: what the running fiber can do to itself. Outside fibers each call acts on
/// the calling thread instead (std::this_thread's equivalent).
#pragma once

#include <chrono>
#include <cstdint>
#include <stop_token>

#include "goro/detail/deadline.hpp"

namespace goro::this_fiber {

/// Lets other runnable fibers on this worker run first (Go's runtime.Gosched).
void yield() noexcept;

/// Parks the fiber, not its worker, until `deadline` has passed.
void sleep_until(std::chrono::steady_clock::time_point deadline) noexcept;

/// Parks the fiber for at least `d`; zero and negative durations return at once.
template <class Rep, class Period>
void sleep_for(std::chrono::duration<Rep, Period> d) noexcept {
  if (d <= d.zero()) return;
  sleep_until(detail::deadline_after(d));
}

/// Sleeps until `deadline` on any clock, by converting it to the steady clock once: a deadline
/// passed (even the clock's min()) returns at once, one beyond the steady clock's range (its
/// max()) sleeps for good.
template <class Clock, class Duration>
void sleep_until(std::chrono::time_point<Clock, Duration> deadline) noexcept {
  sleep_until(detail::deadline_at(deadline));
}

/// As sleep_until, but wakes early when `stop` is requested: true if the deadline was
/// reached, false if cancelled.
bool sleep_until(std::chrono::steady_clock::time_point deadline, std::stop_token stop) noexcept;

template <class Rep, class Period>
bool sleep_for(std::chrono::duration<Rep, Period> d, std::stop_token stop) noexcept {
  if (d <= d.zero()) return !stop.stop_requested();
  return sleep_until(detail::deadline_after(d), std::move(stop));
}

/// True when called on a fiber.
bool in_fiber() noexcept;

/// The running fiber's id, unique in the process; 0 outside fibers.
std::uint64_t get_id() noexcept;

}  // namespace goro::this_fiber
