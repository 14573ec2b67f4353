// SPDX-License-Identifier: Apache-2.0
// Layer: sched. May include: sched, stack, time, platform.
// The census (census.hpp): registration of schedulers and blocked plain threads.
#include "sched/census.hpp"

#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <new>

#include "sched/scheduler.hpp"
#include "sched/worker.hpp"

namespace goro::detail {

namespace {
// The census's storage, at namespace scope so that the debugger's root below can name it. Zeros
// (no schedulers, no blocked threads) until census::get() first runs.
alignas(census) unsigned char census_storage[sizeof(census)];
}  // namespace

census& census::get() noexcept {
  // Never destroyed (threads block during exit), and made without an allocation that could fail.
  static census* const instance = ::new (static_cast<void*>(census_storage)) census;
  return *instance;
}

// ---- the debugger's root ----------------------------------------------------------------
//
// gdb/goro.py (`info goro-fibers`, `goro-fiber N bt`; docs/diagnostics.md, "gdb script") walks
// the same path as scheduler::for_each_fiber, in a live process or a core file, reading memory
// only: the census's schedulers, each one's stack pool's slabs, the record at the top of each
// stack. It finds the path's offsets here rather than in the debug information, so it works on
// a build without -g (a release libgoro.a), which still has the symbol table. One constant
// object, made at compile time: nothing runs for it, and no fast path changes. Every field is
// one 64-bit word; `version` changes whenever a field is added, removed or changes meaning.
// A std::vector is read as its first two words (begin, end), as libstdc++ and libc++ lay it.

}  // namespace goro::detail

extern "C" {
// The layout, version 1. Its order is gdb/goro.py's LAYOUT_FIELDS.
struct goro_debugger_layout_v1 {
  std::uint64_t version;  // 1
  std::uint64_t words;    // sizeof(this) / 8
  const void* census;
  const void* coarse_clock_ms;
  std::uint64_t census_schedulers;  // std::vector<scheduler*>
  std::uint64_t census_blocked;     // blocked_thread*
  std::uint64_t scheduler_workers;  // std::vector<std::unique_ptr<worker>>
  std::uint64_t scheduler_stacks;   // stack_pool
  std::uint64_t pool_slabs;         // std::vector<stack_pool::slab>
  std::uint64_t slab_size;
  std::uint64_t slab_base;
  std::uint64_t pool_stride;
  std::uint64_t pool_below;
  std::uint64_t pool_per_slab;
  std::uint64_t pool_stack_size;
  std::uint64_t pool_compact;  // bool
  std::uint64_t colour_line;   // record_address's constants
  std::uint64_t colour_page;
  std::uint64_t colours;
  std::uint64_t fiber_size;
  std::uint64_t fiber_align;
  std::uint64_t fiber_fctx;  // void*, the saved registers of a suspended fiber
  std::uint64_t fiber_sched;
  std::uint64_t fiber_id;
  std::uint64_t fiber_stack_low;
  std::uint64_t fiber_stack_size;
  std::uint64_t fiber_state;  // one byte: fiber_state's values, created 0 ... finished 4
  std::uint64_t fiber_site;
  std::uint64_t site_is_pointer;  // 1: the site points at {file, function, line}; 0: it is one
  std::uint64_t site_file;        // within {file, function, line}
  std::uint64_t site_function;
  std::uint64_t site_line;  // 32 bits
  std::uint64_t fiber_waiting_on;
  std::uint64_t fiber_wait_object;
  std::uint64_t fiber_wait_since;
  std::uint64_t reason_what;
  std::uint64_t reason_object_is_fd;  // bool
  std::uint64_t blocked_why;
  std::uint64_t blocked_object;
  std::uint64_t blocked_tid;  // long
  std::uint64_t blocked_since;
  std::uint64_t blocked_next;
};
}

