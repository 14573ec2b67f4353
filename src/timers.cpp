// SPDX-License-Identifier: Apache-2.0
// after(), timer and ticker (goro/timer.hpp) on the runtime's timer heap, and the runtime-neutral
// timer_start and timer_stop (goro/detail/timer_entry.hpp).
//
// A timer's entry is owned by its timer_state; fire() only does a non-blocking send (and, for
// a ticker, asks the heap to queue the entry again), so it never blocks a worker. stop() relies on timer_stop()
// waiting out a fire in progress: once it returns, fire() cannot touch the state again.
#include <stdexcept>

#include "goro/detail/spawn.hpp"
#include "goro/detail/timer_entry.hpp"
#include "goro/timer.hpp"
#include "scheduler.hpp"

namespace goro::detail {

void timer_start(timer_entry& entry, scheduler& sched) { sched.add_timer(entry); }

bool timer_stop(timer_entry& entry) noexcept {
  scheduler* s = entry.sched;
  return s != nullptr && s->remove_timer(entry);
}

struct timer_state : timer_entry {
  time_channel ch{1};
  clock::duration period{};  // zero for one-shot timers

  timer_state() { sched = &current_or_default_scheduler(); }

  void start(clock::duration d) {
    if (sched == nullptr) throw std::logic_error("goro::timer: reset after its runtime was destroyed");
    when = clock::now() + d;
    timer_start(*this, *sched);
  }

  static bool on_fire(timer_entry& e) noexcept {
    auto& self = static_cast<timer_state&>(e);
    const clock::time_point now = clock::now();
    (void)self.ch.try_send(clock::time_point(now));
    if (self.period <= clock::duration::zero()) return false;
    self.when += self.period;
    if (self.when <= now) self.when = now + self.period;  // missed ticks are dropped
    return true;
  }
};

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

void require_positive(clock::duration period) {
  if (period <= clock::duration::zero()) {
    throw std::invalid_argument("goro::ticker: non-positive period");
  }
}

}  // namespace
}  // namespace goro::detail

namespace goro {

using detail::clock;

time_channel after(clock::duration d) {
  auto* state = new detail::after_state;
  time_channel ch = state->ch;
  state->fire = detail::after_state::on_fire;
  state->frees_itself = true;
  state->discard = detail::after_state::on_discard;
  state->when = clock::now() + d;
  detail::timer_start(*state, detail::current_or_default_scheduler());
  return ch;
}

timer::timer(clock::duration d) : state_(std::make_unique<detail::timer_state>()) {
  state_->fire = detail::timer_state::on_fire;
  state_->start(d);
}

timer::~timer() {
  if (state_ != nullptr) stop();
}

timer::timer(timer&&) noexcept = default;

timer& timer::operator=(timer&& other) noexcept {
  if (this != &other) {
    if (state_ != nullptr) stop();
    state_ = std::move(other.state_);
  }
  return *this;
}

const time_channel& timer::c() const noexcept { return state_->ch; }

bool timer::stop() noexcept { return detail::timer_stop(*state_); }

bool timer::reset(clock::duration d) {
  const bool was_active = stop();
  state_->start(d);
  return was_active;
}

ticker::ticker(clock::duration period) : state_(std::make_unique<detail::timer_state>()) {
  detail::require_positive(period);
  state_->fire = detail::timer_state::on_fire;
  state_->period = period;
  state_->start(period);
}

ticker::~ticker() {
  if (state_ != nullptr) stop();
}

ticker::ticker(ticker&&) noexcept = default;

ticker& ticker::operator=(ticker&& other) noexcept {
  if (this != &other) {
    if (state_ != nullptr) stop();
    state_ = std::move(other.state_);
  }
  return *this;
}

const time_channel& ticker::c() const noexcept { return state_->ch; }

void ticker::stop() noexcept { detail::timer_stop(*state_); }

void ticker::reset(clock::duration period) {
  detail::require_positive(period);
  stop();
  state_->period = period;
  state_->start(period);
}

}  // namespace goro
