// SPDX-License-Identifier: Apache-2.0
// Layer: sched. May include: sched, stack, time, platform.
// The census (census.hpp): registration of schedulers and blocked plain threads.
#include "sched/census.hpp"

#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <new>

#include "sched/scheduler.hpp"
#include "sched/worker.hpp"

namespace goro::detail {

census& census::get() noexcept {
  // Never destroyed (threads block during exit), and made without an allocation that could fail.
  alignas(census) static unsigned char storage[sizeof(census)];
  static census* const instance = ::new (static_cast<void*>(storage)) census;
  return *instance;
}

void census::add(scheduler* s) {
  std::lock_guard lock(mu_);
  schedulers_.push_back(s);
  ++epoch_;
}

void census::remove(scheduler* s) noexcept {
  std::lock_guard lock(mu_);
  schedulers_.erase(std::remove(schedulers_.begin(), schedulers_.end(), s), schedulers_.end());
  ++epoch_;
}

void census::thread_blocked(blocked_thread& t) noexcept {
  t.tid = static_cast<long>(::syscall(SYS_gettid));
  t.since = coarse_clock_ms.load(std::memory_order_relaxed);
  std::lock_guard lock(mu_);
  t.prev = nullptr;
  t.next = blocked_;
  if (blocked_ != nullptr) blocked_->prev = &t;
  blocked_ = &t;
  ++epoch_;
}

void census::thread_unblocked(blocked_thread& t) noexcept {
  std::lock_guard lock(mu_);
  (t.prev != nullptr ? t.prev->next : blocked_) = t.next;
  if (t.next != nullptr) t.next->prev = t.prev;
  ++epoch_;
}

// ---- what the census reads of a scheduler ------------------------------------------------

// Every read is seq_cst, so that the reads of one look are ordered with the stores that end a
// sleep or queue work; the detector's second look (monitor.cpp) is what makes them a proof.
bool scheduler::quiescent(std::vector<std::uint64_t>& sleeps) const noexcept {
  if (stopping_.load(std::memory_order_seq_cst)) return false;
  if (external_wakers_.load(std::memory_order_seq_cst) != 0) return false;
  if (timers_.next_deadline() != clock::time_point::max()) return false;
  if (const io_poller* p = poller(); p != nullptr && p->has_waiters()) return false;
  for (const auto& w : workers_) {
    const std::uint64_t seq = w->sleep_seq_.load(std::memory_order_seq_cst);
    if (seq % 2 == 0) return false;  // awake, or asleep with the timer duty
    if (w->idle_slot_.wake_word.load(std::memory_order_seq_cst) != 0) return false;
    sleeps.push_back(seq);
  }
  return !any_work();
}

void scheduler::for_each_fiber(const std::function<void(const fiber&)>& visit) {
  stacks_.for_each_stack([this, &visit](const stack_region& stack) {
    const auto* f = reinterpret_cast<const fiber*>(record_address(stack));
    // A slot never used holds zeros; one whose last fiber finished says so.
    if (f->sched != this || f->stack.low != stack.low) return;
    if (f->state.load(std::memory_order_relaxed) == fiber_state::finished) return;
    visit(*f);
  });
}

}  // namespace goro::detail
