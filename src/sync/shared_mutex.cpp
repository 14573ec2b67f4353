// SPDX-License-Identifier: Apache-2.0
// Layer: sync. May include: chan, sync, park, sched, stack, time, platform.
// goro::shared_mutex's slow paths: queueing readers and writers, and handing the mutex over.
// Every hand-over is a grant: the granter changes state_ on the waiter's behalf (a writer's
// writer bit, a reader's count) under lock_, claims the waiter and unparks it, so a woken waiter
// never competes. The policy is Go's RWMutex (sync/rwmutex.go); the mechanism is ours, so that
// a waiter can leave on a deadline or a stop request. docs/sync.md, "shared_mutex".
//
// Invariants (whenever lock_ is free):
//   - writers_waiting is set exactly when the writer queue is non-empty, and readers_waiting
//     exactly when the reader queue is; both change only under lock_.
//   - readers_waiting implies writer or writers_waiting: readers queue only behind a writer.
//   - writer and a non-zero reader count are never both set.
//   - writers_waiting implies writer or a non-zero reader count: the mutex is never free while
//     a writer waits. A queued writer is granted by whoever gives the mutex up: unlock(), or
//     the last unlock_shared, which keeps its count while it sees writers_waiting and drops it
//     only in the hand-over. A writer that leaves the queue at most lets the readers queued
//     behind it join the active ones (readers_behind_locked).
//   - Only a holder frees the mutex, and its last touch of the object is that step on state_:
//     a hand-over under lock_ to parked waiters (who cannot return before lock_ is released and
//     they are unparked), or, with nobody waiting, a CAS after lock_ is released (unlock_slow).
//   - The reader count cannot overflow into the flags: 2^29 readers would need 2^29 fibers or
//     threads, far beyond memory.
//
// Memory ordering: changes of the *_waiting flags alone are relaxed (they publish nothing, and
// lock_ orders the queues). Ownership passes either through state_ (acquire on taking, release
// on giving up, acq_rel where a granter takes it over for a waiter) or, to a parked waiter,
// through claim and unpark.
#include "goro/shared_mutex.hpp"
#include "goro/detail/check.hpp"
#include "goro/detail/thread_safety.hpp"
#include "park/sync_queue.hpp"

