// SPDX-License-Identifier: Apache-2.0
// Layer: time. May include: stack, time, platform.
// The timer heap; see timer_heap.hpp.
//
// Entry states: idle -> pending (push) -> firing (fire_due, under mu_) -> idle (after fire()),
// or pending -> idle (remove, detach_all), or firing -> pending (fire() re-armed it). An entry
// is in heap_ exactly when it is pending. remove() of a firing entry spins (yielding) until
// fire() returns, so the owner can free the entry safely. Entries fire in deadline order (ties
// in any order): fire_due takes them from the heap's front one by one.
#include "time/timer_heap.hpp"

#include <thread>
#include <utility>

namespace goro::detail {

bool timer_heap::push(timer_entry& e) {
  lock_guard lock(mu_);
  e.heap_index = heap_.size();
  heap_.push_back(&e);
  e.state.store(timer_entry::pending, std::memory_order_relaxed);  // under mu_, read under mu_
  sift_up(e.heap_index);
  const bool earliest = heap_.front() == &e;
  publish_next();
  return earliest;
}

bool timer_heap::remove(timer_entry& e) noexcept {
  for (;;) {
    {
      lock_guard lock(mu_);
      // Acquire: reading idle set by fire_due's release CAS (outside mu_) must order fire()'s
      // effects before our caller frees the entry.
      const std::uint8_t state = e.state.load(std::memory_order_acquire);
      if (state == timer_entry::pending) {
        erase_at(e.heap_index);
        e.state.store(timer_entry::idle, std::memory_order_relaxed);
        publish_next();
        return true;
      }
      if (state == timer_entry::idle) return false;
    }
    // Firing: wait until fire() returns (it may re-arm the entry, which the next round then
    // removes). Acquire pairs with the release after fire(): its effects are visible to us.
    while (e.state.load(std::memory_order_acquire) == timer_entry::firing) {
      std::this_thread::yield();
    }
    if (e.state.load(std::memory_order_acquire) == timer_entry::idle) return false;
  }
}

bool timer_heap::fire_due(clock::time_point now) {
  std::vector<timer_entry*> due;
  {
    lock_guard lock(mu_);
    while (!heap_.empty() && heap_.front()->when <= now) {
      timer_entry* e = heap_.front();
      erase_at(0);
      // Relaxed under mu_: remove() reads it under mu_, and spins on it with acquire only to
      // wait for the release store that follows fire().
      e->state.store(timer_entry::firing, std::memory_order_relaxed);
      due.push_back(e);
    }
    publish_next();
  }
  bool earlier = false;
  for (timer_entry* e : due) {
    const bool frees_itself = e->frees_itself;  // read first: fire() may delete e
    const bool rearm = e->fire(*e);
    if (frees_itself) continue;
    if (rearm) {
      // Queued again under the lock, so a remove() waiting out this fire finds it pending. A
      // worker may have gone to sleep on timer duty while this entry was out of the heap, until
      // a later deadline: if it is now the earliest, the caller must wake that worker, as
      // after a push (docs/scheduler.md, "Timers").
      lock_guard lock(mu_);
      e->heap_index = heap_.size();
      heap_.push_back(e);
      e->state.store(timer_entry::pending, std::memory_order_release);
      sift_up(e->heap_index);
      earlier |= heap_.front() == e;
      publish_next();
    } else {
      // Release: fire()'s effects happen-before remove() returning false.
      e->state.store(timer_entry::idle, std::memory_order_release);
    }
  }
  return earlier;
}

void timer_heap::detach_all() noexcept {
  lock_guard lock(mu_);
  for (timer_entry* e : heap_) {
    e->heap_index = timer_entry::not_queued;
    if (e->frees_itself) {
      e->discard(*e);
      continue;
    }
    e->state.store(timer_entry::idle, std::memory_order_release);
  }
  heap_.clear();
  publish_next();
}

void timer_heap::publish_next() noexcept {
  const clock::time_point next = heap_.empty() ? clock::time_point::max() : heap_.front()->when;
  next_.store(next.time_since_epoch().count(), std::memory_order_release);
}

void timer_heap::erase_at(std::size_t i) noexcept {
  heap_[i]->heap_index = timer_entry::not_queued;
  const std::size_t last = heap_.size() - 1;
  if (i != last) {
    heap_[i] = heap_[last];
    heap_[i]->heap_index = i;
  }
  heap_.pop_back();
  if (i < heap_.size()) {
    sift_up(i);
    sift_down(heap_[i]->heap_index);
  }
}

void timer_heap::sift_up(std::size_t i) noexcept {
  while (i > 0) {
    const std::size_t parent = (i - 1) / 2;
    if (heap_[parent]->when <= heap_[i]->when) break;
    std::swap(heap_[parent], heap_[i]);
    heap_[parent]->heap_index = parent;
    heap_[i]->heap_index = i;
    i = parent;
  }
}

void timer_heap::sift_down(std::size_t i) noexcept {
  const std::size_t n = heap_.size();
  for (;;) {
    std::size_t smallest = i;
    const std::size_t l = 2 * i + 1;
    const std::size_t r = l + 1;
    if (l < n && heap_[l]->when < heap_[smallest]->when) smallest = l;
    if (r < n && heap_[r]->when < heap_[smallest]->when) smallest = r;
    if (smallest == i) return;
    std::swap(heap_[smallest], heap_[i]);
    heap_[smallest]->heap_index = smallest;
    heap_[i]->heap_index = i;
    i = smallest;
  }
}

}  // namespace goro::detail
