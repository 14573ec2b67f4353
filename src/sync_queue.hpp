// SPDX-License-Identifier: Apache-2.0
// The wait queue under goro's sync primitives (mutex, shared_mutex, condition_variable, once,
// counting_semaphore): an intrusive FIFO of nodes, each one blocked fiber or thread, living on
// the blocked party's stack; plus the fatal-error report those primitives share. The protocol
// (queue under the primitive's spinlock, claim before unpark, unlink on timeout or cancel) is
// described in docs/sync.md, "Waiting".
#pragma once

#include <cstdio>
#include <cstdlib>

#include "goro/detail/park.hpp"
#include "goro/detail/spinlock.hpp"

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
  bool queued = false;        // GUARDED_BY(the primitive's lock)
  clock::time_point since{};  // mutex: when this lock() call first queued
};

// A view over a primitive's head and tail pointers (which the public header holds as plain
// pointers, so that sync_node stays out of it). Not thread-safe: the primitive's lock guards it.
class sync_queue {
 public:
  sync_queue(sync_node*& head, sync_node*& tail) noexcept : head_(head), tail_(tail) {}

  bool empty() const noexcept { return head_ == nullptr; }

  void push_back(sync_node* n) noexcept {
    n->next = nullptr;
    n->prev = tail_;
    if (tail_ != nullptr) {
      tail_->next = n;
    } else {
      head_ = n;
    }
    tail_ = n;
    n->queued = true;
  }

  void push_front(sync_node* n) noexcept {
    n->prev = nullptr;
    n->next = head_;
    if (head_ != nullptr) {
      head_->prev = n;
    } else {
      tail_ = n;
    }
    head_ = n;
    n->queued = true;
  }

  // Unlinks n if it is linked; a no-op if a waker already took it out.
  void remove(sync_node* n) noexcept {
    if (!n->queued) return;
    if (n->prev != nullptr) {
      n->prev->next = n->next;
    } else {
      head_ = n->next;
    }
    if (n->next != nullptr) {
      n->next->prev = n->prev;
    } else {
      tail_ = n->prev;
    }
    n->prev = n->next = nullptr;
    n->queued = false;
  }

  // Unlinks nodes from the front until one whose waiter this call claims with `index`, and
  // returns it (null if none is left). The stale ones dropped on the way were claimed by their
  // own deadline or stop request; their owners find them unlinked and return.
  sync_node* pop_claimed(int index) noexcept {
    while (sync_node* n = head_) {
      remove(n);
      if (n->w.claim(index)) return n;
    }
    return nullptr;
  }

 private:
  sync_node*& head_;
  sync_node*& tail_;
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

// Parks a node the caller has just queued under `lock` (held): releases the lock and waits
// until a waker claims and unparks the node, or until the limit claims it (then the caller
// must unlink the node). Without a limit nothing but a waker, which must hold `lock` to reach
// the node, can claim it, so the fiber parks gated: the lock is released only once the fiber is
// saved, and the unpark needs no handshake (waiter::park_gated).
inline void park_queued(sync_node& node, spinlock& lock, const wait_limit& limit) noexcept {
  if (limit.unlimited()) {
    node.w.park_gated([](void* l) noexcept { static_cast<spinlock*>(l)->unlock(); }, &lock);
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
[[noreturn]] inline void sync_fatal(const char* what) noexcept {
  std::fprintf(stderr, "goro: fatal error: %s\n", what);
  std::fflush(stderr);
  std::abort();
}

}  // namespace goro::detail
