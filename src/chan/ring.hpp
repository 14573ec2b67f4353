// SPDX-License-Identifier: Apache-2.0
// Layer: chan. May include: chan, sync, park, sched, stack, time, platform.
// value_ring: the values of a buffered channel on several workers, a bounded MPMC ring with a
// sequence number (stamp) per slot, after Vyukov's "bounded MPMC queue" and crossbeam-channel's
// array flavour (its position encoding and close mark). Lock-free for values; the channel's
// waiting protocol around it is in chan_core.cpp. Protocol and proof: docs/channels.md, "The
// ring: buffered channels on several workers".
//
// Invariants:
//   - a position is lap + index, index < capacity_; a lap is one_lap_ = 2 * mark_bit_, where
//     mark_bit_ is the least power of two above capacity_; tail_ also carries the close mark;
//   - slot i's stamp is pos (free for the push at pos), pos + 1 (holds the value pushed at pos),
//     or, after the pop at pos, pos + one_lap_ (free for the push one lap later);
//   - head_ <= tail_ (as positions) and tail_ - head_ <= capacity_ values, counted in slots;
//   - once marked, tail_ never changes again.
//
// Memory orders: head_ and tail_ are read relaxed before an attempt, and a failed CAS reloads
// them relaxed: a stale position only makes the stamp check or the CAS fail, and the loop reads
// again; what orders a value's bytes is the stamp (release store, acquire load), and what the
// Dekker pairs with the waiting flags need is the seq_cst CAS and the seq_cst fences before a
// "full" or "empty" verdict. The destructor's relaxed reads run with no operation in flight.
#pragma once

#include <atomic>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <new>

#include "chan/element_mover.hpp"
#include "goro/detail/chan_core.hpp"
#include "goro/detail/hardware.hpp"
#include "platform/cpu.hpp"

namespace goro::detail {

// The default of what a push or pop does just before publishing: nothing.
struct nothing_before_publish {
  void operator()() const noexcept {}
};

class value_ring {
 public:
  // The largest capacity a ring takes (a channel of more keeps the locked buffer): positions
  // then stay far from wrapping, and capacity * stride from overflowing.
  static constexpr std::size_t max_capacity = std::size_t{1} << 30;

  enum class push_result : std::uint8_t { ok, full, closed };
  enum class pop_result : std::uint8_t { ok, empty, closed };

  // REQUIRES: 0 < capacity <= max_capacity, and ops.size * capacity fits (the channel checks).
  // Throws std::bad_alloc.
  value_ring(std::size_t capacity, const elem_ops& ops)
      : mover_(ops),
        capacity_(capacity),
        value_offset_(round_up(sizeof(std::atomic<std::uint64_t>), ops.align)),
        stride_(round_up(value_offset_ + ops.size, slot_align())),
        mark_bit_(std::bit_ceil(static_cast<std::uint64_t>(capacity) + 1)),
        one_lap_(mark_bit_ * 2) {
    slots_ =
        static_cast<std::byte*>(::operator new(capacity_* stride_, std::align_val_t(slot_align())));
    for (std::size_t i = 0; i < capacity_; ++i) ::new (stamp_at(i)) std::atomic<std::uint64_t>(i);
  }
  ~value_ring() {
    // No operation is in flight: the channel is being destroyed.
    if (!mover_.ops().trivial) {
      std::uint64_t head = head_.load(std::memory_order_relaxed);
      for (std::size_t n = size(); n > 0; --n) {
        mover_.ops().destroy(value_at(head & (mark_bit_ - 1)));
        head = next(head);
      }
    }
    ::operator delete(slots_, std::align_val_t(slot_align()));
  }
  value_ring(const value_ring&) = delete;
  value_ring& operator=(const value_ring&) = delete;

