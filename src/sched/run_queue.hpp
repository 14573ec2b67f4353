// SPDX-License-Identifier: Apache-2.0
// Layer: sched. May include: sched, stack, time, platform.
// A worker's local run queue: the `next` slot (Go's runnext) and two rings that only their
// owner pushes to and any worker may take from. `queued` holds fibers in arrival order (yields,
// batches from the global queue or a victim); `displaced` holds the fibers pushed out of `next`
// by a newer one, and its owner takes the newest first. The rings are modelled on Go's
// runqput/runqget/runqgrab (runtime/proc.go), the owner's newest-first take on the Chase-Lev
// deque (Chase and Lev, SPAA 2005; Le et al., PPoPP 2013); written for goro. See
// docs/scheduler.md, "Run queues".
#pragma once

#include <array>
#include <atomic>
#include <cstdint>

#include "goro/detail/hardware.hpp"
#include "platform/asymmetric_fence.hpp"
#include "platform/cpu.hpp"

namespace goro::detail {

struct fiber;

// A bounded ring of fibers.
//
// Invariants:
//   - Only the owner writes tail_ and the slots in [tail_, head_ + capacity).
//   - head_ only grows, by CAS; the slots in [head_, tail_) hold runnable fibers.
//   - tail_ < head_ only inside pop_newest, which restores tail_ == head_ before returning.
class fiber_ring {
 public:
  static constexpr std::uint32_t capacity = 256;

  // Owner only. False if the ring is full.
  bool push(fiber* f) noexcept {
    // Acquire pairs with the release CAS of pop/grab: they have read the slot we may reuse.
    const std::uint32_t h = head_.load(std::memory_order_acquire);
    const std::uint32_t t = tail_.load(std::memory_order_relaxed);  // only we write it
    if (t - h >= capacity) return false;
    slots_[t % capacity].store(f, std::memory_order_relaxed);
    // Release publishes the slot to consumers that acquire tail_.
    tail_.store(t + 1, std::memory_order_release);
    return true;
  }

  // Owner only: the oldest fiber.
  fiber* pop_oldest() noexcept {
    for (;;) {
      std::uint32_t h = head_.load(std::memory_order_acquire);
      const std::uint32_t t = tail_.load(std::memory_order_relaxed);
      if (h == t) return nullptr;
      fiber* f = slots_[h % capacity].load(std::memory_order_relaxed);
      if (!shared_) {
        head_.store(h + 1, std::memory_order_relaxed);
        return f;
      }
      // Release: our read of the slot happens-before the owner's reuse of it.
      if (head_.compare_exchange_weak(h, h + 1, std::memory_order_release,
                                      std::memory_order_relaxed)) {
        return f;
      }
    }
  }

  // Owner only: the newest fiber. We claim the last slot by lowering tail_, then read head_;
  // the fences (light here, heavy in take_oldest_if) order the claim against every thief's
  // reads, so a thief can reach the last slot only if it saw it as the ring's only
  // fiber, and then we race it for that fiber by CAS on head_ (Chase-Lev's take). Thieves of
  // such a ring must take one fiber at a time (see grab). Proof in docs/scheduler.md.
  fiber* pop_newest() noexcept {
    const std::uint32_t t = tail_.load(std::memory_order_relaxed);
    if (head_.load(std::memory_order_acquire) == t) return nullptr;
    const std::uint32_t last = t - 1;
    fiber* f = slots_[last % capacity].load(std::memory_order_relaxed);
    if (!shared_) {
      tail_.store(last, std::memory_order_relaxed);
      return f;
    }
    tail_.store(last, std::memory_order_relaxed);
    light_fence();
    std::uint32_t h = head_.load(std::memory_order_relaxed);
    const auto left = static_cast<std::int32_t>(last - h);  // fibers before `last`
    if (left > 0) return f;
    bool won = false;
    if (left == 0) {
      won = head_.compare_exchange_strong(h, h + 1, std::memory_order_seq_cst,
                                          std::memory_order_relaxed);
    }
    tail_.store(t, std::memory_order_relaxed);  // == head_ now: the ring is empty either way
    return won ? f : nullptr;
  }

