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
//   - A queued writer is granted by whoever brings the mutex to "no writer, no readers": the
//     last unlock_shared (it sees writers_waiting), unlock(), or a leaving writer (grant_locked).
//   - The reader count cannot overflow into the flags: 2^29 readers would need 2^29 fibers or
//     threads, far beyond memory.
//
// Memory ordering: changes of the *_waiting flags alone are relaxed (they publish nothing, and
// lock_ orders the queues). Ownership passes either through state_ (acquire on taking, release
// on giving up, acq_rel where a granter takes it over for a waiter) or, to a parked waiter,
// through claim and unpark.
#include "goro/shared_mutex.hpp"
#include "goro/detail/thread_safety.hpp"
#include "park/sync_queue.hpp"

namespace goro {

// Under lock_: admits every queued reader at once, clearing `clear` from state_ in the same
// step (unless no reader was left to admit). Returns them linked through next (in queue
// order), to unpark once lock_ is released.
detail::sync_node* shared_mutex::admit_readers_locked(std::uint32_t clear) noexcept {
  detail::sync_queue q(readers_head_, readers_tail_);
  const detail::claimed_batch<detail::sync_node> admitted = q.pop_all_claimed(detail::granted);
  const auto n = static_cast<std::uint32_t>(admitted.count);
  // The queue is empty now. If every reader had given up, `clear` stays.
  if (n == 0) clear = 0;
  // acq_rel: acquire the state the previous owners released (their critical sections
  // happen-before the readers we admit), release it on to the unparks.
  std::uint32_t s = state_.load(std::memory_order_relaxed);
  while (!state_.compare_exchange_weak(s, ((s & ~(clear | readers_waiting)) + n),
                                       std::memory_order_acq_rel, std::memory_order_relaxed)) {
  }
  return admitted.first;
}

// Under lock_: with no writer holding, gives the mutex to whoever may have it now. With no
// active reader, the first queued writer; with no writer left waiting, every queued reader.
// Returns the waiters to unpark, linked through next.
detail::sync_node* shared_mutex::grant_locked() noexcept {
  std::uint32_t s = state_.load(std::memory_order_relaxed);
  if ((s & writer) != 0) return nullptr;  // its unlock() grants
  if ((s & writers_waiting) != 0) {
    if ((s & readers) != 0) return nullptr;  // the last reader out grants
    detail::sync_queue q(writers_head_, writers_tail_);
    if (detail::sync_node* w = q.pop_claimed(detail::granted)) {
      const std::uint32_t clear = q.empty() ? writers_waiting : 0;
      // No reader is active and none can enter (writers_waiting), and no writer can barge
      // (state_ is non-zero): only lock_ holders change state_ now. acq_rel as above.
      while (!state_.compare_exchange_weak(s, (s | writer) & ~clear, std::memory_order_acq_rel,
                                           std::memory_order_relaxed)) {
      }
      w->next = nullptr;
      return w;
    }
    // Every queued writer gave up: readers behind them may go.
    s = state_.fetch_and(~writers_waiting, std::memory_order_relaxed) & ~writers_waiting;
  }
  if ((s & readers_waiting) != 0) return admit_readers_locked(0);
  return nullptr;
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
    if (as_writer) wake = grant_locked();
  }
  detail::unpark_all(wake);
  return false;
}

void shared_mutex::unlock_slow() noexcept {
  detail::sync_node* wake = nullptr;
  {
    detail::lock_guard guard(lock_);
    std::uint32_t s = state_.load(std::memory_order_relaxed);
    if ((s & writer) == 0) {
      detail::sync_fatal("goro::shared_mutex::unlock: unlock of unlocked shared_mutex");
    }
    // While we hold it, only lock_ holders change state_ (no reader or writer can enter).
    // Readers that queued while we held it go first, ahead of the next writer.
    if ((s & readers_waiting) != 0) wake = admit_readers_locked(writer);
    if (wake == nullptr) {
      // No reader was waiting (or all gave up): the next writer, if any, gets it directly.
      detail::sync_queue q(writers_head_, writers_tail_);
      wake = q.pop_claimed(detail::granted);
      s = state_.load(std::memory_order_relaxed);
      if (wake != nullptr) {
        wake->next = nullptr;
        if (q.empty()) state_.fetch_and(~writers_waiting, std::memory_order_relaxed);
      } else {
        // Release pairs with the acquire of whoever takes the mutex next.
        state_.fetch_and(~(writer | writers_waiting | readers_waiting), std::memory_order_release);
      }
    }
  }
  detail::unpark_all(wake);
}

void shared_mutex::unlock_shared_slow(std::uint32_t before) noexcept {
  if ((before & readers) == 0) {
    detail::sync_fatal("goro::shared_mutex::unlock_shared: unlock of unlocked shared_mutex");
  }
  // We were the last reader and a writer waits: grant it.
  detail::sync_node* wake = nullptr;
  {
    detail::lock_guard guard(lock_);
    wake = grant_locked();
  }
  detail::unpark_all(wake);
}

}  // namespace goro
