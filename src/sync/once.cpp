// SPDX-License-Identifier: Apache-2.0
// Layer: sync. May include: chan, sync, park, sched, stack, time, platform.
// goro::once_flag's slow path: deciding who calls, parking the others, and passing the turn on
// when a call throws. docs/sync.md, "once".
//
// Invariants (under lock_): the queue is non-empty only while state_ is running; exactly one
// caller (the one whose begin() returned true, or the waiter abandon() granted) is making the
// call while state_ is running; state_ never leaves done.
//
// Memory ordering: state_ is written only under lock_, which orders every write and read made
// under it, so those are relaxed. The one lock-free reader, call_once's fast path, acts only on
// `done`, which finish() stores with release.
#include "goro/once.hpp"
#include "goro/detail/thread_safety.hpp"
#include "park/sync_queue.hpp"

namespace goro {

namespace {
// The claim finish() wakes the waiters with: the call is made, there is nothing left to do.
constexpr detail::claim_outcome call_made{1};
}  // namespace

bool once_flag::begin() noexcept {
  lock_.lock();
  const std::uint32_t s = state_.load(std::memory_order_relaxed);
  if (s != running) {
    // done: lock_ orders finish()'s writes before us. idle: our turn.
    if (s == idle) state_.store(running, std::memory_order_relaxed);
    lock_.unlock();
    return s == idle;
  }
  detail::sync_node node(detail::call_once_wait, this);
  detail::sync_queue(head_, tail_).push_back(&node);
  detail::park_queued(node.w, lock_, {});
  // finish() claims us with call_made, abandon() with granted (our turn to call).
  return node.w.winner() == detail::granted;
}

void once_flag::abandon() noexcept {
  detail::sync_node* next = nullptr;
  {
    detail::lock_guard guard(lock_);
    next = detail::sync_queue(head_, tail_).pop_claimed(detail::granted);
    if (next == nullptr) state_.store(idle, std::memory_order_relaxed);
  }
  if (next != nullptr) next->w.unpark();
}

void once_flag::finish() noexcept {
  detail::sync_node* first = nullptr;
  {
    detail::lock_guard guard(lock_);
    // Release pairs with call_once's acquire load: the call happens-before every fast-path
    // return. The waiters below are ordered by claim and unpark instead.
    state_.store(done, std::memory_order_release);
    first = detail::sync_queue(head_, tail_).pop_all_claimed(call_made).first;
  }
  detail::unpark_all(first);
}

}  // namespace goro