namespace goro::detail {
namespace {

static_assert(static_cast<int>(fiber_state::created) == 0 &&
                  static_cast<int>(fiber_state::runnable) == 1 &&
                  static_cast<int>(fiber_state::running) == 2 &&
                  static_cast<int>(fiber_state::parked) == 3 &&
                  static_cast<int>(fiber_state::finished) == 4,
              "gdb/goro.py names fiber_state's values: change its STATES and the layout version");
static_assert(sizeof(fiber_state) == 1);
static_assert(sizeof(void*) == 8, "the layout is written in 64-bit words");
#if !defined(__cpp_lib_source_location)
static_assert(sizeof(spawn_site) == 3 * sizeof(void*), "spawn_site is {file, function, line}");
#endif

}  // namespace

// offsetof on a class that is not standard-layout (scheduler, stack_pool) is conditionally
// supported; GCC and Clang give the offset of any class without virtual bases, as these are.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Winvalid-offsetof"
struct debugger_layout {
  static constexpr goro_debugger_layout_v1 make() noexcept {
    goro_debugger_layout_v1 l{};
    l.version = 1;
    l.words = sizeof(goro_debugger_layout_v1) / sizeof(std::uint64_t);
    l.census = census_storage;
    l.coarse_clock_ms = &coarse_clock_ms;
    l.census_schedulers = offsetof(census, schedulers_);
    l.census_blocked = offsetof(census, blocked_);
    l.scheduler_workers = offsetof(scheduler, workers_);
    l.scheduler_stacks = offsetof(scheduler, stacks_);
    l.pool_slabs = offsetof(stack_pool, slabs_);
    l.slab_size = sizeof(stack_pool::slab);
    l.slab_base = offsetof(stack_pool::slab, base);
    l.pool_stride = offsetof(stack_pool, layout_) + offsetof(stack_pool::slab_layout, stride);
    l.pool_below = offsetof(stack_pool, layout_) + offsetof(stack_pool::slab_layout, below);
    l.pool_per_slab = offsetof(stack_pool, layout_) + offsetof(stack_pool::slab_layout, per_slab);
    l.pool_stack_size = offsetof(stack_pool, stack_size_);
    l.pool_compact = offsetof(stack_pool, compact_);
    l.colour_line = cache_line_size;
    l.colour_page = small_page_size;
    l.colours = record_colours;
    l.fiber_size = sizeof(fiber);
    l.fiber_align = alignof(fiber);
    l.fiber_fctx = offsetof(fiber, ctx) + offsetof(exec_context, fctx);
    l.fiber_sched = offsetof(fiber, sched);
    l.fiber_id = offsetof(fiber, id);
    l.fiber_stack_low = offsetof(fiber, stack) + offsetof(stack_region, low);
    l.fiber_stack_size = offsetof(fiber, stack) + offsetof(stack_region, size);
    l.fiber_state = offsetof(fiber, state);
    l.fiber_site = offsetof(fiber, site);
#if defined(__cpp_lib_source_location)
    // What __builtin_source_location points at (its layout is the compiler's, fixed):
    // file, function, line, column.
    l.site_is_pointer = 1;
#else
    l.site_is_pointer = 0;
#endif
    l.site_file = 0;
    l.site_function = sizeof(void*);
    l.site_line = 2 * sizeof(void*);
    l.fiber_waiting_on = offsetof(fiber, waiting_on);
    l.fiber_wait_object = offsetof(fiber, wait_object);
    l.fiber_wait_since = offsetof(fiber, wait_since);
    l.reason_what = offsetof(wait_reason, what);
    l.reason_object_is_fd = offsetof(wait_reason, object_is_fd);
    l.blocked_why = offsetof(blocked_thread, why);
    l.blocked_object = offsetof(blocked_thread, object);
    l.blocked_tid = offsetof(blocked_thread, tid);
    l.blocked_since = offsetof(blocked_thread, since);
    l.blocked_next = offsetof(blocked_thread, next);
    return l;
  }
};
#pragma GCC diagnostic pop

}  // namespace goro::detail

// The root itself: the gdb script finds it by this name in the symbol table, so it has C
// linkage, default visibility, and is kept even where nothing in the program refers to it.
extern "C" __attribute__((visibility("default"),
                          used)) constinit const goro_debugger_layout_v1 goro_debugger_layout =
    goro::detail::debugger_layout::make();

namespace goro::detail {

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
  // First: the hook starts the monitor, which sets the coarse clock read below (else a thread
  // blocked before any runtime would read 0, and show "0.0 s" however long it waits). Once the
  // monitor runs, the hook is one load of a once_flag.
  if (auto* hook = thread_blocked_hook_.load(std::memory_order_acquire)) hook();
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