namespace goro {

// Under lock_: admits every queued reader at once, the caller's hold (`held`) passing to them in
// the same step on state_ (unless no reader was left to admit: then the caller keeps it).
// readers_waiting is clear after. Returns them linked through next (in queue order), to unpark
// once lock_ is released.
detail::sync_node* shared_mutex::admit_readers_locked(std::uint32_t held) noexcept {
  detail::sync_queue q(readers_head_, readers_tail_);
  const detail::claimed_batch<detail::sync_node> admitted = q.pop_all_claimed(detail::granted);
  const auto n = static_cast<std::uint32_t>(admitted.count);
  if (n == 0) held = 0;
  // acq_rel: acquire the state the previous owners released (their critical sections
  // happen-before the readers we admit), release it on to the unparks. A CAS: active readers
  // may leave meanwhile (when held is 0).
  std::uint32_t s = state_.load(std::memory_order_relaxed);
  while (!state_.compare_exchange_weak(s, (s & ~readers_waiting) - held + n,
                                       std::memory_order_acq_rel, std::memory_order_relaxed)) {
  }
  return admitted.first;
}

// Under lock_: gives the mutex to the first queued writer that has not given up, the caller's
// hold (`held`: writer, or the last reader's 1) passing to it in the same step on state_.
// Null, with writers_waiting cleared and the caller still holding, if every one had given up.
detail::sync_node* shared_mutex::grant_writer_locked(std::uint32_t held) noexcept {
  detail::sync_queue q(writers_head_, writers_tail_);
  detail::sync_node* w = q.pop_claimed(detail::granted);
  if (w == nullptr) {
    // Relaxed: the flag publishes nothing; lock_ orders the queue.
    state_.fetch_and(~writers_waiting, std::memory_order_relaxed);
    return nullptr;
  }
  const std::uint32_t clear = q.empty() ? writers_waiting : 0;
  // The caller holds the mutex, no reader can enter (writers_waiting) and no writer can barge
  // (state_ is non-zero): only lock_ holders change state_ now. acq_rel as above.
  std::uint32_t s = state_.load(std::memory_order_relaxed);
  while (!state_.compare_exchange_weak(s, ((s - held) | writer) & ~clear, std::memory_order_acq_rel,
                                       std::memory_order_relaxed)) {
  }
  w->next = nullptr;
  return w;
}

// Under lock_, after a writer gave up: with no writer holding or waiting any more, the readers
// queued behind it join the active ones. Returns them, to unpark once lock_ is released.
detail::sync_node* shared_mutex::readers_behind_locked() noexcept {
  const std::uint32_t s = state_.load(std::memory_order_relaxed);
  // A queued writer always has a holder to grant it (the mutex is never free while one waits),
  // so the writer that left had nobody to take over from.
  GORO_DCHECK((s & writers_waiting) == 0 || (s & (writer | readers)) != 0);
  if ((s & (writer | writers_waiting)) != 0 || (s & readers_waiting) == 0) return nullptr;
  return admit_readers_locked(0);
}

// A writer waits for state_ to be 0 and takes it with the writer bit; a reader waits for no
// writer, holding or queued, and adds itself to the count. Otherwise both queue alike, each on
// its own queue under its own flag, and are only ever granted the mutex, never woken to compete.
bool shared_mutex::acquire_slow(bool as_writer, const detail::wait_limit& limit) {
  const std::uint32_t blockers = as_writer ? ~0u : (writer | writers_waiting);
  const std::uint32_t take = as_writer ? writer : 1;
  const std::uint32_t waiting = as_writer ? writers_waiting : readers_waiting;
  lock_.lock();
  std::uint32_t s = state_.load(std::memory_order_relaxed);
  for (;;) {
    if ((s & blockers) == 0) {
      // Acquire pairs with the release of the unlock or unlock_shared that freed it.
      if (state_.compare_exchange_weak(s, s + take, std::memory_order_acquire,
                                       std::memory_order_relaxed)) {
        lock_.unlock();
        return true;
      }
      continue;
    }
    if (detail::limit_reached(limit)) {
      lock_.unlock();
      return false;
    }
    // Relaxed: the flag publishes nothing; lock_ orders the queue.
    if (state_.compare_exchange_weak(s, s | waiting, std::memory_order_relaxed)) break;
  }
  detail::sync_node node(as_writer ? detail::shared_mutex_lock : detail::shared_mutex_lock_shared,
                         this);
  (as_writer ? detail::sync_queue(writers_head_, writers_tail_)
             : detail::sync_queue(readers_head_, readers_tail_))
      .push_back(&node);
  detail::park_queued(node.w, lock_, limit);
  if (node.w.winner() == detail::granted) return true;  // unpark ordered the grant
  // Timed out or cancelled. A writer leaving may let the readers queued behind it in; a queued
  // reader blocks nobody, so its leaving grants nothing.
  detail::sync_node* wake = nullptr;
  {
    detail::lock_guard guard(lock_);
    detail::sync_queue q = as_writer ? detail::sync_queue(writers_head_, writers_tail_)
                                     : detail::sync_queue(readers_head_, readers_tail_);
    q.remove(&node);
    if (q.empty()) state_.fetch_and(~waiting, std::memory_order_relaxed);
    if (as_writer) wake = readers_behind_locked();
  }
  detail::unpark_all(wake);
  return false;
}

// An unlock's last touch of the mutex is the step on state_ that gives it up: either a
// hand-over under lock_ to parked waiters, who cannot return (and destroy it) before we unpark
// them once lock_ is released, or, with nobody waiting, a CAS outside lock_ that frees it. From
// then on another party may take it, free it and destroy it while this call is still returning
// (std::shared_mutex allows that); so no path frees it under lock_ and releases lock_ after.
void shared_mutex::unlock_slow() noexcept {
  for (;;) {
    // Relaxed: a guess at the bits; the freeing CAS checks it, and the hand-over reads state_
    // again under lock_ and publishes through claim and unpark.
    std::uint32_t s = state_.load(std::memory_order_relaxed);
    if ((s & writer) == 0) {
      detail::sync_fatal("goro::shared_mutex::unlock: unlock of unlocked shared_mutex");
    }
    if (s == writer) {
      // Nobody waits. Release pairs with the acquire of whoever takes the mutex next.
      if (state_.compare_exchange_weak(s, 0, std::memory_order_release,
                                       std::memory_order_relaxed)) {
        return;
      }
      continue;
    }
    detail::sync_node* wake = nullptr;
    {
      detail::lock_guard guard(lock_);
      // While we hold it, only lock_ holders change state_ (no reader or writer can enter).
      // Readers that queued while we held it go first, ahead of the next writer.
      if ((state_.load(std::memory_order_relaxed) & readers_waiting) != 0) {
        wake = admit_readers_locked(writer);
      }
      if (wake == nullptr && (state_.load(std::memory_order_relaxed) & writers_waiting) != 0) {
        wake = grant_writer_locked(writer);
      }
    }
    if (wake != nullptr) {
      detail::unpark_all(wake);
      return;
    }
    // Every waiter had given up and both flags are clear: the mutex is still ours to free.
  }
}

// The last reader with a writer waiting holds on to its count until it hands the mutex over
// (see unlock_shared): dropping it first would let a writer that gives up meanwhile find the
// mutex free, take it and destroy it while this call still had lock_ to take.
void shared_mutex::unlock_shared_slow() noexcept {
  for (;;) {
    // Relaxed: a guess, which the CAS checks; the hand-over reads state_ again under lock_.
    std::uint32_t s = state_.load(std::memory_order_relaxed);
    if ((s & readers) == 0) {
      detail::sync_fatal("goro::shared_mutex::unlock_shared: unlock of unlocked shared_mutex");
    }
    if ((s & (readers | writers_waiting)) != (writers_waiting | 1)) {
      // Release: our critical section happens-before the writer that acquires next.
      if (state_.compare_exchange_weak(s, s - 1, std::memory_order_release,
                                       std::memory_order_relaxed)) {
        return;
      }
      continue;
    }
    detail::sync_node* wake = nullptr;
    {
      detail::lock_guard guard(lock_);
      // Again under lock_: a writer that gave up meanwhile may have cleared writers_waiting
      // and let readers in. While it holds, nobody else changes our count (no reader can enter).
      s = state_.load(std::memory_order_relaxed);
      if ((s & (readers | writers_waiting)) == (writers_waiting | 1)) {
        wake = grant_writer_locked(1);
        // Every writer had given up: the readers queued behind them go instead.
        if (wake == nullptr && (state_.load(std::memory_order_relaxed) & readers_waiting) != 0) {
          wake = admit_readers_locked(1);
        }
      }
    }
    if (wake != nullptr) {
      detail::unpark_all(wake);
      return;
    }
    // Nobody to hand over to: drop our count above (a plain unlock now, unless a writer came).
  }
}

}  // namespace goro
