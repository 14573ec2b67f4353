// SPDX-License-Identifier: Apache-2.0
// Layer: stack. May include: stack, time, platform.
// The canary that stands in for a guard page below a compact stack: one cache line of known
// words just below the stack's lowest byte. A fiber that runs off the bottom of its compact
// stack overwrites its own canary before it reaches its neighbour's stack, and the check at its
// next switch (worker::check_stack) reports the overflow. Best effort: by then the neighbour may
// already be damaged. See docs/scheduler.md, "Compact stacks".
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

namespace goro::detail {

// Bytes below a compact stack's `low` that hold the canary: one cache line.
inline constexpr std::size_t stack_canary_bytes = 64;

namespace canary_detail {
inline constexpr std::size_t words = stack_canary_bytes / sizeof(std::uint64_t);
// "goro-can", varied per word so that a run of one repeated value never matches.
inline constexpr std::uint64_t word(std::size_t i) noexcept {
  return 0x676f726f2d63616eULL ^ (i * 0x0101010101010101ULL);
}
}  // namespace canary_detail

// Writes the canary into [low - stack_canary_bytes, low).
inline void arm_stack_canary(std::byte* low) noexcept {
  for (std::size_t i = 0; i < canary_detail::words; ++i) {
    const std::uint64_t w = canary_detail::word(i);
    std::memcpy(low - stack_canary_bytes + i * sizeof w, &w, sizeof w);
  }
}

// Whether the canary below `low` still holds what arm_stack_canary() wrote.
inline bool stack_canary_intact(const std::byte* low) noexcept {
  std::uint64_t differs = 0;
  for (std::size_t i = 0; i < canary_detail::words; ++i) {
    std::uint64_t w;
    std::memcpy(&w, low - stack_canary_bytes + i * sizeof w, sizeof w);
    differs |= w ^ canary_detail::word(i);
  }
  return differs == 0;
}

}  // namespace goro::detail
