// SPDX-License-Identifier: Apache-2.0
// Layer: park. May include: park, sched, stack, time, platform.
// The parking mechanism every blocking call in goro is built on: a waiter is one blocked fiber
// or thread, plus the "first completion wins" slot that select, deadlines and cancellation use.
// Described in docs/scheduler.md, "Parking" and docs/channels.md, "Waiting".
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "goro/detail/deadline.hpp"
#include "sched/census.hpp"
#include "sched/fiber.hpp"
#include "sched/worker.hpp"

namespace goro::detail {

struct fiber;

// Which completion won a waiter: what its claim() was called with. A small integer underneath,
// so that a select's case index is one (case_outcome) and comparing or storing one costs what an
// int does; an enum class, so that no stray int, nor another enum, passes for one.
//
// The parking layer reserves the negative values: `none`, and the outcomes of its own limits.
// Every module that completes waiters names its own outcomes as constants of this type with
// values >= 0, beside the code that claims with them, for example:
//
//   inline constexpr claim_outcome granted{0};  // src/park/sync_queue.hpp
//   inline constexpr claim_outcome woken{1};
//
// Outcomes need only differ among the completers of one waiter (a module's own, and the
// reserved ones its waiters' limits use); two modules may reuse the same numbers.
enum class claim_outcome : std::int32_t {
  none = -1,       // not claimed yet
  timed_out = -2,  // park_limited (or park_until): the deadline passed first
  cancelled = -3,  // park_limited: the stop token was triggered first
};

// Case i of a select.
constexpr claim_outcome case_outcome(std::size_t i) noexcept {
  return static_cast<claim_outcome>(static_cast<std::int32_t>(i));
}
// The case index a select's winner names. REQUIRES: c is a case_outcome.
constexpr std::size_t case_index(claim_outcome c) noexcept {
  return static_cast<std::size_t>(static_cast<std::int32_t>(c));
}
// Whether the parking layer's own limit won (timed_out, cancelled), rather than a completer.
constexpr bool limit_won(claim_outcome c) noexcept {
  return static_cast<std::int32_t>(c) < static_cast<std::int32_t>(claim_outcome::none);
}

// Lives on the blocked party's stack for the length of one blocking operation.
//
// Protocol: a waker first wins claim(c) (exactly one caller over the waiter's life does), then
// completes its part of the operation, then calls unpark(). The parked side returns from park()
// only after that unpark(). unpark() may come before park(): park() then returns at once.
//
// Memory ordering: everything the waker did before unpark() happens-before park() returns.
class waiter {
 public:
  // Binds the waiter to the calling fiber, or to the calling thread outside fibers. `why` and
  // `object` name what it waits on, for the diagnostics (docs/diagnostics.md): recorded in the
  // fiber when it parks, or in the census while a thread blocks with no deadline. Inline, as
  // is park_gated's fiber path: a channel's wait then calls nothing before the switch (the two
  // calls cost 38 instructions per pingpong round trip, callgrind).
  waiter() noexcept { bind(nullptr, nullptr); }
  waiter(const wait_reason& why, const void* object) noexcept { bind(&why, object); }
  waiter(const waiter&) = delete;
  waiter& operator=(const waiter&) = delete;

  // True for the first caller only; `c` says which completion won (a select case, a timeout, a
  // module's outcome). acq_rel: a winner sees what the parked side did before parking, and its
  // claim is ordered before whatever it does next to complete the operation.
  bool claim(claim_outcome c) noexcept {
    claim_outcome expected = claim_outcome::none;
    return winner_.compare_exchange_strong(expected, c, std::memory_order_acq_rel,
                                           std::memory_order_acquire);
  }
  // The claim that won; claim_outcome::none while nobody has claimed.
  claim_outcome winner() const noexcept { return winner_.load(std::memory_order_acquire); }

  // Blocks the fiber (freeing its worker) or the thread until unpark().
  void park() noexcept;

  // Gated parking, for a waiter only ever completed by a party holding some lock L, which
  // the caller holds now: parks, and runs unlock(arg) to release L once the fiber is saved
  // (on a thread, just before sleeping). Since no completer can reach the waiter before
  // then, unpark() needs no handshake with the parking side. Use instead of park() when
  // nothing else (no timer, no stop callback) can claim the waiter.
  void park_gated(void (*unlock)(void*), void* arg) noexcept {
    if (fiber_ != nullptr) [[likely]] {
      gated_ = true;
      // The unlock is the arrival hook itself: the fiber is saved; let completers in.
      worker::current()->switch_away(unlock, arg);
      return;
    }
    park_gated_thread(unlock, arg);
  }

  // As park(); if `deadline` passes first and claim(on_timeout) succeeds, returns without an
  // unpark. If the claim fails, the winner owes an unpark, and this waits for it.
  void park_until(clock::time_point deadline,
                  claim_outcome on_timeout = claim_outcome::timed_out) noexcept;

  // Wakes the parked party; call once, after winning claim().
  void unpark() noexcept;

  // True if bound to a fiber, false to a plain thread.
  bool in_fiber() const noexcept { return fiber_ != nullptr; }

 private:
  // Arrival hook of park(), run once the fiber is saved (src/park/park.cpp).
  static void finish_park(void* self) noexcept;
  // Binds to the calling fiber or thread and records what it waits on (the constructors). A
  // waiter is made just before it parks, so the fiber's record is written here, once, and the
  // parking paths add nothing. While the fiber does not park the fields are stale, and nobody
  // reads them (fiber.hpp). Relaxed: the diagnostics take what they find.
  void bind(const wait_reason* why, const void* object) noexcept {
    worker* w = worker::current();
    fiber* const f = w != nullptr ? w->current_fiber() : nullptr;
    fiber_ = f;
    if (f != nullptr) [[likely]] {
      f->waiting_on.store(why, std::memory_order_relaxed);
      f->wait_object.store(object, std::memory_order_relaxed);
      f->wait_since.store(coarse_clock_ms.load(std::memory_order_relaxed),
                          std::memory_order_relaxed);
    } else {
      why_ = why;
      object_ = object;
    }
  }
  // park_gated() on a thread: unlocks, then sleeps until notified.
  void park_gated_thread(void (*unlock)(void*), void* arg) noexcept;
  // A thread's sleep until notified, registered in the census (sched/census.hpp).
  void sleep_until_notified() noexcept;
  // unpark() of a fiber; the second traces the wake-up first (sched/trace_buffer.hpp).
  void unpark_fiber(fiber* f) noexcept;
  [[gnu::noinline, gnu::cold]] void unpark_traced(fiber* f) noexcept;
  enum : std::uint32_t { running = 0, parked = 1, notified = 2 };
  fiber* fiber_;
  // A thread's wait (a fiber's is in its record): set only where fiber_ is null.
  const wait_reason* why_;
  const void* object_;
  bool gated_ = false;
  std::atomic<std::uint32_t> state_{running};
  std::atomic<claim_outcome> winner_{claim_outcome::none};
};

// Parks `w` until unparked, or until the limit claims it (as claim_outcome::timed_out or
// claim_outcome::cancelled). In the latter case nothing else completed the operation, and the
// caller must undo its registration.
void park_limited(waiter& w, const wait_limit& limit) noexcept;

}  // namespace goro::detail
