// SPDX-License-Identifier: Apache-2.0
// A worker's local run queue: a bounded ring that only its owner pushes to and that any worker
// may take from, plus the `next` slot (Go's runnext). Modelled on Go's runqput/runqget/runqgrab
// (runtime/proc.go); written for goro. See docs/scheduler.md, "Run queues".
//
// Invariants:
//   - Only the owner writes tail_ and the slots in [tail_, head_ + capacity).
//   - head_ only grows, by CAS; the slots in [head_, tail_) hold runnable fibers.
//   - A fiber is in at most one run queue or slot at a time.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>

namespace goro::detail {

struct fiber;

class run_queue {
 public:
  static constexpr std::uint32_t capacity = 256;

  // Owner only. False if the ring is full (the caller moves work to the global queue).
  bool push(fiber* f) noexcept {
    // Acquire pairs with the release CAS of pop/steal: they have read the slot we may reuse.
    const std::uint32_t h = head_.load(std::memory_order_acquire);
    const std::uint32_t t = tail_.load(std::memory_order_relaxed);  // only we write it
    if (t - h >= capacity) return false;
    slots_[t % capacity].store(f, std::memory_order_relaxed);
    // Release publishes the slot to consumers that acquire tail_.
    tail_.store(t + 1, std::memory_order_release);
    return true;
  }

  // Owner only: takes the oldest half of a full ring (for the global queue) into `out`.
  std::uint32_t take_half(fiber** out) noexcept { return grab(out, false); }

  bool ring_empty() const noexcept {
    return head_.load(std::memory_order_acquire) == tail_.load(std::memory_order_acquire);
  }

  // Owner only. Puts `f` in the next slot; returns the fiber it displaced, if any.
  fiber* set_next(fiber* f) noexcept {
    // An empty slot cannot be raced: thieves only CAS a non-null value out. Release publishes
    // *f to a thief that acquires the slot.
    if (next_.load(std::memory_order_relaxed) == nullptr) {
      next_.store(f, std::memory_order_release);
      return nullptr;
    }
    return next_.exchange(f, std::memory_order_acq_rel);
  }

  // Owner only: the next slot first, then the oldest queued fiber.
  fiber* pop() noexcept {
    if (next_.load(std::memory_order_relaxed) != nullptr) {
      if (fiber* f = next_.exchange(nullptr, std::memory_order_acq_rel)) return f;
    }
    return pop_queued();
  }

  // Owner only: the oldest queued fiber, skipping the next slot (for fairness).
  fiber* pop_queued() noexcept {
    for (;;) {
      std::uint32_t h = head_.load(std::memory_order_acquire);
      const std::uint32_t t = tail_.load(std::memory_order_relaxed);
      if (h == t) return nullptr;
      fiber* f = slots_[h % capacity].load(std::memory_order_relaxed);
      // Release: our read of the slot happens-before the owner's reuse of it.
      if (head_.compare_exchange_weak(h, h + 1, std::memory_order_release,
                                      std::memory_order_relaxed)) {
        return f;
      }
    }
  }

  // Any thread: takes about half of the queued fibers into `out` (capacity/2 slots).
  std::uint32_t steal(fiber** out) noexcept { return grab(out, false); }

  // Any thread: the fiber in the next slot, if any, without taking it.
  fiber* peek_next() const noexcept { return next_.load(std::memory_order_acquire); }
  // Any thread: takes the next slot's fiber if it is still `f`.
  bool take_next_if(fiber* f) noexcept {
    return f != nullptr && next_.compare_exchange_strong(f, nullptr, std::memory_order_acq_rel);
  }

  bool empty() const noexcept {
    return head_.load(std::memory_order_acquire) == tail_.load(std::memory_order_acquire) &&
           next_.load(std::memory_order_acquire) == nullptr;
  }

 private:
  std::uint32_t grab(fiber** out, bool take_next) noexcept {
    for (;;) {
      std::uint32_t h = head_.load(std::memory_order_acquire);
      // Acquire pairs with push's release: the slots below tail_ are written.
      const std::uint32_t t = tail_.load(std::memory_order_acquire);
      std::uint32_t n = t - h;
      n -= n / 2;
      if (n == 0) {
        if (!take_next) return 0;
        fiber* f = next_.load(std::memory_order_acquire);
        if (f == nullptr) return 0;
        if (next_.compare_exchange_strong(f, nullptr, std::memory_order_acq_rel)) {
          out[0] = f;
          return 1;
        }
        continue;
      }
      if (n > capacity / 2) continue;  // h and t read at different times; retry
      for (std::uint32_t i = 0; i < n; ++i) {
        out[i] = slots_[(h + i) % capacity].load(std::memory_order_relaxed);
      }
      if (head_.compare_exchange_weak(h, h + n, std::memory_order_release,
                                      std::memory_order_relaxed)) {
        return n;
      }
    }
  }

  alignas(64) std::atomic<std::uint32_t> head_{0};
  alignas(64) std::atomic<std::uint32_t> tail_{0};
  std::atomic<fiber*> next_{nullptr};
  std::array<std::atomic<fiber*>, capacity> slots_{};
};

}  // namespace goro::detail
