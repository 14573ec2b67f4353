// SPDX-License-Identifier: Apache-2.0
// Layer: sync. May include: chan, sync, park, sched, stack, time, platform.
// wait_group: a counter and a list of parked waiters. done() without waiters is one atomic
// add; the lock is taken only by wait() and by the add() that releases waiters.
//
// Invariants: the waiter count (low half of state_) changes only under lock_, and equals the
// length of waiters_ except while a wait() that found the counter at zero backs out.
#include "goro/wait_group.hpp"
#include "goro/detail/thread_safety.hpp"

#include <cstdint>
#include <stdexcept>
#include <utility>

#include "goro/detail/park.hpp"

namespace goro {

namespace detail {
struct wait_node {
  waiter w;
  wait_node* next = nullptr;
};
}  // namespace detail

namespace {
constexpr std::int32_t counter_of(std::uint64_t state) {
  return static_cast<std::int32_t>(state >> 32);
}
}  // namespace

void wait_group::add(std::int64_t delta) {
  // The counter is 32 bits wide (Go's is too); a delta outside that range is misuse.
  if (delta < -static_cast<std::int64_t>(INT32_MAX) || delta > INT32_MAX) {
    throw std::logic_error(delta < 0 ? "goro::wait_group::add: negative wait_group counter"
                                     : "goro::wait_group::add: wait_group counter overflow");
  }
  const std::uint64_t d = static_cast<std::uint64_t>(delta) << 32;
  const std::uint64_t s = state_.fetch_add(d, std::memory_order_acq_rel) + d;
  const std::int64_t counter = counter_of(s);
  if (counter < 0 || counter - delta != counter_of(s - d)) {
    state_.fetch_sub(d, std::memory_order_acq_rel);
    throw std::logic_error("goro::wait_group::add: negative wait_group counter");
  }
  if (counter > 0 || static_cast<std::uint32_t>(s) == 0) return;
  // The counter reached zero with waiters registered: release them all. Claims are made under
  // the lock: a waiter whose deadline or stop token won looks for its node under the lock
  // before returning, so no node we touch here can have gone away. Claimed waiters stay parked
  // until our unpark, after the lock is released.
  detail::wait_node* claimed = nullptr;
  {
    detail::lock_guard lock(lock_);
    const std::uint64_t now = state_.load(std::memory_order_acquire);
    if (counter_of(now) != 0) return;  // re-armed by a concurrent add(); its waiters wait on
    detail::wait_node* list = waiters_;
    waiters_ = nullptr;
    state_.fetch_sub(static_cast<std::uint32_t>(now), std::memory_order_acq_rel);
    while (list != nullptr) {
      detail::wait_node* next = list->next;
      if (list->w.claim(0)) {
        list->next = claimed;
        claimed = list;
      }
      list = next;
    }
  }
  while (claimed != nullptr) {
    detail::wait_node* next = claimed->next;  // read first: the waiter may return at once
    claimed->w.unpark();
    claimed = next;
  }
}

void wait_group::wait() {
  if (counter_of(state_.load(std::memory_order_acquire)) == 0) return;
  detail::wait_node node;
  {
    detail::lock_guard lock(lock_);
    const std::uint64_t s = state_.fetch_add(1, std::memory_order_acq_rel);
    if (counter_of(s) == 0) {
      state_.fetch_sub(1, std::memory_order_acq_rel);
      return;
    }
    node.next = waiters_;
    waiters_ = &node;
  }
  node.w.park();
}

bool wait_group::wait(std::stop_token stop) {
  return wait_limited(detail::clock::time_point::max(), std::move(stop));
}

bool wait_group::wait_until(std::chrono::steady_clock::time_point deadline) {
  return wait_limited(deadline, {});
}

bool wait_group::wait_limited(std::chrono::steady_clock::time_point deadline,
                              std::stop_token stop) {
  if (counter_of(state_.load(std::memory_order_acquire)) == 0) return true;
  detail::wait_node node;
  {
    detail::lock_guard lock(lock_);
    const std::uint64_t s = state_.fetch_add(1, std::memory_order_acq_rel);
    if (counter_of(s) == 0) {
      state_.fetch_sub(1, std::memory_order_acq_rel);
      return true;
    }
    node.next = waiters_;
    waiters_ = &node;
  }
  detail::park_limited(node.w, detail::wait_limit{deadline, std::move(stop)});
  if (node.w.winner() == 0) return true;
  // The deadline or stop token won: unregister, unless the releasing add() already took the
  // whole list (and our count) away.
  detail::lock_guard lock(lock_);
  for (detail::wait_node** p = &waiters_; *p != nullptr; p = &(*p)->next) {
    if (*p == &node) {
      *p = node.next;
      state_.fetch_sub(1, std::memory_order_acq_rel);
      break;
    }
  }
  return false;
}

std::int64_t wait_group::count() const noexcept {
  return counter_of(state_.load(std::memory_order_acquire));
}

}  // namespace goro
