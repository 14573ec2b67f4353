// SPDX-License-Identifier: Apache-2.0
// Layer: net. May include: net, park, sched, stack, time, platform.
// The per-descriptor record the poller and the waits meet in: one waiter and one readiness flag
// per direction, the sequence number that tags the descriptor's epoll events, and `closing`.
// Records are pooled and never freed, so an epoll event always names valid memory. The protocol
// and its argument: docs/net.md, "The descriptor record".
//
// Invariants (all fields but index under lock):
//   - A direction's `w` is null or the waiter of the one wait parked on it; that wait takes it
//     out when it returns, unless a claimer already has.
//   - `ready` is set only while `w` is null or claimed by someone other than the poller: a
//     readiness edge is either handed to a waiter or kept here, never lost.
//   - `seq` changes only when the record goes back to the pool; events tagged with another
//     sequence are dropped.
#pragma once

#include <atomic>
#include <cstdint>

#include "goro/detail/spinlock.hpp"
#include "goro/detail/thread_safety.hpp"
#include "park/park.hpp"

namespace goro::detail {

// How a wait on a descriptor was completed, as claimed on its waiter (claim_outcome::timed_out
// and cancelled, the parking layer's, are the other two).
inline constexpr claim_outcome io_ready{0};             // the poller saw the direction ready
inline constexpr claim_outcome io_closed{1};            // close() woke it
inline constexpr claim_outcome io_deadline_changed{2};  // a deadline setter woke it, to wait again

enum class io_direction : int { read = 0, write = 1 };

struct io_side {
  waiter* w = nullptr;
  bool ready = false;
};

struct poll_record {
  spinlock lock;
  std::uint32_t seq GORO_GUARDED_BY(lock) = 0;
  bool closing GORO_GUARDED_BY(lock) = false;
  io_side sides[2] GORO_GUARDED_BY(lock);
  // Per direction, written under lock, read without it by the calls (docs/net.md, "Skipping
  // the system call that would fail"): how many readiness events have come, and whether the
  // last call drained the direction with no event since.
  std::atomic<std::uint32_t> ticks[2] = {};
  std::atomic<bool> drained[2] = {};
  // Per direction, under lock, sticky: a short call no longer means drained, since what is
  // left will come with no further edge. Set when the peer hung up or an error is pending
  // (EPOLLRDHUP, EPOLLHUP, EPOLLERR: the end of stream or the error is still to be read; Tokio
  // keeps READ_CLOSED apart from READABLE for the same reason), and when TCP urgent data came
  // (EPOLLPRI: a read stops short at the urgent mark, with the rest of the stream behind it).
  bool not_drained_by_short[2] GORO_GUARDED_BY(lock) = {};
  std::uint32_t index = 0;           // its place in the pool; fixed
  poll_record* next_free = nullptr;  // the pool's free list, under the pool's mutex

  io_side& side(io_direction d) GORO_REQUIRES(lock) { return sides[static_cast<int>(d)]; }

  // The 64-bit tag of its epoll events: sequence (high half), index (low half).
  std::uint64_t tag() GORO_REQUIRES(lock) { return std::uint64_t{seq} << 32 | index; }

  // The poller's half: direction `d` is ready (and, if `sticky`, a short call on it no longer
  // means drained: see not_drained_by_short). Returns the waiter to unpark (claimed and taken
  // out), or null, keeping the edge in `ready`.
  waiter* signal(io_direction d, bool sticky) GORO_REQUIRES(lock) {
    const int i = static_cast<int>(d);
    if (sticky) not_drained_by_short[i] = true;
    // Written only under lock (hence the plain load); release pairs with tick()'s acquire. A
    // stale read of `drained` by a call is harmless either way: true sends it to wait(), which
    // finds `ready` under lock; false costs one system call that says EAGAIN.
    ticks[i].store(ticks[i].load(std::memory_order_relaxed) + 1, std::memory_order_release);
    drained[i].store(false, std::memory_order_relaxed);
    io_side& s = side(d);
    waiter* w = s.w;
    if (w != nullptr && w->claim(io_ready)) {
      s.w = nullptr;
      return w;
    }
    s.ready = true;
    return nullptr;
  }

  // A call's system call on `d` came back short (read less than asked, wrote less than
  // given): unless an event came since `tick` (read before the call) or the direction is
  // sticky (not_drained_by_short), the
  // direction is drained, and the next call waits without trying, as Tokio's clear_readiness.
  // An edge kept in `ready` is then stale too: it came before the call that drained it.
  void note_drained(io_direction d, std::uint32_t tick) GORO_REQUIRES(lock) {
    const int i = static_cast<int>(d);
    // Relaxed: under lock, as every write of both (see signal()).
    if (not_drained_by_short[i] || ticks[i].load(std::memory_order_relaxed) != tick) return;
    drained[i].store(true, std::memory_order_relaxed);
    side(d).ready = false;
  }

  // Claims `d`'s waiter with `outcome`, taking it out; returns it to unpark, or null.
  waiter* claim_waiter(io_direction d, claim_outcome outcome) GORO_REQUIRES(lock) {
    io_side& s = side(d);
    waiter* w = s.w;
    if (w == nullptr || !w->claim(outcome)) return nullptr;
    s.w = nullptr;
    return w;
  }
};

// Takes a record from the pool, with no waiter, not ready, not closing.
poll_record& acquire_poll_record();
// Returns `r` to the pool, bumping its sequence. REQUIRES: no wait uses it any more.
void release_poll_record(poll_record& r) noexcept;
// The record with this index (from an event's tag). Lock-free.
poll_record& poll_record_at(std::uint32_t index) noexcept;

}  // namespace goro::detail
