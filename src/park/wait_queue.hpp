// SPDX-License-Identifier: Apache-2.0
// Layer: park. May include: park, sched, stack, time, platform.
// goro's one wait-queue family (Go's sudog and waitq): the intrusive FIFO under every queue of
// blocked parties (channel senders and receivers, the sync primitives' and wait_group's
// waiters), and the two halves of the protocol every user of one follows: a completer's
// claim-and-unlink (pop_claimed: pop nodes from the front until one whose waiter it claims,
// then unpark it once its lock is released), and a waiter's park-and-give-up (park_queued, and
// if the limit won, remove: unlink its own node again, in O(1)). Described in docs/sync.md,
// "Waiting", and docs/channels.md, "Waiting".
//
// A node lives on the blocked party's stack. A Node type derives from wait_link<Node> and has
//   bool claim(Args...) noexcept   tries its waiter's claim (a completer's pop_claimed calls it)
//   void unpark() noexcept         unparks its waiter (after a successful claim)
// The queue is not thread-safe: its owner's lock guards it, and `queued` with it.
#pragma once

#include <cstddef>
#include <cstdint>

#include "goro/detail/thread_safety.hpp"
#include "park/park.hpp"

namespace goro::detail {

// The links of one node; linked in at most one queue, and `queued` says whether it is.
template <class Node>
struct wait_link {
  Node* prev = nullptr;
  Node* next = nullptr;
  bool queued = false;  // under the lock of the queue's owner
};

// Nodes claimed together: unlinked, chained through `next` in queue order, to unpark with
// unpark_all once the lock is released.
template <class Node>
struct claimed_batch {
  Node* first = nullptr;
  std::size_t count = 0;
};

// A view over the head and tail pointers its owner keeps (the sync primitives keep them in
// their public classes as plain pointers, so that the node types stay out of those headers).
template <class Node>
class wait_queue {
 public:
  wait_queue(Node*& head, Node*& tail) noexcept : head_(head), tail_(tail) {}

  bool empty() const noexcept { return head_ == nullptr; }

  void push_back(Node* n) noexcept {
    n->next = nullptr;
    n->prev = tail_;
    (tail_ != nullptr ? tail_->next : head_) = n;
    tail_ = n;
    n->queued = true;
  }

  void push_front(Node* n) noexcept {
    n->prev = nullptr;
    n->next = head_;
    (head_ != nullptr ? head_->prev : tail_) = n;
    head_ = n;
    n->queued = true;
  }

  // Unlinks n if it is linked, in O(1); false (a no-op) if a completer already took it out.
  bool remove(Node* n) noexcept {
    if (!n->queued) return false;
    (n->prev != nullptr ? n->prev->next : head_) = n->next;
    (n->next != nullptr ? n->next->prev : tail_) = n->prev;
    n->prev = n->next = nullptr;
    n->queued = false;
    return true;
  }

  // The completer's loop: unlinks nodes from the front until one that n->claim(args...)
  // claims, and returns it (null if none is left). The stale ones dropped on the way were
  // claimed by someone else (their deadline, stop request, or another case of their select);
  // their owners find them unlinked.
  template <class... Args>
  Node* pop_claimed(Args... args) noexcept {
    while (Node* n = head_) {
      remove(n);
      if (n->claim(args...)) return n;
    }
    return nullptr;
  }

  // pop_claimed(args...) up to `max` times, chaining what it returns.
  template <class... Args>
  claimed_batch<Node> pop_claimed_batch(std::size_t max, Args... args) noexcept {
    claimed_batch<Node> batch;
    Node* last = nullptr;
    while (batch.count < max) {
      Node* n = pop_claimed(args...);
      if (n == nullptr) break;
      n->next = nullptr;
      (last != nullptr ? last->next : batch.first) = n;
      last = n;
      ++batch.count;
    }
    return batch;
  }
  // pop_claimed(args...) until the queue is empty.
  template <class... Args>
  claimed_batch<Node> pop_all_claimed(Args... args) noexcept {
    return pop_claimed_batch(SIZE_MAX, args...);
  }

 private:
  Node*& head_;
  Node*& tail_;
};

// Unparks every node of a list linked through `next` (nodes already claimed and unlinked).
// Call with no lock held: a node may be gone as soon as its waiter is unparked.
template <class Node>
void unpark_all(Node* list) noexcept {
  while (list != nullptr) {
    Node* next = list->next;  // read first: the woken party may return at once
    list->unpark();
    list = next;
  }
}

// The waiter's side: parks `w`, whose node the caller has just queued under `lock` (held),
// releasing the lock; returns once a completer claims and unparks it, or the limit claims it.
// Without a limit nothing but a completer, which must hold `lock` to reach the node, can claim
// it, so the fiber parks gated: the lock is released only once the fiber is saved, and the
// unpark needs no handshake (waiter::park_gated). Outside the analysis: there the lock is
// released by the park's arrival hook (unlock_after_park), on another stack.
template <class Lock>
void unlock_after_park(void* lock) noexcept GORO_NO_THREAD_SAFETY_ANALYSIS {
  static_cast<Lock*>(lock)->unlock();
}
template <class Lock>
void park_queued(waiter& w, Lock& lock, const wait_limit& limit) noexcept
    GORO_RELEASE(lock) GORO_NO_THREAD_SAFETY_ANALYSIS {
  if (limit.unlimited()) {
    w.park_gated(unlock_after_park<Lock>, &lock);
    return;
  }
  lock.unlock();
  park_limited(w, limit);
}

// True if a blocking call with this limit must give up rather than (re)queue now.
inline bool limit_reached(const wait_limit& limit) noexcept {
  if (limit.stop.stop_requested()) return true;
  return limit.deadline != clock::time_point::max() && clock::now() >= limit.deadline;
}

}  // namespace goro::detail
