// SPDX-License-Identifier: Apache-2.0
// Layer: platform. May include: platform.
// Thin wrappers over Linux futex(2) on a std::atomic<uint32_t>: the one way goro puts an OS
// thread to sleep (idle workers, plain threads blocked in goro calls, ~runtime).
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>

namespace goro::detail {

// Sleeps while `word` holds `expected`; returns on a wake, a spurious wake-up or a signal.
void futex_wait(std::atomic<std::uint32_t>& word, std::uint32_t expected) noexcept;

// As futex_wait, but also returns once `deadline` has passed.
void futex_wait_until(std::atomic<std::uint32_t>& word, std::uint32_t expected,
                      std::chrono::steady_clock::time_point deadline) noexcept;

// Wakes up to `count` threads sleeping on `word`. Harmless if the word is already gone.
void futex_wake(std::atomic<std::uint32_t>& word, int count = 1) noexcept;

}  // namespace goro::detail
