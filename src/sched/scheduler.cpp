// SPDX-License-Identifier: Apache-2.0
// Layer: sched. May include: sched, stack, time, platform.
// The work-stealing scheduler: worker loops, run-queue placement, stealing, the spinning and
// parking protocol, fiber creation and exit. Design and proofs: docs/scheduler.md.
#include "sched/scheduler.hpp"

#include <algorithm>
#include <cinttypes>
#include <cstdio>
#include <exception>
#include <stdexcept>

#include "goro/detail/spinlock.hpp"
#include "platform/asymmetric_fence.hpp"
#include "platform/fatal.hpp"
#include "platform/futex.hpp"
#include "platform/sanitizers.hpp"
#include "stack/stack_overflow.hpp"

namespace goro::detail {

constinit thread_local worker* tls_worker = nullptr;

const char* to_string(fiber_state s) noexcept {
  switch (s) {
    case fiber_state::created: return "created";
    case fiber_state::runnable: return "runnable";
    case fiber_state::running: return "running";
    case fiber_state::parked: return "parked";
    case fiber_state::finished: return "finished";
  }
  return "corrupt";
}

void fiber::transition(fiber_state from, [[maybe_unused]] fiber_state to) noexcept {
#if defined(GORO_DCHECKS) && GORO_DCHECKS
  const fiber_state was = state.load(std::memory_order_relaxed);
  if (was != from) {
    fatal("fiber %" PRIu64 " is %s, expected %s on the way to %s", id, to_string(was),
          to_string(from), to_string(to));
  }
#else
  (void)from;
#endif
  state.store(to, std::memory_order_relaxed);
}

void fiber::start_running() noexcept {
  transition(state.load(std::memory_order_relaxed) == fiber_state::created ? fiber_state::created
                                                                           : fiber_state::runnable,
             fiber_state::running);
}

namespace {

alignas(64) std::atomic<std::uint64_t> next_fiber_id{1};
constexpr std::uint64_t fiber_id_block = 256;  // ids a worker takes from next_fiber_id at once

// Room a fiber's stack must keep below its record and task.
constexpr std::size_t min_usable_stack = 8 * 1024;
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
// How long a spinning worker keeps looking before it sleeps: idle_spin, doubled up to
// max_idle_spin each time a sleep ends sooner than twice the current spin (see park_thread).
constexpr auto idle_spin = std::chrono::microseconds(50);
constexpr auto max_idle_spin = std::chrono::microseconds(1000);

[[noreturn]] void fiber_main(void* arg) noexcept {
  auto* f = static_cast<fiber*>(arg);
  try {
    f->run(f->task);
  } catch (const std::exception& e) {
    fatal("exception escaped fiber %" PRIu64 ": %s", f->id, e.what());
  } catch (...) {
    fatal("exception escaped fiber %" PRIu64 " (not a std::exception)", f->id);
  }
  worker::current()->exit_fiber();
}

// Arrival hooks: each runs on the next context's stack once the previous fiber is saved.

void requeue_yielded(void* arg) noexcept { worker::current()->push_back(static_cast<fiber*>(arg)); }

void release_finished(void* arg) noexcept {
  auto* f = static_cast<fiber*>(arg);
  scheduler& s = *f->sched;
  worker* w = worker::current();
  destroy_context(f->ctx);
  const stack_region stack = f->stack;  // f lives on that stack
  s.stacks().release(w->stack_cache_for(s), stack);
  s.fiber_finished(w);
}

// Where a fiber's record goes on its stack: near the top, shifted down by a per-stack multiple
// of the cache line (cache colouring, as in Bonwick's slab allocator). Without it every fiber's
// record and hottest frames share one offset within a page, so thousands of parked fibers
// compete for the same few cache sets. Compact stacks get no shift: up to 31 lines would be
// most of a 2 KiB stack, and would make the room left depend on where the stack lies. They need
// none either, as the pool lays them an odd number of cache lines apart, so their tops already
// fall on every line offset within a page (stack_pool::compact_stack_granule).
std::uintptr_t record_address(const stack_region& stack) noexcept {
  constexpr std::uintptr_t line = 64;
  constexpr std::uintptr_t colours = 32;
  const auto low = reinterpret_cast<std::uintptr_t>(stack.low);
  const std::uintptr_t colour = stack.compact ? 0 : ((low / 4096) % colours) * line;
  return (low + stack.size - colour - sizeof(fiber)) & ~(alignof(fiber) - 1);
}

// Where the calling thread's fiber stack is, for the stack overflow handler (a signal handler).
bool running_fiber_stack(stack_region& stack, std::uint64_t& fiber_id) noexcept {
  const worker* w = worker::current();
  const fiber* f = w != nullptr ? w->current_fiber() : nullptr;
  if (f == nullptr) return false;
  stack = f->stack;
  fiber_id = f->id;
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

std::uint64_t seed_for(unsigned index) {
  return 0x9E3779B97F4A7C15ULL * (index + 1) ^ reinterpret_cast<std::uintptr_t>(&index);
}

}  // namespace

// ---- worker -------------------------------------------------------------------------------

worker::worker(scheduler& sched, unsigned index)
    : sched_(sched), rng_(seed_for(index)), idle_spin_(idle_spin) {}

#if !GORO_TLS_WORKER_ASM
// Never inlined: a fiber may resume on another thread, so callers must not keep a cached
// thread-local address across a switch (scheduler.hpp, before worker::current).
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
    switch_context(ctx_, f->ctx, nullptr, nullptr);
  }
  tls_worker = nullptr;
  loop_done_.store(true, std::memory_order_release);
}