  // Any thread: takes about half of the fibers, oldest first, into `out` (capacity / 2 slots).
  // Not on a ring whose owner takes the newest (pop_newest): between this thief's reads and
  // its CAS, the owner could take several newest fibers without a CAS, down into the range
  // the thief is about to take. Such a ring gives up its fibers one at a time
  // (take_oldest_if).
  std::uint32_t grab(fiber** out) noexcept {
    for (;;) {
      std::uint32_t h = head_.load(std::memory_order_acquire);
      // Acquire pairs with push's release: the slots below tail_ are written.
      const std::uint32_t t = tail_.load(std::memory_order_acquire);
      std::uint32_t n = t - h;
      n -= n / 2;
      if (n == 0) return 0;
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

  // Any thread: the position of the oldest fiber, for take_oldest_if.
  std::uint32_t oldest() const noexcept { return head_.load(std::memory_order_acquire); }

  // Any thread: takes the oldest fiber, if it is still the one at position `h` (no fiber has
  // left the front since oldest() returned h). One fiber per CAS, so it may race pop_newest
  // (Chase-Lev's steal; the proof is in docs/scheduler.md).
  fiber* take_oldest_if(std::uint32_t h) noexcept {
    if (head_.load(std::memory_order_acquire) != h) return nullptr;
    // Pairs with pop_newest's light fence: see there.
    heavy_fence();
    // Acquire pairs with push's release: the slot below tail_ is written.
    const std::uint32_t t = tail_.load(std::memory_order_acquire);
    if (static_cast<std::int32_t>(t - h) <= 0) return nullptr;
    fiber* f = slots_[h % capacity].load(std::memory_order_relaxed);
    if (!head_.compare_exchange_strong(h, h + 1, std::memory_order_seq_cst,
                                       std::memory_order_relaxed)) {
      return nullptr;
    }
    return f;
  }

  bool empty() const noexcept {
    return head_.load(std::memory_order_acquire) == tail_.load(std::memory_order_acquire);
  }

  // Any thread: how many fibers the ring holds, as read at some moment while it changes
  // (runtime_metrics). Relaxed: a gauge, ordered with nothing. Inside pop_newest tail_ may be
  // one below head_ for a moment, which reads as empty.
  std::uint32_t size() const noexcept {
    const std::uint32_t h = head_.load(std::memory_order_relaxed);
    const std::uint32_t n = tail_.load(std::memory_order_relaxed) - h;
    return n > capacity ? 0 : n;
  }

  // See run_queue::set_shared.
  void set_shared(bool shared) noexcept { shared_ = shared; }

 private:
  alignas(cache_line_size) std::atomic<std::uint32_t> head_{0};
  alignas(cache_line_size) std::atomic<std::uint32_t> tail_{0};
  std::array<std::atomic<fiber*>, capacity> slots_{};
  // False: only the owner's thread ever touches this ring, so its unshared paths use relaxed
  // loads and stores and no fences (there is no other thread to order against).
  bool shared_ = true;
};

// Invariant: a fiber is in at most one ring or slot, of one run queue, at a time.
class run_queue {
 public:
  static constexpr std::uint32_t capacity = fiber_ring::capacity;

  // Owner only. False if the ring is full (the caller moves work to the global queue).
  bool push(fiber* f) noexcept { return queued_.push(f); }

  // Owner only: for a fiber just pushed out of the next slot by a newer one. False if full.
  bool push_displaced(fiber* f) noexcept { return displaced_.push(f); }

  // Owner only: takes the oldest half of the full `queued` ring (for the global queue).
  std::uint32_t take_half(fiber** out) noexcept { return queued_.grab(out); }

  // Owner only. Puts `f` in the next slot; returns the fiber it displaced, if any.
  fiber* set_next(fiber* f) noexcept { return exchange_next(f); }

  // Owner only: the next slot; else the most recently displaced fiber, so that a spawn tree
  // or a fan-in is finished depth first (the fibers it woke exit before older work starts
  // new subtrees, keeping few stacks alive); else the oldest queued fiber.
  fiber* pop() noexcept {
    if (fiber* f = pop_next()) return f;
    return pop_after_next();
  }
  // Owner only: whether the next slot holds a fiber. Relaxed is enough: only the owner puts
  // a fiber there, so null is exact; a thief may empty it at any moment, so a true answer is
  // a hint either way, which the caller must tolerate (worker::queue_parent does).
  bool has_next() const noexcept { return next_.load(std::memory_order_relaxed) != nullptr; }
  // Owner only: the next slot's fiber, or null (pop's first step).
  fiber* pop_next() noexcept {
    if (next_.load(std::memory_order_relaxed) == nullptr) return nullptr;
    return exchange_next(nullptr);  // null: a thief took it meanwhile
  }
  // Owner only: pop() without the next slot (its other steps).
  fiber* pop_after_next() noexcept {
    if (fiber* f = displaced_.pop_newest()) return f;
    return queued_.pop_oldest();
  }

  // Owner only: the oldest queued fiber, skipping the next slot (for fairness).
  fiber* pop_queued() noexcept { return queued_.pop_oldest(); }
  // Owner only: the oldest displaced fiber, skipping the newest-first order (for fairness).
  fiber* pop_oldest_displaced() noexcept { return displaced_.pop_oldest(); }

  // Any thread: takes about half of the queued fibers, oldest first, into `out` (capacity/2
  // slots).
  std::uint32_t steal(fiber** out) noexcept { return queued_.grab(out); }

  // Any thread. The next slot and the displaced ring hold fibers a hand-off has just made
  // runnable here, normally about to run here; a thief takes them only once they have sat
  // still for a while (worker::steal_stuck). A snapshot of them:
  struct stuck_candidates {
    fiber* next;
    std::uint32_t displaced_oldest;
    bool displaced;
  };
  stuck_candidates peek_stuck() const noexcept {
    return {next_.load(std::memory_order_acquire), displaced_.oldest(), !displaced_.empty()};
  }
  // Any thread: takes the next slot's fiber if it is still `f`. Dear with asymmetric fences
  // (a heavy fence, which interrupts every running thread of the process), so only for a
  // fiber seen stuck there, and only if it still is.
  bool take_next_if(fiber* f) noexcept {
    if (f == nullptr || next_.load(std::memory_order_acquire) != f) return false;
    if (!asymmetric_fences()) {
      return next_.compare_exchange_strong(f, nullptr, std::memory_order_acq_rel);
    }
    bool no_thief = false;
    // One thief at a time: another one is already taking whatever is there. Acquire pairs
    // with the previous thief's release of thief_: its CAS of next_ happens-before ours.
    if (!thief_.compare_exchange_strong(no_thief, true, std::memory_order_acquire)) return false;
    // From here on the owner sees thief_ and updates next_ by exchange (exchange_next); an
    // update it began before is seen in owner_busy_, and waited out. The owner's window is a
    // few instructions, unless the OS preempted it there: then give up rather than spin.
    heavy_fence();
    bool won = false;
    for (int spins = 0; spins < max_owner_wait_spins; ++spins) {
      if (!owner_busy_.load(std::memory_order_acquire)) {
        won = next_.compare_exchange_strong(f, nullptr, std::memory_order_acq_rel);
        break;
      }
      cpu_relax();
    }
    thief_.store(false, std::memory_order_release);
    return won;
  }
  // Any thread: takes the oldest displaced fiber if none has left the front of the ring since
  // the snapshot. One at a time, as the owner takes from the other end without a CAS (see
  // fiber_ring::grab). The oldest displaced fibers are the roots of a spawn tree: the biggest
  // pieces of work to move.
  fiber* steal_displaced_if(const stuck_candidates& seen) noexcept {
    return seen.displaced ? displaced_.take_oldest_if(seen.displaced_oldest) : nullptr;
  }

  bool queued_empty() const noexcept { return queued_.empty(); }

  // Any thread: the fibers in the next slot and both rings, a gauge for runtime_metrics.
  std::uint32_t size() const noexcept {
    return queued_.size() + displaced_.size() +
           (next_.load(std::memory_order_relaxed) != nullptr ? 1 : 0);
  }

  bool empty() const noexcept {
    return queued_.empty() && displaced_.empty() &&
           next_.load(std::memory_order_acquire) == nullptr;
  }

  // Called once, before the owner starts: false when no other worker exists to take from this
  // queue, so the owner may update it without atomic read-modify-writes or fences (about
  // 10 ns each, one per hand-off otherwise).
  void set_shared(bool shared) noexcept {
    shared_ = shared;
    queued_.set_shared(shared);
    displaced_.set_shared(shared);
  }

 private:
  // Replaces the next slot's fiber with f (either may be null) and returns the old one. With
  // asymmetric fences, by a plain load and store unless a thief is at work (the protocol and
  // its proof: docs/scheduler.md, "Asymmetric fences"); else by an atomic exchange.
  fiber* exchange_next(fiber* f) noexcept {
    if (!shared_) {
      fiber* old = next_.load(std::memory_order_relaxed);
      next_.store(f, std::memory_order_relaxed);
      return old;
    }
    if (!asymmetric_fences()) {
      // An empty slot cannot be raced: thieves only CAS a non-null fiber out.
      if (next_.load(std::memory_order_relaxed) == nullptr) {
        next_.store(f, std::memory_order_release);
        return nullptr;
      }
      return next_.exchange(f, std::memory_order_acq_rel);
    }
    // Relaxed: the fence pair (light here, heavy in take_next_if), not this store's order,
    // makes a thief either see owner_busy_ or be seen in thief_ below.
    owner_busy_.store(true, std::memory_order_relaxed);
    light_fence();
    // Acquire: a thief that has finished released thief_ after its CAS of next_.
    if (thief_.load(std::memory_order_acquire)) {
      owner_busy_.store(false, std::memory_order_release);
      return next_.exchange(f, std::memory_order_acq_rel);
    }
    fiber* old = next_.load(std::memory_order_relaxed);
    // Release publishes *f to a thief that acquires the slot.
    next_.store(f, std::memory_order_release);
    // Release: a thief waiting for this update then sees its store of next_.
    owner_busy_.store(false, std::memory_order_release);
    return old;
  }

  static constexpr int max_owner_wait_spins = 4096;

  fiber_ring queued_;
  fiber_ring displaced_;
  // Their own line: the owner writes them on every hand-off, while idle workers poll the
  // rings' head_ and tail_ (spin_for_work); sharing their line cost a cache miss per hand-off.
  alignas(cache_line_size) std::atomic<fiber*> next_{nullptr};
  std::atomic<bool> owner_busy_{false};  // the owner is inside exchange_next
  std::atomic<bool> thief_{false};       // a thief is inside take_next_if
  bool shared_ = true;  // as fiber_ring::shared_: false makes next_ the owner's alone
};

}  // namespace goro::detail
