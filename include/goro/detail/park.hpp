// SPDX-License-Identifier: Apache-2.0
// The parking mechanism every blocking call in goro is built on: a waiter is one blocked fiber
// or thread, plus the "first completion wins" slot that select, deadlines and cancellation use.
// Described in docs/scheduler.md, "Parking" and docs/channels.md, "Waiting".
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <stop_token>

namespace goro::detail {

struct fiber;
class scheduler;
using clock = std::chrono::steady_clock;

// Lives on the blocked party's stack for the length of one blocking operation.
//
// Protocol: a waker first wins claim(i) (exactly one caller over the waiter's life does), then
// completes its part of the operation, then calls unpark(). The parked side returns from park()
// only after that unpark(). unpark() may come before park(): park() then returns at once.
//
// Memory ordering: everything the waker did before unpark() happens-before park() returns.
class waiter {
 public:
  static constexpr int unclaimed = -1;

  // Binds the waiter to the calling fiber, or to the calling thread outside fibers.
  waiter() noexcept;
  waiter(const waiter&) = delete;
  waiter& operator=(const waiter&) = delete;

  // True for the first caller only; `index` says which completion won (a select case, a timeout).
  bool claim(int index) noexcept {
    int expected = unclaimed;
    return winner_.compare_exchange_strong(expected, index, std::memory_order_acq_rel,
                                           std::memory_order_acquire);
  }
  int winner() const noexcept { return winner_.load(std::memory_order_acquire); }

  // Blocks the fiber (freeing its worker) or the thread until unpark().
  void park() noexcept;

  // Gated parking, for a waiter only ever completed by a party holding some lock L, which
  // the caller holds now: parks, and runs unlock(arg) to release L once the fiber is saved
  // (on a thread, just before sleeping). Since no completer can reach the waiter before
  // then, unpark() needs no handshake with the parking side. Use instead of park() when
  // nothing else (no timer, no stop callback) can claim the waiter.
  void park_gated(void (*unlock)(void*), void* arg) noexcept;

  // As park(); if `deadline` passes first and claim(timeout_index) succeeds, returns without
  // an unpark. If the claim fails, the winner owes an unpark, and this waits for it.
  void park_until(clock::time_point deadline, int timeout_index) noexcept;

  // Wakes the parked party; call once, after winning claim().
  void unpark() noexcept;

  bool in_fiber() const noexcept { return fiber_ != nullptr; }

 private:
  // Arrival hook of park(), run once the fiber is saved (src/park/park.cpp).
  static void finish_park(void* self) noexcept;
  enum : std::uint32_t { running = 0, parked = 1, notified = 2 };
  fiber* fiber_;
  bool gated_ = false;
  std::atomic<std::uint32_t> state_{running};
  std::atomic<int> winner_{unclaimed};
};

// Claim indices that are not select cases.
inline constexpr int claim_timed_out = -2;
inline constexpr int claim_cancelled = -3;

// How long a blocking operation may wait: until `deadline`, and until `stop` is requested.
struct wait_limit {
  clock::time_point deadline = clock::time_point::max();
  std::stop_token stop;

  bool unlimited() const noexcept {
    return deadline == clock::time_point::max() && !stop.stop_possible();
  }
};

// Parks `w` until unparked, or until the limit claims it (as claim_timed_out or claim_cancelled).
// In the latter case nothing else completed the operation, and the caller must undo its
// registration.
void park_limited(waiter& w, const wait_limit& limit) noexcept;

}  // namespace goro::detail
