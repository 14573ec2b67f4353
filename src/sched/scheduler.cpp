// SPDX-License-Identifier: Apache-2.0
// Layer: sched. May include: sched, stack, time, platform.
// The scheduler itself: starting and stopping its workers (and the default runtime's part of
// process exit), the global run queue, ready(), which places a fiber made runnable, and adding
// timers. Fibers' creation and exit are in fiber.cpp, the worker loop in worker.cpp, spinning
// and parking in idle.cpp. Invariants in scheduler.hpp; design in docs/scheduler.md.
#include "sched/scheduler.hpp"

#include <algorithm>
#include <atomic>
#include <cinttypes>
#include <cstdio>
#include <thread>

#include "platform/asymmetric_fence.hpp"
#include "platform/fatal.hpp"
#include "platform/sanitizers.hpp"
#include "sched/census.hpp"
#include "sched/worker.hpp"
#include "stack/stack_overflow.hpp"

namespace goro::detail {

namespace {

// Numbers the runtimes, for the trace. Relaxed: only unique values are needed.
std::atomic<std::uint64_t> next_scheduler_id{1};

// Where the calling thread's fiber stack is, for the stack overflow handler (a signal handler).
bool running_fiber_stack(stack_region& stack, std::uint64_t& fiber_id, spawn_site& site) noexcept {
  const worker* w = worker::current();
  const fiber* f = w != nullptr ? w->current_fiber() : nullptr;
  if (f == nullptr) return false;
  stack = f->stack;
  fiber_id = f->id;
  site = f->site;
  return true;
}

// What fatal() says of the calling thread's place in the runtime.
std::size_t describe_for_fatal(char* out, std::size_t size) noexcept {
  const worker* w = worker::current();
  if (w == nullptr) return 0;
  const fiber* f = w->current_fiber();
  const int n = f != nullptr ? std::snprintf(out, size, "fiber %" PRIu64 ", %s", f->id,
                                             to_string(f->state.load(std::memory_order_relaxed)))
                             : std::snprintf(out, size, "a worker thread, between fibers");
  return n > 0 ? std::min(static_cast<std::size_t>(n), size - 1) : 0;
}

}  // namespace

// ---- construction and stopping ------------------------------------------------------------

namespace {
// Runtimes of more than one worker alive now. Relaxed: a hint for choosing a channel's buffer.
std::atomic<int> multi_worker_runtimes{0};
}  // namespace

bool multi_worker_runtime_alive() noexcept {
  return multi_worker_runtimes.load(std::memory_order_relaxed) > 0;
}

scheduler::scheduler(const options& opts)
    : idle_(opts.workers),
      stacks_(opts.stack_size, opts.compact_stacks),
      on_deadlock_(opts.on_deadlock),
      stack_watermark_(opts.stack_watermark),
      id_(next_scheduler_id.fetch_add(1, std::memory_order_relaxed)) {
  set_fatal_context(describe_for_fatal);
  install_stack_overflow_handler(running_fiber_stack);
  init_asymmetric_fences();  // before any worker, or any fence of ours, runs
  workers_.reserve(opts.workers);
  for (unsigned i = 0; i < opts.workers; ++i)
    workers_.push_back(std::make_unique<worker>(*this, i));
  for (auto& w : workers_) w->runq_.set_shared(workers_.size() > 1);
  // Channel locks may be biased to a lone worker, but only with asymmetric fences: the
  // owner's side of the bias is a compiler barrier (docs/channels.md, "The lock, biased to a
  // lone worker").
  workers_[0]->may_claim_bias_ = workers_.size() == 1 && asymmetric_fences();
  if (workers_.size() > 1) multi_worker_runtimes.fetch_add(1, std::memory_order_relaxed);
  for (auto& w : workers_) w->start();
  census::get().add(this);
  trace_session::get().joined(*this);
}

scheduler::~scheduler() {
  census::get().remove(this);
  stop();
  trace_session::get().left(*this);
  if (workers_.size() > 1) multi_worker_runtimes.fetch_sub(1, std::memory_order_relaxed);
  if (poller_owner_ != nullptr) poller_owner_->detach();
  // Exclusive: timers and tickers use this scheduler only while holding the binding shared
  // (timer_binding), so none is inside it from here on, and each finds null afterwards.
  const std::unique_lock lock(timer_binding_->mu);
  timer_binding_->sched = nullptr;
  timers_.detach_all();
}

void scheduler::request_stop() noexcept {
  if (stopping_.exchange(true, std::memory_order_acq_rel)) return;
  for (auto& w : workers_) w->idle_slot_.wake();
}

void scheduler::stop() noexcept {
  request_stop();
  for (auto& w : workers_) w->join();
}

void scheduler::stop_at_exit() noexcept {
  worker* self = worker::current();
  if (self != nullptr && &self->sched_ != this) self = nullptr;
  exiting_on_.store(self, std::memory_order_relaxed);
  request_stop();
  // Detached, never joined: a worker inside a fiber that computes or blocks in the kernel never
  // reaches a scheduling point, and the scheduler is never destroyed, so its threads may run
  // on until the process ends. (Joinable threads left at exit are also what ThreadSanitizer
  // reports as leaked.)
  for (auto& w : workers_) w->thread_.detach();
#ifdef GORO_ASAN
  {
    // Which stacks are in use can be read only once the workers that change it have stopped:
    // wait a moment for every worker but the caller's to leave its loop, as a worker at a
    // scheduling point does within microseconds. One still inside a fiber after that (it
    // computes, or blocks in the kernel) is left running, and every slab is registered whole.
    const clock::time_point until = clock::now() + std::chrono::milliseconds(200);
    const auto all_done = [&] {
      return std::all_of(workers_.begin(), workers_.end(), [&](const auto& w) {
        return w.get() == self || w->loop_done_.load(std::memory_order_acquire);
      });
    };
    while (!all_done() && clock::now() < until) std::this_thread::yield();
    report_abandoned_stacks_as_roots(all_done());
  }
#endif
}

void scheduler::report_abandoned_stacks_as_roots(bool workers_stopped) {
#ifdef GORO_ASAN
  if (!workers_stopped) {
    stacks_.for_each_slab([](void* base, std::size_t length) {
      __lsan_register_root_region(base, length);  // LeakSanitizer skips the unreadable guards
    });
    return;
  }
  // Each live fiber's stack holds what matters between its saved stack pointer and the top
  // (where create() put the record). Neighbouring ranges are merged: LeakSanitizer's cost grows
  // with the number of regions, and a short untouched gap costs little to scan.
  std::vector<std::pair<std::uintptr_t, std::uintptr_t>> ranges;
  std::vector<const stack_cache*> caches;
  for (const auto& w : workers_) caches.push_back(&w->stacks_);
  stacks_.for_each_in_use(caches, [&ranges](const stack_region& stack) {
    const auto low = reinterpret_cast<std::uintptr_t>(stack.low);
    const auto* f = reinterpret_cast<const fiber*>(record_address(stack));
    // A context that was running (its fctx is null: the fiber that called exit) is scanned
    // whole.
    const auto saved = reinterpret_cast<std::uintptr_t>(f->ctx.fctx);
    const std::uintptr_t sp = saved != 0 ? saved : low;
    if (sp >= low && sp < low + stack.size) ranges.emplace_back(sp, low + stack.size);
  });
  std::sort(ranges.begin(), ranges.end());
  constexpr std::uintptr_t max_gap = 1 << 20;
  for (std::size_t i = 0; i < ranges.size();) {
    auto [begin, end] = ranges[i];
    for (++i; i < ranges.size() && ranges[i].first - end <= max_gap; ++i) end = ranges[i].second;
    __lsan_register_root_region(reinterpret_cast<void*>(begin), end - begin);
  }
#else
  (void)workers_stopped;
#endif
}

// ---- placement and the global queue -------------------------------------------------------

void scheduler::ready(fiber* f) noexcept {
  const bool unpark = f->state.load(std::memory_order_relaxed) != fiber_state::created;
  f->transition(unpark ? fiber_state::parked : fiber_state::created, fiber_state::runnable);
  worker* w = worker::current();
  if (w != nullptr && &w->sched_ == this) {
    if (metrics_enabled && unpark) w->counts_.add(sched_event::unparks);
    if (w->polling_) {  // spread by inject_polled() when the poll ends
      w->add_polled(f);
      return;
    }
    // Timers firing in one batch wake fibers in deadline order; the next slot would run them
    // newest first. A timer's wake-up is no hand-off: the fiber queues behind the others.
    if (w->firing_timers_) {
      w->push_back(f);
    } else {
      w->make_next(f);
    }
    if (workers_.size() > 1) idle_.wake_one();  // with one worker, it is us, and running
    return;
  }
  // From outside this runtime: f may run, finish and let ~runtime proceed before this call
  // returns, so wait_for_fibers() also waits for external_wakers_ to drain.
  external_wakers_.fetch_add(1, std::memory_order_acq_rel);
  if (unpark) outside_.add_shared(sched_event::unparks);
  f->next = nullptr;
  global_push(f, f, 1);
  idle_.wake_one();
  external_wakers_.fetch_sub(1, std::memory_order_release);
}

void scheduler::global_push(fiber* first, fiber* last, std::size_t n) noexcept {
  {
    std::lock_guard lock(global_mu_);
    last->next = nullptr;
    if (global_tail_ != nullptr) {
      global_tail_->next = first;
    } else {
      global_head_ = first;
    }
    global_tail_ = last;
    global_size_.fetch_add(n, std::memory_order_release);
  }
}

fiber* scheduler::global_take(worker& w, std::size_t max) noexcept {
  if (global_size_.load(std::memory_order_acquire) == 0) return nullptr;
  std::lock_guard lock(global_mu_);
  const std::size_t size = global_size_.load(std::memory_order_relaxed);  // under global_mu_
  if (size == 0) return nullptr;
  const std::size_t n = std::min({size, max, size / workers_.size() + 1});
  fiber* first = global_head_;
  global_head_ = first->next;
  for (std::size_t i = 1; i < n; ++i) {
    fiber* f = global_head_;
    global_head_ = f->next;
    w.runq_.push(f);  // cannot fail: n <= capacity / 2 and we only take when nearly empty
  }
  if (global_head_ == nullptr) global_tail_ = nullptr;
  global_size_.fetch_sub(n, std::memory_order_relaxed);
  return first;
}

bool scheduler::any_work() const noexcept {
  if (global_size_.load(std::memory_order_acquire) != 0) return true;
  for (const auto& w : workers_) {
    if (!w->runq_.empty()) return true;
  }
  return false;
}

// ---- the I/O poller -----------------------------------------------------------------------

io_poller& scheduler::install_poller(const std::function<std::shared_ptr<io_poller>()>& make) {
  {
    std::lock_guard lock(poller_mu_);
    if (poller_owner_ != nullptr) return *poller_owner_;
    poller_owner_ = make();
    // seq_cst store, then wake_for_timer's light fence and read of the duty holder: the pair of
    // sleep_on_timer_duty's heavy fence and read of poller_. A holder asleep on its futex wakes
    // and sleeps again in the poller.
    poller_.store(poller_owner_.get(), std::memory_order_seq_cst);
  }
  idle_.wake_for_timer();
  return *poller_owner_;
}

std::shared_ptr<io_poller> scheduler::poller_shared() const {
  std::lock_guard lock(poller_mu_);
  return poller_owner_;
}

void scheduler::io_wait_started() noexcept {
  // The waiter has counted itself (io_poller::add_waiter, seq_cst); wake_for_timer's light
  // fence and reads of the duty holder and the idle set pair with park_thread's heavy fence
  // and sleep()'s read of the count (docs/net.md, "Who makes sure someone polls").
  idle_.wake_for_timer();
}

// ---- timers -------------------------------------------------------------------------------

void scheduler::add_timer(timer_entry& e) {
  if (timers_.push(e)) idle_.wake_for_timer();
}

}  // namespace goro::detail