  // Moves *value into the ring (leaving *value moved-from) unless it is full or closed. The
  // first attempt inline, the rest (a lost race, a full or closed ring) out of line. A push that
  // succeeds calls before_publish() after its CAS and its move, just before the stamp publishes
  // the value: the last moment at which no partner can have taken it (see below).
  template <class BeforePublish = nothing_before_publish>
  push_result try_push(void* value, BeforePublish before_publish = {}) noexcept {
    std::uint64_t tail = tail_.load(std::memory_order_relaxed);
    if ((tail & mark_bit_) == 0) {
      std::byte* const slot = slot_at(tail & (mark_bit_ - 1));
      std::atomic<std::uint64_t>& stamp = stamp_of(slot);
      // As in try_push_contended, below.
      if (stamp.load(std::memory_order_acquire) == tail &&
          tail_.compare_exchange_strong(tail, next(tail), std::memory_order_seq_cst,
                                        std::memory_order_relaxed)) {
        mover_.move_in(slot + value_offset_, value);
        before_publish();
        stamp.store(tail + 1, std::memory_order_release);
        return push_result::ok;
      }
    }
    return try_push_contended(value, before_publish);
  }

  // Moves the oldest value into the raw storage `out` (constructing it) unless the ring is
  // empty: then empty, or closed once close() marked it. The first attempt inline. A pop that
  // succeeds calls before_publish() after its CAS and its move, just before the stamp frees the
  // slot.
  template <class BeforePublish = nothing_before_publish>
  pop_result try_pop(void* out, BeforePublish before_publish = {}) noexcept {
    std::uint64_t head = head_.load(std::memory_order_relaxed);
    std::byte* const slot = slot_at(head & (mark_bit_ - 1));
    std::atomic<std::uint64_t>& stamp = stamp_of(slot);
    // As in try_pop_contended, below.
    if (stamp.load(std::memory_order_acquire) == head + 1 &&
        head_.compare_exchange_strong(head, next(head), std::memory_order_seq_cst,
                                      std::memory_order_relaxed)) {
      mover_.relocate(out, slot + value_offset_);
      before_publish();
      stamp.store(head + one_lap_, std::memory_order_release);
      return pop_result::ok;
    }
    return try_pop_contended(out, before_publish);
  }

  // The whole of try_push: Vyukov's loop.
  template <class BeforePublish>
  __attribute__((noinline)) push_result try_push_contended(void* value,
                                                           BeforePublish before_publish) noexcept {
    backoff wait;
    std::uint64_t tail = tail_.load(std::memory_order_relaxed);
    for (;;) {
      if ((tail & mark_bit_) != 0) return push_result::closed;
      const std::uint64_t index = tail & (mark_bit_ - 1);
      std::atomic<std::uint64_t>& stamp = *stamp_at(index);
      // Acquire: the pop that freed the slot has moved its value out before we write ours.
      const std::uint64_t s = stamp.load(std::memory_order_acquire);
      if (s == tail) {
        // seq_cst: the push's side of the Dekker pair with a receiver about to wait (it loads
        // recv_waiting next, docs/channels.md, "No lost wake-up").
        if (tail_.compare_exchange_weak(tail, next(tail), std::memory_order_seq_cst,
                                        std::memory_order_relaxed)) {
          mover_.move_in(value_at(index), value);
          before_publish();
          stamp.store(tail + 1, std::memory_order_release);  // publishes the value
          return push_result::ok;
        }
        continue;  // the failed CAS reloaded tail
      }
      if (s + one_lap_ == tail + 1) {  // the slot holds last lap's value
        // seq_cst fence, then head: the waiting side of the Dekker pair (a sender about to
        // wait stored send_waiting before), and a full ring seen only once head is current.
        std::atomic_thread_fence(std::memory_order_seq_cst);
        if (head_.load(std::memory_order_seq_cst) + one_lap_ == tail) return push_result::full;
      }
      // Another push took this position, or a pop is moving its value out: retry.
      wait.pause();
      tail = tail_.load(std::memory_order_relaxed);
    }
  }