void worker::make_next(fiber* f) noexcept {
  fiber* displaced = runq_.set_next(f);
  if (displaced != nullptr && !runq_.push_displaced(displaced)) push_back(displaced);
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

void worker::check_stack(const fiber& f) const noexcept {
  const auto* sp = static_cast<const std::byte*>(__builtin_frame_address(0));
  if (sp < f.stack.low || sp > f.stack.low + f.stack.size) report_stack_overflow(f.id);
  // A compact stack has no guard page; a fiber that ran below it has overwritten its canary,
  // even if it has since returned. The stack below it may already be damaged.
  if (f.stack.compact && !stack_canary_intact(f.stack.low)) report_stack_overflow(f.id);
}

void worker::switch_away(arrival_hook hook, void* arg) noexcept {
  fiber* self = current_;
  check_stack(*self);
  // The fiber that called std::exit runs the static destructors: if one of them blocks, no
  // worker is left to resume it, and the process would hang where Go's would have ended.
  if (sched_.exiting_on_.load(std::memory_order_relaxed) == this) {
    fatal(
        "a goro call blocked during process exit, on the fiber that called std::exit; "
        "the runtime has stopped and nothing would resume it");
  }
  self->transition(fiber_state::running, fiber_state::parked);
  fiber* next = pick_local();
  current_ = next;
  if (next != nullptr) next->start_running();
  switch_context(self->ctx, next != nullptr ? next->ctx : ctx_, hook, arg);
}

void worker::yield_current() noexcept {
  fiber* self = current_;
  fiber* next = pick_local();
  // Relaxed reads of stopping_ are hints: stop() also wakes every worker, and the worker loop
  // re-reads it with acquire.
  if (next == nullptr && !sched_.stopping_.load(std::memory_order_relaxed)) return;  // keep going
  self->transition(fiber_state::running, fiber_state::runnable);
  current_ = next;
  if (next != nullptr) next->start_running();
  switch_context(self->ctx, next != nullptr ? next->ctx : ctx_, requeue_yielded, self);
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
  switch_context(
      parent->ctx, child->ctx,
      [](void* p) noexcept {
        worker* w = worker::current();
        w->make_next(static_cast<fiber*>(p));
        if (w->sched_.workers_.size() > 1) w->sched_.wake_one();
      },
      parent);
}

void worker::exit_fiber() noexcept {
  fiber* self = current_;
  check_stack(*self);
  self->transition(fiber_state::running, fiber_state::finished);
  fiber* next = pick_local();
  current_ = next;
  if (next != nullptr) next->start_running();
  exit_context(self->ctx, next != nullptr ? next->ctx : ctx_, release_finished, self);
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
  if (earlier) sched_.wake_for_timer();  // a ticker re-armed ahead of a sleeping duty worker
}

fiber* worker::pick_local() noexcept {
  // Stopping: hand control back to the worker loop at every scheduling point, so fibers that
  // yield or hand off to each other forever cannot keep the worker from exiting.
  if (sched_.stopping_.load(std::memory_order_relaxed)) return nullptr;
  if (++tick_ % fairness_period == 0) {
    // A fiber on its way to parked may hold the lock its arrival hook releases (park_gated),
    // and a due timer may send on that very channel: firing here would spin on it forever.
    // Such a switch goes to the worker loop instead, which fires the timers once the hook has
    // run, then takes this turn again. A yield or an exit holds no lock, and fires them here.
    // (docs/scheduler.md, "Timers".)
    const bool parking = current_ != nullptr &&
                         current_->state.load(std::memory_order_relaxed) == fiber_state::parked;
    if (parking) {
      if (sched_.timers_.next_deadline() != clock::time_point::max() &&
          sched_.timers_.due(clock::now())) {
        --tick_;
        return nullptr;
      }
    } else {
      poll_timers();
    }
    if (tick_ % (fairness_period * displaced_fairness_periods) == 0) {
      if (fiber* f = runq_.pop_oldest_displaced()) return f;
    }
    if (fiber* f = sched_.global_take(*this, 1)) return f;
    if (fiber* f = runq_.pop_queued()) return f;
  }
  if (fiber* f = runq_.pop()) return f;
  return sched_.global_take(*this, run_queue::capacity / 2);
}

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
    if (fiber* f = victim->runq_.steal_displaced_if(seen)) return f;
    if (victim->runq_.take_next_if(seen.next)) return seen.next;
  }
  return nullptr;
}

