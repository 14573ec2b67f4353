// SPDX-License-Identifier: Apache-2.0
// Layer: sync. May include: chan, sync, park, sched, stack, time, platform.
// goro::mutex's slow paths: spinning, queueing, normal-mode wake-ups and starvation-mode
// hand-off. The algorithm is Go's (sync/mutex.go: lockSlow, unlockSlow), with the runtime
// semaphore replaced by a queue of parked waiters under a spinlock, and with deadlines and stop
// requests added. docs/sync.md, "mutex", has the state diagram and the designs rejected.
//
// Invariants:
//   - has_waiters is set exactly when the queue is non-empty, whenever lock_ is free; it changes
//     only under lock_.
//   - starving implies locked. A waiter sets starving only in a CAS that sees locked; it is
//     cleared only by the owner (hand_off) or together with locked.
//   - In starvation mode, locked stays set from the unlocking owner through the waiter it hands
//     the mutex to: nobody else can take it in between, and only lock_ holders and the owner
//     change state_.
//   - woken is set by an unlock that wakes one waiter, under lock_ as it picks the waiter and
//     before it frees the mutex, and cleared by that waiter (when it takes the mutex, queues
//     again or gives up). While it is set, no other unlock wakes anyone.
//   - An unlock touches the mutex last with the store that frees it (or, in starvation mode,
//     with lock_'s release before it unparks the new owner): see unlock_slow.
//   - A queued waiter always has someone who will wake it: while it is queued, either the mutex
//     is held (its owner's unlock sees has_waiters) or a woken waiter is on its way (it will take
//     the mutex or queue again under locked).
#include <chrono>
#include <thread>

#include "goro/detail/thread_safety.hpp"
#include "goro/mutex.hpp"
#include "park/sync_queue.hpp"
#include "sched/worker.hpp"