  // The whole of try_pop: Vyukov's loop.
  template <class BeforePublish>
  __attribute__((noinline)) pop_result try_pop_contended(void* out,
                                                         BeforePublish before_publish) noexcept {
    backoff wait;
    std::uint64_t head = head_.load(std::memory_order_relaxed);
    for (;;) {
      const std::uint64_t index = head & (mark_bit_ - 1);
      std::atomic<std::uint64_t>& stamp = *stamp_at(index);
      // Acquire: pairs with the push's release of the stamp, so the value's bytes are visible.
      const std::uint64_t s = stamp.load(std::memory_order_acquire);
      if (s == head + 1) {
        // seq_cst: the pop's side of the Dekker pair with a sender about to wait.
        if (head_.compare_exchange_weak(head, next(head), std::memory_order_seq_cst,
                                        std::memory_order_relaxed)) {
          mover_.relocate(out, value_at(index));
          before_publish();
          stamp.store(head + one_lap_, std::memory_order_release);  // frees the slot
          return pop_result::ok;
        }
        continue;
      }
      if (s == head) {  // not pushed yet at this position
        std::atomic_thread_fence(std::memory_order_seq_cst);
        // seq_cst (an acquire): a close seen here happens-before the caller's "closed".
        const std::uint64_t tail = tail_.load(std::memory_order_seq_cst);
        if ((tail & ~mark_bit_) == head) {
          return (tail & mark_bit_) != 0 ? pop_result::closed : pop_result::empty;
        }
        // A push has taken this position and is writing its value.
      }
      wait.pause();
      head = head_.load(std::memory_order_relaxed);
    }
  }

  // Marks the ring closed: every later push fails. Returns false if it was already marked.
  // acq_rel: the closer's earlier writes happen-before a pop that sees the mark.
  bool close() noexcept {
    return (tail_.fetch_or(mark_bit_, std::memory_order_acq_rel) & mark_bit_) == 0;
  }

  // Values buffered now: a snapshot (Go's len), in [0, capacity].
  std::size_t size() const noexcept {
    for (;;) {
      const std::uint64_t tail = tail_.load(std::memory_order_seq_cst);
      const std::uint64_t head = head_.load(std::memory_order_seq_cst);
      if (tail_.load(std::memory_order_seq_cst) != tail) continue;
      const std::uint64_t hix = head & (mark_bit_ - 1);
      const std::uint64_t tix = tail & (mark_bit_ - 1);
      if (hix < tix) return tix - hix;
      if (hix > tix) return capacity_ - hix + tix;
      return (tail & ~mark_bit_) == head ? 0 : capacity_;
    }
  }

 private:
  static constexpr std::size_t round_up(std::size_t n, std::size_t align) noexcept {
    return (n + align - 1) / align * align;
  }
  std::size_t slot_align() const noexcept {
    return mover_.ops().align > alignof(std::atomic<std::uint64_t>)
               ? mover_.ops().align
               : alignof(std::atomic<std::uint64_t>);
  }
  // The position after pos: the next index, or index 0 of the next lap.
  std::uint64_t next(std::uint64_t pos) const noexcept {
    const std::uint64_t index = pos & (mark_bit_ - 1);
    return index + 1 < capacity_ ? pos + 1 : (pos & ~(one_lap_ - 1)) + one_lap_;
  }
  std::byte* slot_at(std::uint64_t index) const noexcept { return slots_ + index * stride_; }
  static std::atomic<std::uint64_t>& stamp_of(std::byte* slot) noexcept {
    return *std::launder(reinterpret_cast<std::atomic<std::uint64_t>*>(slot));
  }
  std::atomic<std::uint64_t>* stamp_at(std::uint64_t index) const noexcept {
    return &stamp_of(slot_at(index));
  }
  void* value_at(std::uint64_t index) const noexcept { return slot_at(index) + value_offset_; }
  // The read-only part: read by every operation, written by none.
  const element_mover mover_;
  const std::size_t capacity_;
  const std::size_t value_offset_;  // of a value within its slot, after the stamp
  const std::size_t stride_;        // bytes per slot
  const std::uint64_t mark_bit_;
  const std::uint64_t one_lap_;
  std::byte* slots_ = nullptr;
  // Each on a line of its own: pushers write tail_, poppers head_.
  alignas(cache_line_size) std::atomic<std::uint64_t> head_{0};
  alignas(cache_line_size) std::atomic<std::uint64_t> tail_{0};
};

}  // namespace goro::detail