// Spinning a little longer before sleeping keeps spinning_ non-zero through the short gaps of
// a hand-off chain, so wakers skip the futex system call (Go's spinning Ms do the same in
// findrunnable). Returns as soon as some queue has work.
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

void worker::stop_spinning() noexcept {
  spinning_ = false;
  // The last spinner to find work wakes another, in case there is more (Go's resetspinning).
  if (sched_.spinning_.fetch_sub(1, std::memory_order_seq_cst) == 1) sched_.wake_one();
}

fiber* worker::find_runnable() noexcept {
  for (;;) {
    if (sched_.stopping_.load(std::memory_order_acquire)) return nullptr;
    poll_timers();
    fiber* f = pick_local();
    if (f == nullptr && sched_.workers_.size() > 1) {
      if (!spinning_) {
        // At most half the busy workers spin at once (Go's findrunnable). A heuristic, so
        // relaxed reads of the counts are enough.
        const int busy =
            static_cast<int>(sched_.workers_.size()) - sched_.idle_.load(std::memory_order_relaxed);
        if (2 * sched_.spinning_.load(std::memory_order_relaxed) < busy) {
          spinning_ = true;
          sched_.spinning_.fetch_add(1, std::memory_order_seq_cst);
        }
      }
      if (spinning_) {
        for (int round = 0; f == nullptr && round < steal_rounds; ++round) f = steal_work();
        if (f == nullptr) {
          spin_for_work();
          f = pick_local();
          if (f == nullptr) f = steal_work();
          if (f == nullptr) f = steal_stuck();
        }
      }
    }
    if (f != nullptr) {
      if (spinning_) stop_spinning();
      return f;
    }
    park_thread();
  }
}

