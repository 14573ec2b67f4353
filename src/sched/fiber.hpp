// SPDX-License-Identifier: Apache-2.0
// Layer: sched. May include: sched, stack, time, platform.
// A fiber: its record, kept at the top of its own stack, its state, and the counts of fibers
// created and finished that ~runtime() waits on. Creation, exit and the counting are in
// fiber.cpp; the design in docs/scheduler.md ("Fibers", "Counting live fibers").
//
// Invariants:
//   - A fiber is, at any moment, exactly one of: running on one worker; in one run queue, a
//     next slot or the global queue; parked (referenced only by what will unpark it); finished.
//   - A fiber's context (exec_context::fctx) is saved before anything can make it runnable:
//     the arrival hook of the switch that suspends it is the first place that may.
//   - A fiber's record lies at record_address(its stack), so its stack alone finds it.
//   - The fibers live (created, not yet finished) are the sum over the workers' counts
//     (sched_counters, counters.hpp) and scheduler::outside_ of created minus finished. Each
//     worker counts only on its own counters, so a spawn writes no shared cache line;
//     wait_for_fibers() sums them (docs/scheduler.md, "Counting live fibers").
//   - While a fiber is parked, waiting_on names what it waits on (set by the parking layer
//     before the switch, with wait_object and wait_since); otherwise it is stale. The
//     diagnostics (src/diag/, docs/diagnostics.md) read these, and site, with relaxed loads.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include "goro/detail/spawn_site.hpp"

#include "goro/detail/hardware.hpp"
#include "platform/context.hpp"
#include "sched/counters.hpp"
#include "stack/stack_pool.hpp"

namespace goro::detail {

class scheduler;

// Where a fiber is in its life. Every transition is checked (GORO_DCHECK) where it happens:
//   created -> running (first switch in) | finished (discarded before it started)
//   running -> parked (switch_away) | runnable (yield, or its child runs first) | finished
//   parked -> runnable (ready, or waiter::finish_park when the wake-up came first)
//   runnable -> running
// Relaxed: the state is written by whoever owns the fiber at that moment, and ownership passes
// with the synchronisation of the run queues, the waiter and the locks; the atomic only keeps
// a diagnostic read (a dump, a failed check) from being a data race.
// What a parked fiber, or a thread blocked in a goro call, waits on: one static descriptor per
// kind of wait, defined beside the code that parks (chan, sync, net...), so recording a wait
// costs a pointer store. A dump prints `what` and the waited-on object.
struct wait_reason {
  const char* what;           // "chan receive", "mutex lock", ... (Go's wait reasons)
  bool object_is_fd = false;  // the object is a descriptor number, not an address
  bool timed = false;         // ends by itself (a sleep): never part of a deadlock
  // Where set, says more of `object` than its address (a select's cases): writes at most
  // `size` bytes, NUL included, to `out`, reading only the object_size bytes at `object` (no
  // pointer in them is followed). For a fiber, the object lies on its stack, and the dump may
  // call this after the fiber woke (src/diag/describe.cpp): what it reads may then be anything.
  void (*describe)(const void* object, char* out, std::size_t size) noexcept = nullptr;
  std::size_t object_size = 0;
};

enum class fiber_state : std::uint8_t { created, runnable, running, parked, finished };

const char* to_string(fiber_state s) noexcept;

struct fiber {
  exec_context ctx;
  scheduler* sched;
  std::uint64_t id;
  stack_region stack;
  fiber* next = nullptr;  // link in the global queue
  void (*run)(void*);
  void* task;
  std::atomic<fiber_state> state;
  spawn_site site;                             // where go() was called
  std::atomic<const wait_reason*> waiting_on;  // see the invariants
  std::atomic<const void*> wait_object;        // the channel, mutex... or an fd
  std::atomic<std::uint64_t> wait_since;       // census.hpp's coarse_clock_ms when it parked

  // Moves the fiber from `from` to `to`, checking that it was in `from` (GORO_DCHECKS builds).
  // Inline: it runs on every switch.
  void transition([[maybe_unused]] fiber_state from, fiber_state to) noexcept {
#if defined(GORO_DCHECKS) && GORO_DCHECKS
    if (state.load(std::memory_order_relaxed) != from) transition_failed(from, to);
#endif
    state.store(to, std::memory_order_relaxed);
  }
  // created or runnable -> running: the worker is about to switch to it.
  void start_running() noexcept {
#if defined(GORO_DCHECKS) && GORO_DCHECKS
    const fiber_state s = state.load(std::memory_order_relaxed);
    if (s != fiber_state::created && s != fiber_state::runnable) {
      transition_failed(fiber_state::runnable, fiber_state::running);
    }
#endif
    // Then the switch waits out any walk of its stack (stack_walks, platform/context.hpp).
    state.store(fiber_state::running, std::memory_order_relaxed);
  }

 private:
  [[noreturn]] void transition_failed(fiber_state from, fiber_state to) const noexcept;
};

// Where a fiber's record goes on its stack: near the top, shifted down by a per-stack multiple
// of the cache line (cache colouring, as in Bonwick's slab allocator). Without it every fiber's
// record and hottest frames share one offset within a page, so thousands of parked fibers
// compete for the same few cache sets. Compact stacks get no shift: up to 31 lines would be
// most of a 2 KiB stack, and would make the room left depend on where the stack lies. They need
// none either, as the pool lays them an odd number of cache lines apart, so their tops already
// fall on every line offset within a page (stack_pool::compact_stack_granule).
// The gdb script (gdb/goro.py) computes the same, from the constants census.cpp publishes.
inline constexpr std::uintptr_t record_colours = 32;
inline std::uintptr_t record_address(const stack_region& stack) noexcept {
  constexpr std::uintptr_t line = cache_line_size;
  const auto low = reinterpret_cast<std::uintptr_t>(stack.low);
  const std::uintptr_t colour =
      stack.compact ? 0 : ((low / small_page_size) % record_colours) * line;
  return (low + stack.size - colour - sizeof(fiber)) & ~(alignof(fiber) - 1);
}

// Arrival hook of a finished fiber's last switch (worker::exit_fiber): frees its stack, which
// holds its record, and counts it finished.
void release_finished(void* arg) noexcept;

}  // namespace goro::detail
