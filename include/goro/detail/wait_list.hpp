// SPDX-License-Identifier: Apache-2.0
// The intrusive FIFO under every goro wait queue (channel senders and receivers, the sync
// primitives' waiters): nodes live on the blocked parties' stacks and carry prev, next and a
// `queued` flag. A view over a head and a tail pointer kept by the owner; not thread-safe: the
// owner's lock guards it.
#pragma once

namespace goro::detail {

template <class Node>
class wait_list {
 public:
  wait_list(Node*& head, Node*& tail) noexcept : head_(head), tail_(tail) {}

  bool empty() const noexcept { return head_ == nullptr; }
  Node* front() const noexcept { return head_; }

  void push_back(Node* n) noexcept {
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

  void push_front(Node* n) noexcept {
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
  void remove(Node* n) noexcept {
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

 private:
  Node*& head_;
  Node*& tail_;
};

}  // namespace goro::detail