void worker::park_thread() noexcept {
  // Relaxed: published to wakers by the idle_mu_ release below, before anyone can wake us.
  wake_word_.store(0, std::memory_order_relaxed);
  {
    std::lock_guard lock(sched_.idle_mu_);
    sched_.idle_list_.push_back(this);
    in_idle_list_ = true;
    sched_.idle_.fetch_add(1, std::memory_order_seq_cst);
  }
  if (spinning_) {
    spinning_ = false;
    sched_.spinning_.fetch_sub(1, std::memory_order_seq_cst);
  }
  // Dekker with wake_one(): it publishes work, light fence, then reads idle_ and spinning_; we
  // published ourselves idle, heavy fence, then look for work. One of the two sides sees the
  // other (docs/scheduler.md, "Asymmetric fences"). Timers have a pair of their own, below.
  heavy_fence();
  // The same fence pairs our finished counts with wait_for_fibers(), which announces itself,
  // fences, then sums them: either it sees our last finish, or we see it waiting and wake it.
  // Only if we finished a fiber since we last woke it: its snapshots since then have seen our
  // count (the epoch's release and acquire carry it), so a program whose main thread waits in
  // ~runtime() does not wake it at every park.
  if (sched_.fibers_awaited_.load(std::memory_order_relaxed)) {
    const std::uint64_t finished = tally_.finished.load(std::memory_order_relaxed);
    if (finished != finished_when_notified_) {
      finished_when_notified_ = finished;
      sched_.notify_fibers_waiter();
    }
  }
  if (!sched_.any_work() && !sched_.stopping_.load(std::memory_order_acquire)) {
    // A sleep cut short means work arrives in a stream too fine for our spin to bridge: a
    // spawning loop or a hand-off chain on another worker wakes us every few microseconds,
    // and each wake-up is a futex system call on the waker's path (7,000 per million spawns
    // at PROCS=2). Spin longer next time, up to max_idle_spin; a long sleep resets it, so a
    // worker woken now and then by sporadic work spins only idle_spin after each.
    const clock::time_point deadline = sched_.timers_.next_deadline();
    worker* no_one = nullptr;
    const bool timer_duty = deadline != clock::time_point::max() &&
                            sched_.timer_waiter_.compare_exchange_strong(no_one, this);
    if (timer_duty) {
      // Dekker with wake_for_timer(), which pushes a timer, light fence, reads timer_waiter_:
      // we wrote timer_waiter_, heavy fence, read the deadline again. Either it wakes us, or
      // we see its earlier deadline. (Reading the deadline only before the CAS, a timer
      // pushed in between went to wake_one(), which may wake another worker, and fired late.)
      heavy_fence();
      const clock::time_point until = std::min(deadline, sched_.timers_.next_deadline());
      // A timer's deadline, not a stream of work, ends this sleep: it leaves the spin alone,
      // or a fast ticker would keep this worker spinning between its ticks.
      futex_wait_until(wake_word_, 0, until);
      worker* self = this;
      sched_.timer_waiter_.compare_exchange_strong(self, nullptr);
    } else {
      const clock::time_point slept_from = clock::now();
      futex_wait(wake_word_, 0);
      const clock::duration slept = clock::now() - slept_from;
      idle_spin_ = slept < 2 * idle_spin_ ? std::min<clock::duration>(2 * idle_spin_, max_idle_spin)
                                          : clock::duration(idle_spin);
    }
  }
  std::lock_guard lock(sched_.idle_mu_);
  if (in_idle_list_) {
    auto& list = sched_.idle_list_;
    list.erase(std::find(list.begin(), list.end(), this));
    in_idle_list_ = false;
    sched_.idle_.fetch_sub(1, std::memory_order_seq_cst);
  } else {
    spinning_ = true;  // wake_one() took us off the list and counted us as spinning
  }
}

// ---- scheduler ----------------------------------------------------------------------------

scheduler::scheduler(const options& opts) : stacks_(opts.stack_size, opts.compact_stacks) {
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
  for (auto& w : workers_) w->start();
}

scheduler::~scheduler() {
  stop();
  // Exclusive: timers and tickers use this scheduler only while holding the binding shared
  // (timer_binding), so none is inside it from here on, and each finds null afterwards.
  const std::unique_lock lock(timer_binding_->mu);
  timer_binding_->sched = nullptr;
  timers_.detach_all();
}