namespace goro {

namespace {

// How long a waiter waits before the mutex goes into starvation mode (Go's
// starvationThresholdNs).
constexpr auto starvation_threshold = std::chrono::milliseconds(1);
// Spinning, as Go's sync_runtime_canSpin: a few rounds of a few pause instructions.
constexpr int spin_rounds = 4;
constexpr int pauses_per_round = 30;

}  // namespace

bool mutex::lock(std::stop_token stop) {
  std::uint32_t expected = 0;
  // Acquire pairs with unlock's release.
  if (state_.compare_exchange_strong(expected, locked, std::memory_order_acquire,
                                     std::memory_order_relaxed)) {
    return true;
  }
  return lock_slow({.stop = std::move(stop)});
}

// Spinning pays only if the holder runs in parallel with us: never on a runtime with one worker
// (the holder is a fiber of this very worker), nor on a machine with one CPU.
bool mutex::may_spin(int iteration) const noexcept {
  if (iteration >= spin_rounds) return false;
  if (detail::worker* w = detail::worker::current(); w != nullptr) {
    return w->sched().worker_count() > 1;
  }
  static const bool multicore = std::thread::hardware_concurrency() > 1;
  return multicore;
}

bool mutex::lock_slow(const detail::wait_limit& limit) {
  bool awoke = false;  // we hold the woken bit's duty
  int spins = 0;
  detail::clock::time_point since{};  // when we first queued
  for (;;) {
    // Relaxed loads of state_ here and below are guesses that a CAS then checks.
    std::uint32_t s = state_.load(std::memory_order_relaxed);
    // Normal mode, held: spin a little; the holder may be about to unlock.
    if ((s & (locked | starving)) == locked && may_spin(spins)) {
      for (int i = 0; i < pauses_per_round; ++i) detail::cpu_relax();
      ++spins;
      continue;
    }
    if ((s & (locked | starving)) == 0) {
      // Free, and not being handed to anyone: take it (a woken waiter also drops woken).
      const std::uint32_t next = (s | locked) & ~(awoke ? woken : 0u);
      // Acquire pairs with the release of the unlock that freed it.
      if (state_.compare_exchange_weak(s, next, std::memory_order_acquire,
                                       std::memory_order_relaxed)) {
        return true;
      }
      continue;
    }
    // Held (or being handed off): we must wait, unless the limit says stop now.
    if (detail::limit_reached(limit)) {
      // Relaxed: clearing woken publishes nothing; s has locked set, so the owner's unlock will
      // wake someone else.
      if (awoke && !state_.compare_exchange_weak(s, s & ~woken, std::memory_order_relaxed)) {
        continue;
      }
      return false;
    }
    if (since == detail::clock::time_point{}) since = detail::clock::now();
    const bool starve = awoke && detail::clock::now() - since > starvation_threshold;

    detail::sync_node node(detail::mutex_lock, this);
    node.since = since;
    lock_.lock();
    s = state_.load(std::memory_order_relaxed);
    bool queued = false;
    while ((s & (locked | starving)) != 0) {
      std::uint32_t next = s | has_waiters;
      if (awoke) next &= ~woken;
      // Go: "Don't switch to starvation mode if the mutex is currently unlocked" (s has locked
      // here). Relaxed: the queue is ordered by lock_; the bits publish nothing.
      if (starve) next |= starving;
      if (state_.compare_exchange_weak(s, next, std::memory_order_relaxed)) {
        detail::sync_queue q(head_, tail_);
        // A waiter woken before goes back to the front, as in Go (queueLifo).
        if (awoke) {
          q.push_front(&node);
        } else {
          q.push_back(&node);
        }
        queued = true;
        break;
      }
    }
    if (!queued) {
      lock_.unlock();
      continue;  // freed meanwhile: try again to take it
    }
    awoke = false;
    spins = 0;
    detail::park_queued(node.w, lock_, limit);
    const detail::claim_outcome winner = node.w.winner();
    if (winner == detail::granted) return true;  // handed to us; unpark ordered it
    if (winner == detail::woken) {
      awoke = true;
      continue;
    }
    // Timed out or cancelled while queued: nobody claimed us, so nobody woke us for the mutex,
    // and nobody owes us anything. Relaxed: the flag publishes nothing; lock_ orders the queue.
    detail::lock_guard guard(lock_);
    detail::sync_queue q(head_, tail_);
    q.remove(&node);
    if (q.empty()) state_.fetch_and(~has_waiters, std::memory_order_relaxed);
    return false;
  }
}

// An unlock's last touch of the mutex is the store that frees it: from then on another party
// may take it, free it and destroy it, even while this call is still returning (a mutex used as
// a completion signal, whose last user deletes it; std::mutex must allow that, and glibc's bug
// 13690 was an unlock that touched its mutex after the store). So a waiter is chosen, and
// woken set, while the unlocking owner still holds the mutex; Go frees first and wakes after,
// which its garbage collector makes safe.
void mutex::unlock_slow() noexcept {
  for (;;) {
    // Relaxed: a guess at the bits; the releasing CAS below checks it, and the wake-up and
    // hand-off paths read the queue under lock_ and publish through claim and unpark.
    std::uint32_t s = state_.load(std::memory_order_relaxed);
    if ((s & locked) == 0) detail::sync_fatal("goro::mutex::unlock: unlock of unlocked mutex");
    if ((s & starving) != 0) {
      if (hand_off()) return;
      continue;  // every waiter gave up: out of starvation mode, the mutex still ours
    }
    // Normal mode: wake one waiter to compete, unless there is none or a woken one is already on
    // its way.
    if ((s & has_waiters) != 0 && (s & woken) == 0) {
      if (wake_one()) return;
      continue;  // every waiter gave up
    }
    // Release pairs with the acquire of whoever takes the mutex next.
    if (state_.compare_exchange_weak(s, s & ~locked, std::memory_order_release,
                                     std::memory_order_relaxed)) {
      return;
    }
  }
}

bool mutex::wake_one() noexcept {
  detail::sync_node* n = nullptr;
  {
    detail::lock_guard guard(lock_);
    detail::sync_queue q(head_, tail_);
    n = q.pop_claimed(detail::woken);
    // Relaxed: the bits publish nothing; the woken waiter is ordered by claim and unpark.
    if (n != nullptr) state_.fetch_or(woken, std::memory_order_relaxed);
    if (q.empty()) state_.fetch_and(~has_waiters, std::memory_order_relaxed);
  }
  if (n == nullptr) return false;
  // Free it: nobody but us changes `starving` now (only an awake waiter sets it, and the only
  // one is n, still parked). Release pairs with the acquire of whoever takes it next.
  state_.fetch_and(~locked, std::memory_order_release);
  n->w.unpark();  // n's node, on its stack: n cannot have returned from lock() before this
  return true;
}

bool mutex::hand_off() noexcept {
  detail::sync_node* n = nullptr;
  {
    detail::lock_guard guard(lock_);
    detail::sync_queue q(head_, tail_);
    n = q.pop_claimed(detail::granted);
    std::uint32_t clear = 0;
    if (n == nullptr) {
      // Every waiter gave up: leave starvation mode. The mutex stays ours, for unlock_slow to
      // free as its last touch.
      clear = has_waiters | starving;
    } else {
      // Go leaves starvation mode when the new owner is the last waiter, or did not itself
      // wait past the threshold.
      if (q.empty()) clear |= has_waiters | starving;
      if (detail::clock::now() - n->since <= starvation_threshold) clear |= starving;
    }
    // Relaxed: our critical section reaches the new owner through claim and unpark.
    if (clear != 0) state_.fetch_and(~clear, std::memory_order_relaxed);
  }
  if (n == nullptr) return false;
  n->w.unpark();  // `locked` stays set: the mutex is n's now
  return true;
}

}  // namespace goro
