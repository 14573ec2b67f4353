// SPDX-License-Identifier: Apache-2.0
// Layer: park. May include: park, sched, stack, time, platform.
// The parking mechanism: waiter (park.hpp), on a worker's switch or a futex.
//
// A waiter's state_ goes running -> notified (unpark first) or running -> parked -> notified.
// For a fiber, whichever of unpark() and the park's arrival hook comes second makes the fiber
// runnable (finish_park); the exchange decides who is second. A thread sleeps on
// state_ as a futex word until it reads notified.
#include <stop_token>

#include "park/park.hpp"
#include "platform/futex.hpp"
#include "sched/census.hpp"
#include "sched/worker.hpp"

namespace goro::detail {

// If unpark() came first, it left the fiber to us to requeue; otherwise, from the exchange on,
// the fiber is the waker's to make runnable.
void waiter::finish_park(void* self) noexcept {
  auto* w = static_cast<waiter*>(self);
  fiber* f = w->fiber_;
  if (w->state_.exchange(parked, std::memory_order_acq_rel) == notified) {
    f->transition(fiber_state::parked, fiber_state::runnable);
    worker* here = worker::current();
    here->count(sched_event::unparks);
    here->make_next(f);
  }
}

inline void waiter::unpark_fiber(fiber* f) noexcept {
  // Gated: the fiber was saved before its lock, which we hold, was released.
  if (gated_ || state_.exchange(notified, std::memory_order_acq_rel) == parked) {
    f->sched->ready(f);
  }
}

void waiter::sleep_until_notified() noexcept {
  if (state_.load(std::memory_order_acquire) == notified) return;
  const blocked_scope blocked(why_, object_, &state_, running);
  while (state_.load(std::memory_order_acquire) != notified) futex_wait(state_, running);
}

void waiter::park() noexcept {
  if (fiber_ != nullptr) {
    worker::current()->switch_away(finish_park, this);
    return;
  }
  sleep_until_notified();
}

void waiter::park_gated_thread(void (*unlock)(void*), void* arg) noexcept {
  unlock(arg);
  sleep_until_notified();
}

void waiter::unpark() noexcept {
  fiber* f = fiber_;  // read first: once notified, a thread's waiter may be gone
  if (f == nullptr) {
    state_.store(notified, std::memory_order_release);
    futex_wake(state_);  // harmless if the waiter has already returned
    return;
  }
  // Relaxed: see worker::switched. A tail call, so that the untraced path needs no frame
  // (a call here cost 9 instructions per unpark, traced or not).
  if (trace_on.load(std::memory_order_relaxed)) [[unlikely]] {
    unpark_traced(f);
    return;
  }
  unpark_fiber(f);
}

void waiter::unpark_traced(fiber* f) noexcept {
  trace_wake(f->id);  // before the fiber may run and finish
  unpark_fiber(f);
}

namespace {

struct park_timer : timer_entry {
  waiter* w;
  claim_outcome on_timeout;
};

bool park_timer_fired(timer_entry& e) noexcept {
  auto& t = static_cast<park_timer&>(e);
  if (t.w->claim(t.on_timeout)) t.w->unpark();
  return false;
}

}  // namespace

void waiter::park_until(clock::time_point deadline, claim_outcome on_timeout) noexcept {
  if (fiber_ == nullptr) {
    while (state_.load(std::memory_order_acquire) != notified) {
      if (clock::now() >= deadline) {
        if (claim(on_timeout)) return;
        park();  // the winner owes us an unpark
        return;
      }
      futex_wait_until(state_, running, deadline);
    }
    return;
  }
  if (deadline <= clock::now()) {
    if (claim(on_timeout)) return;
    park();
    return;
  }
  park_timer t;
  t.fire = park_timer_fired;
  t.when = deadline;
  t.w = this;
  t.on_timeout = on_timeout;
  fiber_->sched->add_timer(t);
  park();
  fiber_->sched->remove_timer(t);
}

void park_limited(waiter& w, const wait_limit& limit) noexcept {
  const auto park_until_deadline = [&w, &limit] {
    if (limit.deadline == clock::time_point::max()) {
      w.park();
    } else {
      w.park_until(limit.deadline);
    }
  };
  if (!limit.stop.stop_possible()) {
    park_until_deadline();
    return;
  }
  // Runs at once if stop was already requested; its destructor waits out a concurrent run.
  const std::stop_callback on_stop(limit.stop, [&w]() noexcept {
    if (w.claim(claim_outcome::cancelled)) w.unpark();
  });
  park_until_deadline();
}

}  // namespace goro::detail