new_fiber scheduler::create(std::size_t size, std::size_t align, void (*run)(void*)) {
  worker* w = worker::current();
  stack_cache* cache = w != nullptr ? w->stack_cache_for(*this) : nullptr;
  const stack_region stack = stacks_.acquire(cache);
  const auto low = reinterpret_cast<std::uintptr_t>(stack.low);
  const std::uintptr_t record = record_address(stack);
  const std::uintptr_t storage = (record - size) & ~(align - 1);
  const std::uintptr_t sp = storage & ~std::uintptr_t{15};
  // A compact stack is smaller than min_usable_stack; it keeps half of itself for frames.
  const std::size_t min_usable = stack.compact ? stack.size / 2 : min_usable_stack;
  if (size > stack.size || storage < low || sp - low < min_usable) {
    stacks_.release(cache, stack);
    throw std::invalid_argument(
        "goro::go: the callable and its arguments do not fit the fiber stack");
  }
  // Relaxed: the count happens-before the fiber starts, hence before its finish is counted
  // with release, which is what wait_for_fibers() acquires (docs/scheduler.md, "Counting live
  // fibers"). Ids need only be unique: a worker takes them from the shared counter in blocks,
  // as Go's Ps do (goidcache), so that a spawn writes no shared line.
  std::uint64_t id;
  if (cache != nullptr) {
    if (w->next_id_ == w->end_id_) {
      w->next_id_ = next_fiber_id.fetch_add(fiber_id_block, std::memory_order_relaxed);
      w->end_id_ = w->next_id_ + fiber_id_block;
    }
    id = w->next_id_++;
    auto& created = w->tally_.created;
    created.store(created.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
  } else {
    id = next_fiber_id.fetch_add(1, std::memory_order_relaxed);
    outside_.created.fetch_add(1, std::memory_order_relaxed);
  }
  // Every member named, so the record is written once (a bare `fiber{}` was zeroed with a
  // `rep stos` first: 5% of a spawn).
  auto* f = ::new (reinterpret_cast<void*>(record)) fiber{.ctx = {},
                                                          .sched = this,
                                                          .id = id,
                                                          .stack = stack,
                                                          .next = nullptr,
                                                          .run = run,
                                                          .task = reinterpret_cast<void*>(storage),
                                                          .state = fiber_state::created};
  make_context(f->ctx, stack.low, sp - low, fiber_main, f);
  return {f, f->task};
}

void scheduler::discard(fiber* f) noexcept {
  f->transition(fiber_state::created, fiber_state::finished);
  worker* w = worker::current();
  destroy_context(f->ctx);
  const stack_region stack = f->stack;
  stack_cache* cache = w != nullptr ? w->stack_cache_for(*this) : nullptr;
  stacks_.release(cache, stack);
  fiber_finished(cache != nullptr ? w : nullptr);
}

void scheduler::fiber_finished(worker* w) noexcept {
  if (w != nullptr) {
    // The waiter, if any, hears of it when this worker next parks (park_thread).
    auto& finished = w->tally_.finished;
    finished.store(finished.load(std::memory_order_relaxed) + 1, std::memory_order_release);
    return;
  }
  outside_.finished.fetch_add(1, std::memory_order_release);
  // Dekker with wait_for_fibers(), as in park_thread: count, fence, look for a waiter.
  std::atomic_thread_fence(std::memory_order_seq_cst);
  if (fibers_awaited_.load(std::memory_order_relaxed)) notify_fibers_waiter();
}

void scheduler::notify_fibers_waiter() noexcept {
  done_epoch_.fetch_add(1, std::memory_order_release);
  futex_wake(done_epoch_, INT32_MAX);
}

// Every finished count is read before every created count, each finished count with acquire:
// a fiber whose finish is seen has its creation, and the creations by it, seen too. If the sums
// match, every fiber was finished at the moment the last finished count was read; see
// docs/scheduler.md, "Counting live fibers".
bool scheduler::no_live_fibers() const noexcept {
  std::uint64_t finished = outside_.finished.load(std::memory_order_acquire);
  for (const auto& w : workers_) finished += w->tally_.finished.load(std::memory_order_acquire);
  std::uint64_t created = outside_.created.load(std::memory_order_relaxed);
  for (const auto& w : workers_) created += w->tally_.created.load(std::memory_order_relaxed);
  return created == finished;
}

void scheduler::wait_for_fibers() noexcept {
  for (;;) {
    const std::uint32_t epoch = done_epoch_.load(std::memory_order_acquire);
    // Dekker with a worker's last finish: it counts, heavy fence in park_thread, then looks
    // for us; we announce ourselves, fence, then count. One of the two sees the other.
    fibers_awaited_.store(true, std::memory_order_relaxed);
    std::atomic_thread_fence(std::memory_order_seq_cst);
    if (no_live_fibers()) break;
    futex_wait(done_epoch_, epoch);
  }
  // Relaxed: it only spares workers a wake-up; one that still sees it set bumps the epoch and
  // wakes no one.
  fibers_awaited_.store(false, std::memory_order_relaxed);
  // A thread that made the last fiber runnable may still be inside ready(); it is a few
  // instructions from done.
  while (external_wakers_.load(std::memory_order_acquire) != 0) std::this_thread::yield();
}

void scheduler::request_stop() noexcept {
  if (stopping_.exchange(true, std::memory_order_acq_rel)) return;
  for (auto& w : workers_) {
    w->wake_word_.store(1, std::memory_order_release);
    futex_wake(w->wake_word_);
  }
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
    const auto sp = reinterpret_cast<std::uintptr_t>(f->ctx.fctx);
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

void scheduler::ready(fiber* f) noexcept {
  f->transition(f->state.load(std::memory_order_relaxed) == fiber_state::created
                    ? fiber_state::created
                    : fiber_state::parked,
                fiber_state::runnable);
  worker* w = worker::current();
  if (w != nullptr && &w->sched_ == this) {
    // Timers firing in one batch wake fibers in deadline order; the next slot would run them
    // newest first. A timer's wake-up is no hand-off: the fiber queues behind the others.
    if (w->firing_timers_) {
      w->push_back(f);
    } else {
      w->make_next(f);
    }
    if (workers_.size() > 1) wake_one();  // with one worker, it is us, and running
    return;
  }
  // From outside this runtime: f may run, finish and let ~runtime proceed before this call
  // returns, so wait_for_fibers() also waits for external_wakers_ to drain.
  external_wakers_.fetch_add(1, std::memory_order_acq_rel);
  f->next = nullptr;
  global_push(f, f, 1);
  wake_one();
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

void scheduler::wake_one() noexcept {
  light_fence();  // see worker::park_thread
  // Relaxed loads after the fence: the fences, not the loads, carry the Dekker order.
  if (idle_.load(std::memory_order_relaxed) == 0) return;
  if (spinning_.load(std::memory_order_relaxed) != 0) return;  // a spinner will find the work
  int expected = 0;
  if (!spinning_.compare_exchange_strong(expected, 1, std::memory_order_seq_cst)) return;
  worker* w = nullptr;
  {
    std::lock_guard lock(idle_mu_);
    if (!idle_list_.empty()) {
      w = idle_list_.back();
      idle_list_.pop_back();
      w->in_idle_list_ = false;
      idle_.fetch_sub(1, std::memory_order_seq_cst);
    }
  }
  if (w == nullptr) {
    spinning_.fetch_sub(1, std::memory_order_seq_cst);
    return;
  }
  w->wake_word_.store(1, std::memory_order_release);
  futex_wake(w->wake_word_);
}

void scheduler::wake_for_timer() noexcept {
  light_fence();  // see worker::park_thread
  if (worker* w = timer_waiter_.load(std::memory_order_relaxed)) {
    w->wake_word_.store(1, std::memory_order_release);
    futex_wake(w->wake_word_);
    return;
  }
  wake_one();
}

void scheduler::add_timer(timer_entry& e) {
  if (timers_.push(e)) wake_for_timer();
}

// ---- free functions -----------------------------------------------------------------------

new_fiber fiber_create(scheduler& sched, std::size_t size, std::size_t align, void (*run)(void*)) {
  return sched.create(size, align, run);
}

void fiber_start(fiber* f) noexcept {
  worker* w = worker::current();
  if (w != nullptr && &w->sched() == f->sched && w->current_fiber() != nullptr) {
    w->run_child_first(f);
    return;
  }
  f->sched->ready(f);
}

void fiber_discard(fiber* f) noexcept { f->sched->discard(f); }

scheduler& current_or_default_scheduler() {
  worker* w = worker::current();
  scheduler& s = w != nullptr ? w->sched() : default_scheduler();
  // Only the default runtime stops while it can still be reached: at exit. A runtime of the
  // user's stops in its destructor, after its last fiber finished.
  if (s.stopped()) {
    throw std::logic_error(
        "goro: the default runtime has stopped: the process is exiting, and nothing would run "
        "a fiber or fire a timer (goro::go or a timer used from a static destructor or an "
        "atexit handler)");
  }
  return s;
}

}  // namespace goro::detail
