// SPDX-License-Identifier: Apache-2.0
// Layer: park. May include: park, sched, stack, time, platform.
// The wait queue under goro's sync primitives (mutex, shared_mutex, condition_variable, once,
// counting_semaphore): an intrusive FIFO of nodes, each one blocked fiber or thread, living on
// the blocked party's stack; plus the fatal-error report those primitives share. The protocol
// (queue under the primitive's spinlock, claim before unpark, unlink on timeout or cancel) is
// described in docs/sync.md, "Waiting".
#pragma once

#include <cstddef>
#include <cstdint>

#include "goro/detail/park.hpp"
#include "goro/detail/spinlock.hpp"
#include "goro/detail/thread_safety.hpp"
#include "goro/detail/wait_list.hpp"
#include "platform/fatal.hpp"

namespace goro::detail {

// Claim indices the sync primitives use (timed_out and cancelled come from park.hpp).
inline constexpr int granted = 0;  // the waker completed the operation for the waiter
inline constexpr int woken = 1;    // mutex, normal mode: the waiter must compete for the lock

// One blocking call of one fiber or thread. Linked in at most one queue, and only while the
// call is blocked; a waker that wins w.claim() unlinks it before unparking it.
struct sync_node {
  waiter w;
  sync_node* prev = nullptr;
  sync_node* next = nullptr;
  bool queued = false;        // under the lock of the primitive it is queued on
  clock::time_point since{};  // mutex: when this lock() call first queued
};

// A view over a primitive's head and tail pointers (which the public header holds as plain
// pointers, so that sync_node stays out of it). Not thread-safe: the primitive's lock guards it.
class sync_queue : public wait_list<sync_node> {
 public:
  using wait_list::wait_list;

  // Unlinks nodes from the front until one whose waiter this call claims with `index`, and
  // returns it (null if none is left). The stale ones dropped on the way were claimed by their
  // own deadline or stop request; their owners find them unlinked and return.
  sync_node* pop_claimed(int index) noexcept {
    while (sync_node* n = front()) {
      remove(n);
      if (n->w.claim(index)) return n;
    }
    return nullptr;
  }

  // Waiters claimed together: unlinked, chained through `next` in queue order, to unpark with
  // unpark_all once the lock is released.
  struct claimed_batch {
    sync_node* first = nullptr;
    std::size_t count = 0;
  };

  // pop_claimed(index) up to `max` times, chaining what it returns.
  claimed_batch pop_claimed_batch(int index, std::size_t max = SIZE_MAX) noexcept {
    claimed_batch batch;
    sync_node* last = nullptr;
    while (batch.count < max) {
      sync_node* n = pop_claimed(index);
      if (n == nullptr) break;
      n->next = nullptr;
      (last != nullptr ? last->next : batch.first) = n;
      last = n;
      ++batch.count;
    }
    return batch;
  }
};

// Unparks every node of a list linked through `next` (nodes already claimed and unlinked).
// Call with no lock held: a node may be gone as soon as its waiter is unparked.
inline void unpark_all(sync_node* list) noexcept {
  while (list != nullptr) {
    sync_node* next = list->next;  // read first: the woken party may return at once
    list->w.unpark();
    list = next;
  }
}

// The arrival hook of park_queued's gated park: releases the primitive's lock. Outside the
// analysis: the lock was taken by another function, on another stack.
inline void unlock_after_park(void* lock) noexcept GORO_NO_THREAD_SAFETY_ANALYSIS {
  static_cast<spinlock*>(lock)->unlock();
}

// Parks a node the caller has just queued under `lock` (held): releases the lock and waits
// until a waker claims and unparks the node, or until the limit claims it (then the caller
// must unlink the node). Without a limit nothing but a waker, which must hold `lock` to reach
// the node, can claim it, so the fiber parks gated: the lock is released only once the fiber is
// saved, and the unpark needs no handshake (waiter::park_gated). Outside the analysis: there
// the lock is released by the park's arrival hook, on another stack.
inline void park_queued(sync_node& node, spinlock& lock, const wait_limit& limit) noexcept
    GORO_RELEASE(lock) GORO_NO_THREAD_SAFETY_ANALYSIS {
  if (limit.unlimited()) {
    node.w.park_gated(unlock_after_park, &lock);
    return;
  }
  lock.unlock();
  park_limited(node.w, limit);
}

// True if a blocking call with this limit must give up rather than (re)queue now.
inline bool limit_reached(const wait_limit& limit) noexcept {
  if (limit.stop.stop_requested()) return true;
  return limit.deadline != clock::time_point::max() && clock::now() >= limit.deadline;
}

// A misuse the program cannot recover from (Go's "fatal error: sync: unlock of unlocked
// mutex"): prints "goro: fatal error: <what>" and aborts.
[[noreturn]] inline void sync_fatal(const char* what) noexcept { fatal("%s", what); }

}  // namespace goro::detail
