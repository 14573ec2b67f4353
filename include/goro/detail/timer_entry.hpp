// SPDX-License-Identifier: Apache-2.0
// A pending callback on a runtime's timer heap: what sleep_for, deadlines, after(), timer and
// ticker are made of. Described in docs/scheduler.md, "Timers".
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>

namespace goro::detail {

using clock = std::chrono::steady_clock;

struct timer_entry {
  // Runs on a worker once `when` has passed, with no lock held, neither by the worker nor by a
  // fiber it is switching away from. Must not block. Returns true to be queued again at the
  // `when` it has set (a ticker), false to go idle.
  bool (*fire)(timer_entry& self) noexcept = nullptr;
  // clock::time_point::max() means never: the entry stays queued, and never fires.
  clock::time_point when{};
  // fire() deletes the entry: the heap must not touch it afterwards, and nobody may stop it.
  // If the runtime goes away first, discard() deletes it without firing.
  bool frees_itself = false;
  void (*discard)(timer_entry& self) noexcept = nullptr;

  // Owned by the heap.
  static constexpr std::size_t not_queued = static_cast<std::size_t>(-1);
  std::size_t heap_index = not_queued;
  enum : std::uint8_t { idle, pending, firing };
  std::atomic<std::uint8_t> state{idle};
};

}  // namespace goro::detail
