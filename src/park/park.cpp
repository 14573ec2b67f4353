// SPDX-License-Identifier: Apache-2.0
// The parking mechanism (waiter, see goro/detail/park.hpp) and the futex calls under it.
//
// A waiter's state_ goes running -> notified (unpark first) or running -> parked -> notified.
// For a fiber, whichever of unpark() and the park's arrival hook comes second makes the fiber
// runnable (scheduler::finish_park); the exchange decides who is second. A thread sleeps on
// state_ as a futex word until it reads notified.
#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <climits>
#include <ctime>
#include <stop_token>

#include "platform/futex.hpp"
#include "goro/detail/park.hpp"
#include "sched/scheduler.hpp"

namespace goro::detail {

void futex_wait(std::atomic<std::uint32_t>& word, std::uint32_t expected) noexcept {
  syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(&word), FUTEX_WAIT_PRIVATE, expected,
          nullptr, nullptr, 0);
}

void futex_wait_until(std::atomic<std::uint32_t>& word, std::uint32_t expected,
                      clock::time_point deadline) noexcept {
  const auto left = deadline - clock::now();
  if (left <= clock::duration::zero()) return;
  const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(left).count();
  timespec ts{};
  ts.tv_sec = static_cast<time_t>(ns / 1'000'000'000);
  ts.tv_nsec = static_cast<long>(ns % 1'000'000'000);
  syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(&word), FUTEX_WAIT_PRIVATE, expected, &ts,
          nullptr, 0);
}

void futex_wake(std::atomic<std::uint32_t>& word, int count) noexcept {
  syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(&word), FUTEX_WAKE_PRIVATE, count, nullptr,
          nullptr, 0);
}

waiter::waiter() noexcept {
  worker* w = worker::current();
  fiber_ = w != nullptr ? w->current_fiber() : nullptr;
}

void waiter::park() noexcept {
  if (fiber_ != nullptr) {
    scheduler::park(*this);
    return;
  }
  while (state_.load(std::memory_order_acquire) != notified) futex_wait(state_, running);
}

void waiter::park_gated(void (*unlock)(void*), void* arg) noexcept {
  if (fiber_ != nullptr) {
    gated_ = true;
    scheduler::park_gated(*this, unlock, arg);
    return;
  }
  unlock(arg);
  park();
}

void waiter::unpark() noexcept {
  fiber* f = fiber_;  // read first: once notified, a thread's waiter may be gone
  if (f == nullptr) {
    state_.store(notified, std::memory_order_release);
    futex_wake(state_);  // harmless if the waiter has already returned
    return;
  }
  // Gated: the fiber was saved before its lock, which we hold, was released.
  if (gated_ || state_.exchange(notified, std::memory_order_acq_rel) == parked) {
    f->sched->ready(f);
  }
}

namespace {

struct park_timer : timer_entry {
  waiter* w;
  int index;
};

bool park_timer_fired(timer_entry& e) noexcept {
  auto& t = static_cast<park_timer&>(e);
  if (t.w->claim(t.index)) t.w->unpark();
  return false;
}

}  // namespace

void waiter::park_until(clock::time_point deadline, int timeout_index) noexcept {
  if (fiber_ == nullptr) {
    while (state_.load(std::memory_order_acquire) != notified) {
      if (clock::now() >= deadline) {
        if (claim(timeout_index)) return;
        park();  // the winner owes us an unpark
        return;
      }
      futex_wait_until(state_, running, deadline);
    }
    return;
  }
  if (deadline <= clock::now()) {
    if (claim(timeout_index)) return;
    park();
    return;
  }
  park_timer t;
  t.fire = park_timer_fired;
  t.when = deadline;
  t.w = this;
  t.index = timeout_index;
  fiber_->sched->add_timer(t);
  park();
  fiber_->sched->remove_timer(t);
}

void park_limited(waiter& w, const wait_limit& limit) noexcept {
  if (!limit.stop.stop_possible()) {
    if (limit.deadline == clock::time_point::max()) {
      w.park();
    } else {
      w.park_until(limit.deadline, claim_timed_out);
    }
    return;
  }
  // Runs at once if stop was already requested; its destructor waits out a concurrent run.
  const std::stop_callback on_stop(limit.stop, [&w]() noexcept {
    if (w.claim(claim_cancelled)) w.unpark();
  });
  if (limit.deadline == clock::time_point::max()) {
    w.park();
  } else {
    w.park_until(limit.deadline, claim_timed_out);
  }
}

}  // namespace goro::detail
