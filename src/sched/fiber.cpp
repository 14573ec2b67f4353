// SPDX-License-Identifier: Apache-2.0
// Layer: sched. May include: sched, stack, time, platform.
// A fiber's life: its state's checked transitions, creation (the record and task at the top of
// a fresh stack, ids in blocks per worker), exit and discard, the counts of live fibers that
// ~runtime() waits on, and the entry points go() uses (goro/detail/spawn.hpp). Invariants in
// fiber.hpp; design and proofs in docs/scheduler.md ("Fibers", "Counting live fibers").
#include "sched/fiber.hpp"

#include <cinttypes>
#include <exception>
#include <stdexcept>
#include <string>
#include <thread>

#include "goro/detail/hardware.hpp"
#include "platform/fatal.hpp"
#include "platform/futex.hpp"
#include "sched/census.hpp"
#include "sched/scheduler.hpp"
#include "sched/worker.hpp"
#include "stack/stack_watermark.hpp"

namespace goro::detail {

// ---- state --------------------------------------------------------------------------------

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

void fiber::transition_failed(fiber_state from, fiber_state to) const noexcept {
  fatal("fiber %" PRIu64 " is %s, expected %s on the way to %s", id,
        to_string(state.load(std::memory_order_relaxed)), to_string(from), to_string(to));
}

// ---- creation -----------------------------------------------------------------------------

namespace {

alignas(cache_line_size) std::atomic<std::uint64_t> next_fiber_id{1};
constexpr std::uint64_t fiber_id_block = 256;  // ids a worker takes from next_fiber_id at once

// Room a fiber's stack must keep below its record and task.
constexpr std::size_t min_usable_stack = 8 * 1024;

// What a fiber's context runs: its task, then its exit.
[[noreturn]] void fiber_main(void* arg) noexcept {
  auto* f = static_cast<fiber*>(arg);
  try {
    f->run(f->task);
  } catch (const std::exception& e) {
    fatal("exception escaped fiber %" PRIu64 ": %s", f->id, e.what());
  } catch (...) {
    fatal("exception escaped fiber %" PRIu64 ": not a std::exception", f->id);
  }
  worker::current()->exit_fiber();
}

}  // namespace

new_fiber scheduler::create(std::size_t size, std::size_t align, void (*run)(void*),
                            spawn_site site) {
  worker* w = worker::current();
  stack_cache* cache = w != nullptr ? w->stack_cache_for(*this) : nullptr;
  const stack_region stack = stacks_.acquire(cache);
  const auto low = reinterpret_cast<std::uintptr_t>(stack.low);
  const std::uintptr_t record = record_address(stack);
  if (stack_watermark_) {
    // Below the record only: a dump from another thread reads the record of every stack,
    // finished fibers' too (for_each_fiber), and paint there made it follow a painted word as
    // a pointer (HttpAdversarialDiag.ConcurrentFromThreadsWhileFibersComeAndGo, a SEGV). The
    // record's old and new values are both readable.
    stack_region below = stack;
    below.size = record - low;
    paint_stack(below);
  }
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
    auto& created = w->counts_.created;
    created.store(created.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
  } else {
    id = next_fiber_id.fetch_add(1, std::memory_order_relaxed);
    outside_.created.fetch_add(1, std::memory_order_relaxed);
  }
  // Every member named, so the record is written once (a bare `fiber{}` was zeroed with a
  // `rep stos` first: 5% of a spawn), its context too (it was zeroed, then set).
  auto* f = ::new (reinterpret_cast<void*>(record))
      fiber{.ctx = make_context(stack.low, sp - low, fiber_main, reinterpret_cast<void*>(record)),
            .sched = this,
            .id = id,
            .stack = stack,
            .next = nullptr,
            .run = run,
            .task = reinterpret_cast<void*>(storage),
            .state = fiber_state::created,
            .site = site,
            .waiting_on = nullptr,
            .wait_object = nullptr,
            .wait_since = 0};
  return {f, f->task};
}

// ---- exit and discard ---------------------------------------------------------------------

// The arrival hook of a finished fiber's last switch (exit_fiber): it runs on the next
// context's stack once the fiber is saved, so its stack is no longer in use.

void release_finished(void* arg) noexcept {
  auto* f = static_cast<fiber*>(arg);
  scheduler& s = *f->sched;
  worker* w = worker::current();
  destroy_context(f->ctx);
  const stack_region stack = f->stack;  // f lives on that stack
  if (s.stack_watermark()) record_stack_use(f->site, stack.size, stack_used(stack));
  s.stacks().release(w->stack_cache_for(s), stack);
  s.fiber_finished(w);
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

// ---- counting live fibers -----------------------------------------------------------------

void scheduler::fiber_finished(worker* w) noexcept {
  if (w != nullptr) {
    // The waiter, if any, hears of it when this worker next parks (park_thread).
    auto& finished = w->counts_.finished;
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
  for (const auto& w : workers_) finished += w->counts_.finished.load(std::memory_order_acquire);
  std::uint64_t created = outside_.created.load(std::memory_order_relaxed);
  for (const auto& w : workers_) created += w->counts_.created.load(std::memory_order_relaxed);
  return created == finished;
}

void scheduler::wait_for_fibers() noexcept {
  static constexpr wait_reason runtime_wait{"~runtime waiting for its fibers"};
  for (;;) {
    const std::uint32_t epoch = done_epoch_.load(std::memory_order_acquire);
    // Dekker with a worker's last finish: it counts, heavy fence in park_thread, then looks
    // for us; we announce ourselves, fence, then count. One of the two sees the other.
    fibers_awaited_.store(true, std::memory_order_relaxed);
    std::atomic_thread_fence(std::memory_order_seq_cst);
    if (no_live_fibers()) break;
    const blocked_scope blocked(&runtime_wait, this, &done_epoch_, epoch);
    futex_wait(done_epoch_, epoch);
  }
  // Relaxed: it only spares workers a wake-up; one that still sees it set bumps the epoch and
  // wakes no one.
  fibers_awaited_.store(false, std::memory_order_relaxed);
  // A thread that made the last fiber runnable may still be inside ready(); it is a few
  // instructions from done.
  while (external_wakers_.load(std::memory_order_acquire) != 0) std::this_thread::yield();
}

// ---- free functions -----------------------------------------------------------------------

new_fiber fiber_create(scheduler& sched, std::size_t size, std::size_t align, void (*run)(void*),
                       spawn_site site) {
  return sched.create(size, align, run, site);
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

void refuse_stopped_runtime(scheduler& s, const char* operation) {
  worker* w = worker::current();
  if (w != nullptr && &w->sched() == &s && !s.exiting_on(w)) w->abandon_current();
  throw std::logic_error(std::string(operation) +
                         ": the default runtime has stopped: the process is exiting, and nothing "
                         "would run a fiber or fire a timer (goro used from a static destructor "
                         "or an atexit handler?)");
}

scheduler& current_or_default_scheduler() {
  worker* w = worker::current();
  scheduler& s = w != nullptr ? w->sched() : default_scheduler();
  // Only the default runtime stops while it can still be reached: at exit. A runtime of the
  // user's stops in its destructor, after its last fiber finished.
  if (s.stopped()) refuse_stopped_runtime(s, "goro");
  return s;
}

}  // namespace goro::detail
