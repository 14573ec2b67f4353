// SPDX-License-Identifier: Apache-2.0
// Layer: sched. May include: sched, stack, time, platform.
// The worker: its loop (find a fiber, switch to it, repeat), the switches a running fiber makes
// (park, yield, spawn child-first, exit), where it puts the fibers it makes runnable, the due
// timers it fires, the polls for I/O that do not block (docs/net.md), and stealing from the
// other workers when it has nothing. Parking the thread
// is in idle.cpp. Invariants in worker.hpp; design in docs/scheduler.md ("Run queues and
// placement", "Stealing, spinning and parking workers").
#include "sched/worker.hpp"

#include <algorithm>

#include "platform/cpu.hpp"
#include "platform/fatal.hpp"
#include "stack/stack_overflow.hpp"

namespace goro::detail {

constinit thread_local worker* tls_worker = nullptr;

namespace {

// Fairness: every this many scheduling decisions, a worker looks at the global queue and the
// oldest local fiber before its next slot, and checks timers (Go uses 61 too).
constexpr std::uint32_t fairness_period = 61;
// Every this many fairness periods, the oldest displaced fiber runs ahead of newer ones. Rarer
// than the queued ring's turn: the oldest displaced fibers are the roots of whatever tree of
// work is running (a spawn tree's ancestors), and resuming one starts a new subtree while the
// current one is unfinished. Every 61 decisions, skynet kept 200,000 fibers alive at once;
// every 3,904 (64 periods), under a thousand.
constexpr std::uint32_t displaced_fairness_periods = 64;
constexpr int steal_rounds = 4;
// A poll that makes this many fibers runnable wakes an idle worker to share them (inject_polled).
constexpr std::size_t spread_batch = 32;

// Arrival hook of a yield: runs on the next context's stack once the yielding fiber is saved.
void requeue_yielded(void* arg) noexcept { worker::current()->push_back(static_cast<fiber*>(arg)); }

std::uint64_t seed_for(unsigned index) {
  return 0x9E3779B97F4A7C15ULL * (index + 1) ^ reinterpret_cast<std::uintptr_t>(&index);
}

}  // namespace

// ---- the worker loop ----------------------------------------------------------------------

worker::worker(scheduler& sched, unsigned index)
    : sched_(sched),
      until_fair_turn_(fairness_period),
      rng_(seed_for(index)),
      idle_spin_(idle_spin) {}

#if !GORO_TLS_READ_ASM
// Never inlined: a fiber may resume on another thread, so callers must not keep a cached
// thread-local address across a switch (worker.hpp, before worker::current).
__attribute__((noinline)) worker* worker::current() noexcept {
  asm volatile("" ::: "memory");
  return tls_worker;
}
#endif

void worker::start() {
  thread_ = std::thread([this] { main(); });
}

void worker::join() {
  if (thread_.joinable()) thread_.join();
}

void worker::main() noexcept {
  tls_worker = this;
  init_thread_context(ctx_);
  const alt_signal_stack alt;
  while (fiber* f = find_runnable()) {
    current_ = f;
    f->start_running();
    if (switching_to(f)) [[unlikely]] {
      traced_switch(nullptr, f, false, ctx_, f->ctx, nullptr, nullptr);
    } else {
      switch_context(ctx_, f->ctx, nullptr, nullptr);
    }
  }
  tls_worker = nullptr;
  loop_done_.store(true, std::memory_order_release);
}

fiber* worker::find_runnable() noexcept {
  for (;;) {
    if (sched_.stopping_.load(std::memory_order_acquire)) return nullptr;
    poll_timers();
    fiber* f = pick_local();
    // Before stealing: a poll that does not block, if anyone waits on I/O (Go's findrunnable).
    if (f == nullptr && poll_io()) f = pick_local();
    if (f == nullptr && sched_.workers_.size() > 1) {
      if (sched_.idle_.try_start_spinning(idle_slot_)) {
        for (int round = 0; f == nullptr && round < steal_rounds; ++round) f = steal_work();
        if (f == nullptr && !io_waiters()) {
          spin_for_work();
          f = pick_local();
          if (f == nullptr) f = steal_work();
          if (f == nullptr) f = steal_stuck();
        }
      }
    }
    if (f != nullptr) {
      // The last spinner to find work wakes another, in case there is more (Go's resetspinning).
      if (sched_.idle_.stop_spinning(idle_slot_)) sched_.idle_.wake_one();
      return f;
    }
    park_thread();
  }
}

// A fairness turn (every fairness_period decisions): the timers, I/O, the oldest displaced or
// queued fiber and the global queue come before the next slot.
fiber* worker::pick_fair() noexcept {
  until_fair_turn_ = fairness_period;
  // A fiber on its way to parked may hold the lock its arrival hook releases (park_gated),
  // and a due timer may send on that very channel: firing here would spin on it forever.
  // Such a switch goes to the worker loop instead, which fires the timers once the hook has
  // run, then takes this turn again. A yield or an exit holds no lock, and fires them here.
  // (docs/scheduler.md, "Timers".)
  const bool parking =
      current_ != nullptr && current_->state.load(std::memory_order_relaxed) == fiber_state::parked;
  if (parking) {
    if (sched_.timers_.next_deadline() != clock::time_point::max() &&
        sched_.timers_.due(clock::now())) {
      until_fair_turn_ = 1;  // the next decision takes this turn again
      return nullptr;
    }
  } else {
    poll_timers();
  }
  // I/O too, so fibers that hand off to each other cannot starve a socket. Unlike a timer, a
  // poll takes no lock a parking fiber may hold: only descriptor records' (docs/net.md).
  poll_io();
  if (++fair_turns_ % displaced_fairness_periods == 0) {
    if (fiber* f = runq_.pop_oldest_displaced()) return f;
  }
  if (fiber* f = sched_.global_take(*this, 1)) return f;
  if (fiber* f = runq_.pop_queued()) return f;
  if (fiber* f = runq_.pop_next()) return f;
  return pick_after_next();
}

// pick_local past an empty next slot: the local rings, then a batch from the global queue.
fiber* worker::pick_after_next() noexcept {
  if (fiber* f = runq_.pop_after_next()) return f;
  return sched_.global_take(*this, run_queue::capacity / 2);
}

// Fires the due timers, with fibers they wake queued in firing order (see ready()). Runs only
// where no lock can be held: in the worker loop, and on a yield or an exit (pick_local).
void worker::poll_timers() noexcept {
  if (sched_.timers_.next_deadline() == clock::time_point::max()) return;
  const clock::time_point now = clock::now();
  if (!sched_.timers_.due(now)) return;
  firing_timers_ = true;
  const bool earlier = sched_.timers_.fire_due(now);
  firing_timers_ = false;
  if (earlier) sched_.idle_.wake_for_timer();  // a ticker re-armed ahead of a sleeping duty worker
}

bool worker::io_waiters() const noexcept {
  const io_poller* poller = sched_.poller();
  return poller != nullptr && poller->has_waiters();
}

// Polls for I/O without blocking if anyone waits on it; returns true if that made fibers
// runnable (queued here and on the global queue by inject_polled).
bool worker::poll_io() noexcept {
  io_poller* poller = sched_.poller();
  if (poller == nullptr || !poller->has_waiters()) return false;
  polling_ = true;
  poller->poll(clock::time_point::min());
  polling_ = false;
  const bool found = polled_count_ != 0;
  inject_polled();
  return found;
}

// ---- placement ----------------------------------------------------------------------------

void worker::add_polled(fiber* f) noexcept {
  f->next = nullptr;
  (polled_tail_ != nullptr ? polled_tail_->next : polled_head_) = f;
  polled_tail_ = f;
  ++polled_count_;
}

// Queues what a poll made runnable here, behind each other in the order found; if the poll
// found a large batch (spread_batch or more: more than one worker serves at once), wakes one
// idle worker, which steals its share as spinners do. Go's injectglist instead puts a share on
// the global queue for every idle worker and starts them, a futex wake-up per poll that finds
// two fibers; on the 2-CPU development VM, with the echo benchmark's client competing for the
// CPUs, neither way measured better than the other beyond the noise of that machine (173k-291k
// requests/s at 2 workers across runs of each, docs/performance.md), so the cheaper one stays.
// Not yet measured where it matters, on many cores.
void worker::inject_polled() noexcept {
  if (polled_count_ == 0) return;
  fiber* f = polled_head_;
  const std::size_t n = polled_count_;
  polled_head_ = polled_tail_ = nullptr;
  polled_count_ = 0;
  while (f != nullptr) {
    fiber* next = f->next;
    push_back(f);
    f = next;
  }
  if (n >= spread_batch && sched_.workers_.size() > 1) sched_.idle_.wake_one();
}

void worker::push_back(fiber* f) noexcept {
  if (runq_.push(f)) return;
  // Full: move the older half and f to the global queue, linked through fiber::next.
  fiber* batch[run_queue::capacity / 2 + 1];
  std::uint32_t n = runq_.take_half(batch);
  batch[n++] = f;
  for (std::uint32_t i = 0; i + 1 < n; ++i) batch[i]->next = batch[i + 1];
  sched_.global_push(batch[0], batch[n - 1], n);
}

// ---- switching ----------------------------------------------------------------------------

void worker::switch_away(arrival_hook hook, void* arg) noexcept {
  fiber* self = current_;
  check_stack(*self);
  // The fiber that called std::exit runs the static destructors: if one of them blocks, no
  // worker is left to resume it, and the process would hang where Go's would have ended.
  if (sched_.exiting_on(this)) {
    fatal(
        "a goro call blocked during process exit, on the fiber that called std::exit; "
        "the runtime has stopped and nothing would resume it");
  }
  self->transition(fiber_state::running, fiber_state::parked);
  counts_.add(sched_event::parks);
  fiber* next = pick_local();
  current_ = next;
  if (next != nullptr) next->start_running();
  exec_context& to = next != nullptr ? next->ctx : ctx_;
  if (switching_to(next)) [[unlikely]] {
    traced_switch(self, next, false, self->ctx, to, hook, arg);
    return;
  }
  switch_context(self->ctx, to, hook, arg);
}

void worker::abandon_current() noexcept {
  switch_away(nullptr, nullptr);
  fatal("a fiber abandoned at exit was resumed");
}

void worker::yield_current() noexcept {
  // The fiber running std::exit keeps going: a switch would end its worker's loop half-way
  // through the exit (switch_away says why blocking there is fatal instead).
  if (sched_.exiting_on(this)) return;
  fiber* self = current_;
  fiber* next = pick_local();
  // Relaxed reads of stopping_ are hints: stop() also wakes every worker, and the worker loop
  // re-reads it with acquire.
  if (next == nullptr && !sched_.stopping_.load(std::memory_order_relaxed)) return;  // keep going
  self->transition(fiber_state::running, fiber_state::runnable);
  current_ = next;
  if (next != nullptr) next->start_running();
  exec_context& to = next != nullptr ? next->ctx : ctx_;
  if (switching_to(next)) [[unlikely]] {
    traced_switch(self, next, false, self->ctx, to, requeue_yielded, self);
    return;
  }
  switch_context(self->ctx, to, requeue_yielded, self);
}

// Work-first spawning, as in Cilk-5 (Frigo, Leiserson, Randall, PLDI 1998): the new fiber runs
// at once and its parent becomes the next fiber here, where an idle worker can steal it. A
// spawning loop then reuses one warm stack instead of queueing a cold one per spawn, and a
// spawn tree is walked depth-first, keeping few fibers alive.
void worker::run_child_first(fiber* child) noexcept {
  fiber* parent = current_;
  parent->transition(fiber_state::running, fiber_state::runnable);
  child->transition(fiber_state::created, fiber_state::running);
  current_ = child;
  const arrival_hook hook = [](void* p) noexcept {
    worker* w = worker::current();
    w->queue_parent(static_cast<fiber*>(p));
    if (w->sched_.workers_.size() > 1) w->sched_.idle_.wake_one();
  };
  if (switching_to(child)) [[unlikely]] {
    traced_switch(parent, child, /*spawned=*/true, parent->ctx, child->ctx, hook, parent);
    return;
  }
  switch_context(parent->ctx, child->ctx, hook, parent);
}

// The parent goes to the next slot, unless a fiber a hand-off woke is there: that one runs
// first, and the parent waits on top of the displaced ring. Displaced under the parent instead,
// it could wait for good: a parent that keeps spawning and never blocks keeps the next slot
// (Go would preempt it; goro cannot). Session 12 found it in Go's "spawn a helper, take its
// result" loop: each helper, woken by the take, sank under its parent and never ran to its
// end, so every one stayed alive (4.6 KiB each: 9 GB after 2 million), and the fibers queued
// behind them, those from outside included, starved
// (SchedulerFairnessTest.SpawnAndTakeLoopNeitherLeaksNorStarves). A spawning parent in the
// slot is displaced as before: a spawn tree is still walked depth first. If a thief empties the
// slot meanwhile, the parent waits on top of the displaced ring, which is next in line anyway.
void worker::queue_parent(fiber* parent) noexcept {
  if (runq_.has_next() && !next_is_parent_) {
    if (!runq_.push_displaced(parent)) push_back(parent);
    return;
  }
  make_next(parent);
  next_is_parent_ = true;
}

void worker::exit_fiber() noexcept {
  fiber* self = current_;
  check_stack(*self);
  self->transition(fiber_state::running, fiber_state::finished);
  fiber* next = pick_local();
  current_ = next;
  if (next != nullptr) next->start_running();
  exec_context& to = next != nullptr ? next->ctx : ctx_;
  if (switching_to(next)) [[unlikely]]
    traced_exit(self, next, self->ctx, to, release_finished, self);
  exit_context(self->ctx, to, release_finished, self);
}

void worker::traced_switch(const fiber* from, const fiber* to, bool spawned, exec_context& save,
                           exec_context& load, arrival_hook hook, void* arg) noexcept {
  trace_.record_switch(from != nullptr ? from->id : 0, to != nullptr ? to->id : 0,
                       to != nullptr ? &to->site : nullptr, spawned);
  switch_context(save, load, hook, arg);
}

void worker::traced_exit(const fiber* from, const fiber* to, exec_context& save, exec_context& load,
                         arrival_hook hook, void* arg) noexcept {
  trace_.record_switch(from->id, to != nullptr ? to->id : 0, to != nullptr ? &to->site : nullptr,
                       false);
  exit_context(save, load, hook, arg);
}

void trace_wake(std::uint64_t id) noexcept {
  worker* w = worker::current();
  if (w != nullptr && w->current_fiber() != nullptr) w->trace().record(trace_kind::wake, id, {});
}

// ---- stealing -----------------------------------------------------------------------------

fiber* worker::steal_work() noexcept {
  const std::size_t n = sched_.workers_.size();
  rng_ ^= rng_ << 13;
  rng_ ^= rng_ >> 7;
  rng_ ^= rng_ << 17;
  const std::size_t start = rng_ % n;
  fiber* loot[run_queue::capacity / 2];
  for (std::size_t i = 0; i < n; ++i) {
    worker& victim = *sched_.workers_[(start + i) % n];
    if (&victim == this) continue;
    const std::uint32_t k = victim.runq_.steal(loot);
    if (k == 0) continue;
    counts_.add(sched_event::steals);
    for (std::uint32_t j = 1; j < k; ++j) push_back(loot[j]);
    return loot[0];
  }
  return nullptr;
}

// A fiber in another worker's next slot or displaced ring was normally just made runnable by a
// hand-off and is about to run there, so stealing it at once would split a producer/consumer
// pair across cores (each hand-off then crosses cores, and both fight over the channel's
// lock). Take such work only if it is still there after a short wait: its worker is then busy
// with something long. (Go waits 3 us the same way in runqgrab, for runnext.)
fiber* worker::steal_stuck() noexcept {
  for (const auto& victim : sched_.workers_) {
    if (victim.get() == this || !victim->runq_.queued_empty()) continue;
    const run_queue::stuck_candidates seen = victim->runq_.peek_stuck();
    if (seen.next == nullptr && !seen.displaced) continue;
    const clock::time_point until = clock::now() + std::chrono::microseconds(3);
    while (clock::now() < until) cpu_relax();
    fiber* f = victim->runq_.steal_displaced_if(seen);
    if (f == nullptr && victim->runq_.take_next_if(seen.next)) f = seen.next;
    if (f != nullptr) {
      counts_.add(sched_event::steals);
      return f;
    }
  }
  return nullptr;
}

// Spinning a little longer before sleeping keeps the spinning count non-zero through the short
// gaps of a hand-off chain, so wakers skip the futex system call (Go's spinning Ms do the same
// in findrunnable). Returns as soon as some queue has work.
void worker::spin_for_work() noexcept {
  const clock::time_point until = clock::now() + idle_spin_;
  while (clock::now() < until && !sched_.stopping_.load(std::memory_order_relaxed)) {
    for (int i = 0; i < 32; ++i) cpu_relax();
    // Relaxed: a hint to stop spinning; the caller then takes work under proper ordering.
    if (sched_.global_size_.load(std::memory_order_relaxed) != 0) return;
    for (const auto& w : sched_.workers_) {
      if (!w->runq_.queued_empty()) return;
    }
    if (sched_.timers_.due(clock::now())) return;
  }
}

}  // namespace goro::detail
