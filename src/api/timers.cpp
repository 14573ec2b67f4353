// SPDX-License-Identifier: Apache-2.0
// Layer: api. May include: api, chan, sync, park, sched, stack, time, platform.
// after(), timer and ticker (goro/timer.hpp) on the runtime's timer heap. Design:
// docs/scheduler.md, "Timers"; the user's view: docs/select.md, "Timers".
//
// Invariants:
//   - A timer's or ticker's entry is owned by its timer_state, which reaches its runtime only
//     through its timer_binding, holding the binding's lock shared while it does (start, stop).
//     So it never touches a destroyed scheduler: once ~runtime() has cleared the binding, stop
//     returns false and start (reset) throws std::logic_error, in every state the timer was in.
//   - fire() only does a non-blocking send (and, for a ticker, sets the next deadline for the
//     heap to queue), so it never blocks a worker. stop() relies on timer_heap::remove waiting
//     out a fire in progress: once it returns, fire() cannot touch the state again.
//   - Every deadline is saturated (goro/detail/deadline.hpp): a duration too long for the
//     steady clock means "never" (time_point::max()), not a wrapped-around past.
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <stdexcept>
#include <string>

#include "goro/detail/deadline.hpp"
#include "goro/detail/spawn.hpp"
#include "goro/detail/spinlock.hpp"
#include "goro/detail/thread_safety.hpp"
#include "goro/detail/timer_entry.hpp"
#include "goro/timer.hpp"
#include "sched/scheduler.hpp"

namespace goro::detail {

struct timer_state : timer_entry {
  time_channel ch{1};
  clock::duration period{};  // zero for one-shot timers
  std::shared_ptr<timer_binding> binding = current_or_default_scheduler().binding();
  // Serialises start, stop and reset of this timer when fibers or threads call them at once,
  // as Go's runtime serialises its timers' Reset and Stop. Without it two resets both queued
  // the entry, and stop() then left one copy to fire, and to touch the freed state after the
  // timer's destruction (TimerTest.ConcurrentResetsAndStopLeaveNothingQueued). Held across a
  // heap operation and at most a fire's wait: short, never across a park.
  spinlock control;

  // Queues the entry (idle) to fire `d` from now, then every `every` if that is positive.
  // Throws std::logic_error, naming `operation`, once the runtime is gone.
  void start(clock::duration d, clock::duration every, const char* operation) {
    const lock_guard serial(control);
    start_locked(d, every, operation);
  }

  // True if the entry was queued and now will not fire; waits out a fire in progress.
  bool stop() noexcept {
    const lock_guard serial(control);
    return stop_locked();
  }

  // stop(), then start(), as one step: returns what stop() would.
  bool reset(clock::duration d, clock::duration every, const char* operation) {
    const lock_guard serial(control);
    const bool was_active = stop_locked();
    start_locked(d, every, operation);
    return was_active;
  }

  static bool on_fire(timer_entry& e) noexcept {
    auto& self = static_cast<timer_state&>(e);
    const clock::time_point now = clock::now();
    (void)self.ch.try_send(clock::time_point(now));
    if (self.period <= clock::duration::zero()) return false;
    self.when = saturating_add(self.when, self.period);
    if (self.when <= now) self.when = saturating_add(now, self.period);  // missed ticks are dropped
    return true;
  }

 private:
  void start_locked(clock::duration d, clock::duration every, const char* operation)
      GORO_REQUIRES(control) {
    const std::shared_lock lock(binding->mu);
    if (binding->sched == nullptr) {
      throw std::logic_error(std::string(operation) + ": the runtime it was made on is destroyed");
    }
    if (binding->sched->stopped()) refuse_stopped_runtime(*binding->sched, operation);
    period = every;
    when = deadline_after(d);
    binding->sched->add_timer(*this);
  }

  bool stop_locked() noexcept GORO_REQUIRES(control) {
    const std::shared_lock lock(binding->mu);
    return binding->sched != nullptr && binding->sched->remove_timer(*this);
  }
};

void timer_state_stopper::operator()(timer_state* state) const noexcept {
  (void)state->stop();
  delete state;
}

namespace {

struct after_state : timer_entry {
  time_channel ch{1};

  static bool on_fire(timer_entry& e) noexcept {
    auto* self = static_cast<after_state*>(&e);
    (void)self->ch.try_send(clock::now());
    delete self;
    return false;
  }
  static void on_discard(timer_entry& e) noexcept { delete static_cast<after_state*>(&e); }
};

void require_positive(clock::duration period, const char* operation) {
  if (period <= clock::duration::zero()) {
    throw std::invalid_argument(std::string(operation) + ": non-positive period");
  }
}

}  // namespace
}  // namespace goro::detail

namespace goro {

using detail::clock;

// after() is called on a fiber of the runtime it queues on (which ~runtime() waits for) or on
// the default runtime, which is never destroyed: its scheduler outlives the call.
time_channel after(clock::duration d) {
  detail::scheduler& sched = detail::current_or_default_scheduler();
  auto state = std::make_unique<detail::after_state>();
  time_channel ch = state->ch;
  state->fire = detail::after_state::on_fire;
  state->frees_itself = true;
  state->discard = detail::after_state::on_discard;
  state->when = detail::deadline_after(d);
  sched.add_timer(*state);
  // The timer heap owns it now, and frees it when it fires or is discarded.
  static_cast<void>(state.release());
  return ch;
}

namespace {
// What c() gives on a moved-from timer or ticker: a nil channel, on which a receive waits
// forever, as on a timer that never fires.
const time_channel& no_time_channel() noexcept {
  static const time_channel nil(nullptr);
  return nil;
}

[[noreturn]] void throw_moved_from(const char* what) {
  throw std::logic_error(std::string(what) + ": the object was moved from");
}
}  // namespace

timer::timer(clock::duration d) : state_(new detail::timer_state) {
  state_->fire = detail::timer_state::on_fire;
  state_->start(d, clock::duration::zero(), "goro::timer");
}

timer::~timer() = default;
timer::timer(timer&&) noexcept = default;
timer& timer::operator=(timer&&) noexcept = default;

const time_channel& timer::c() const noexcept {
  return state_ != nullptr ? state_->ch : no_time_channel();
}

bool timer::stop() noexcept { return state_ != nullptr && state_->stop(); }

bool timer::reset(clock::duration d) {
  if (state_ == nullptr) throw_moved_from("goro::timer::reset");
  return state_->reset(d, clock::duration::zero(), "goro::timer::reset");
}

ticker::ticker(clock::duration period) : state_(new detail::timer_state) {
  detail::require_positive(period, "goro::ticker");
  state_->fire = detail::timer_state::on_fire;
  state_->start(period, period, "goro::ticker");
}

ticker::~ticker() = default;
ticker::ticker(ticker&&) noexcept = default;
ticker& ticker::operator=(ticker&&) noexcept = default;

const time_channel& ticker::c() const noexcept {
  return state_ != nullptr ? state_->ch : no_time_channel();
}

void ticker::stop() noexcept {
  if (state_ != nullptr) (void)state_->stop();
}

void ticker::reset(clock::duration period) {
  if (state_ == nullptr) throw_moved_from("goro::ticker::reset");
  detail::require_positive(period, "goro::ticker::reset");
  (void)state_->reset(period, period, "goro::ticker::reset");
}

}  // namespace goro
