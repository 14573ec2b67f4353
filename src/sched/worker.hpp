// SPDX-License-Identifier: Apache-2.0
// Layer: sched. May include: sched, stack, time, platform.
// A worker: one OS thread running fibers from its own run queue, the global queue and, when
// those are empty, the other workers' queues. The loop, the switches and stealing are in
// worker.cpp; parking the thread in idle.cpp. Design and proofs: docs/scheduler.md ("Run
// queues and placement", "Stealing, spinning and parking workers").
//
// Invariants:
//   - current_ is the fiber running on this worker's thread, or null while the worker's own
//     loop runs (main, find_runnable, park_thread).
//   - Only the worker's own thread writes current_, until_fair_turn_, fair_turns_,
//     firing_timers_, polling_, the polled list, rng_, idle_spin_, next_id_, end_id_, counts_
//     and its stack cache, and pushes to runq_.
//     Other threads take from runq_ (stealing), wake it through idle_slot_, and read counts_
//     (wait_for_fibers).
//   - Fiber ids in [next_id_, end_id_) were taken from the shared counter by this worker and
//     are its alone to give.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <thread>

#include "platform/context.hpp"
#include "platform/cpu.hpp"
#include "sched/fiber.hpp"
#include "sched/idle.hpp"
#include "sched/run_queue.hpp"
#include "sched/scheduler.hpp"
#include "sched/trace_buffer.hpp"
#include "stack/stack_canary.hpp"
#include "stack/stack_overflow.hpp"
#include "stack/stack_pool.hpp"

namespace goro::detail {

class worker {
 public:
  worker(scheduler& sched, unsigned index);

  // The worker running on the calling thread, or null on other threads.
  static worker* current() noexcept;

  void start();
  void join();

  fiber* current_fiber() const noexcept { return current_; }
  // True for the lone worker of a one-worker runtime with asymmetric fences: channel locks may
  // be biased to its thread (docs/channels.md, "The lock, biased to a lone worker").
  bool may_claim_bias() const noexcept { return may_claim_bias_; }
  scheduler& sched() noexcept { return sched_; }
  // Counts `e` on this worker. Only on the worker's own thread.
  void count(sched_event e) noexcept { counts_.add(e); }
  // This worker's trace events (trace_buffer.hpp).
  trace_buffer& trace() noexcept { return trace_; }

  // Called on the running fiber: switches to the next runnable fiber (or the worker's own
  // loop); `hook` runs once the fiber is saved. Returns when the fiber is resumed.
  void switch_away(arrival_hook hook, void* arg) noexcept;
  [[noreturn]] void exit_fiber() noexcept;
  // Called on the running fiber of a runtime stopped at exit: parks it for good (Go's
  // goroutines end with the process), and the worker's loop ends.
  [[noreturn]] void abandon_current() noexcept;
  // Called on the running fiber: lets other local fibers run first, if there are any.
  void yield_current() noexcept;

  // This worker's stack cache if `s` is its scheduler, else null.
  stack_cache* stack_cache_for(scheduler& s) noexcept { return &s == &sched_ ? &stacks_ : nullptr; }

  // Called on the running fiber: switches to the new fiber `child` at once; the caller runs
  // next on this worker unless stolen first.
  void run_child_first(fiber* child) noexcept;
  // Where run_child_first's parent waits for its turn (its arrival hook).
  void queue_parent(fiber* parent) noexcept;

  // Puts f in the next slot; what it displaces goes to the displaced ring, or else queues.
  // Inline: every hand-off (a wake-up, a spawn) passes here.
  void make_next(fiber* f) noexcept {
    fiber* const displaced = runq_.set_next(f);
    next_is_parent_ = false;
    if (displaced != nullptr && !runq_.push_displaced(displaced)) push_back(displaced);
  }
  void push_back(fiber* f) noexcept;
  // True while this worker polls for I/O: ready() then collects the fibers it makes runnable
  // (add_polled), to be spread by inject_polled().
  bool polling() const noexcept { return polling_; }
  void add_polled(fiber* f) noexcept;

 private:
  friend class scheduler;

  // How long a spinning worker keeps looking before it sleeps: idle_spin, doubled up to
  // max_idle_spin each time a sleep ends sooner than twice the current spin (see
  // sleep_until_woken).
  static constexpr std::chrono::microseconds idle_spin{50};
  static constexpr std::chrono::microseconds max_idle_spin{1000};

  // worker.cpp: the loop, finding work, stealing.
  void main() noexcept;
  // The fiber to run next from this worker's own queues and the global queue, or null
  // (stopping, a due timer a parking fiber must not fire, or nothing there). Inline: on most
  // switches it takes the next slot's fiber with no fairness turn due, and as a call it cost
  // 39 more instructions per pingpong round trip (callgrind); pick_fair and pick_after_next,
  // out of line, do the rest.
  fiber* pick_local() noexcept {
    // Stopping: hand control back to the worker loop at every scheduling point, so fibers
    // that yield or hand off to each other forever cannot keep the worker from exiting.
    if (sched_.stopping_.load(std::memory_order_relaxed)) [[unlikely]]
      return nullptr;
    if (--until_fair_turn_ == 0) [[unlikely]]
      return pick_fair();
    if (fiber* f = runq_.pop_next()) [[likely]]
      return f;
    return pick_after_next();
  }
  fiber* pick_fair() noexcept;
  fiber* pick_after_next() noexcept;
  fiber* find_runnable() noexcept;
  fiber* steal_work() noexcept;
  fiber* steal_stuck() noexcept;
  void spin_for_work() noexcept;
  void poll_timers() noexcept;
  bool poll_io() noexcept;
  bool io_waiters() const noexcept;
  void inject_polled() noexcept;
  // Fatal if the running fiber f's stack overflowed. Inline: every switch away passes here
  // (14 instructions per switch as a call, callgrind).
  void check_stack(const fiber& f) const noexcept {
    const auto* sp = static_cast<const std::byte*>(stack_pointer());
    if (sp < f.stack.low || sp > f.stack.low + f.stack.size) [[unlikely]] {
      report_stack_overflow(f.id, f.site);
    }
    // A compact stack has no guard page; a fiber that ran below it has overwritten its canary,
    // even if it has since returned. The stack below it may already be damaged.
    if (f.stack.compact && !stack_canary_intact(f.stack.low)) [[unlikely]] {
      report_stack_overflow(f.id, f.site);
    }
  }
  // Called at every switch on this worker, just before it, with the fiber arriving (null: the
  // worker's loop): counts a run slice that begins. Returns true if a trace runs: the caller
  // then switches through traced_switch (or traced_exit) instead of switch_context. Relaxed:
  // a switch that misses a start or a stop by a moment is traced or not; the buffer's lock
  // decides what is kept (trace_buffer.hpp).
  bool switching_to(const fiber* to) noexcept {
    if (to != nullptr) counts_.add(sched_event::switches);
    return trace_on.load(std::memory_order_relaxed);
  }
  // Records the switch from `from` to `to` (null: the worker's loop; `spawned`: `to` is
  // `from`'s new child, run first), then makes it. Out of line and called last, so that the
  // untraced path keeps its tail call and needs no frame.
  [[gnu::noinline, gnu::cold]] void traced_switch(const fiber* from, const fiber* to, bool spawned,
                                                  exec_context& save, exec_context& load,
                                                  arrival_hook hook, void* arg) noexcept;
  [[noreturn, gnu::noinline, gnu::cold]] void traced_exit(const fiber* from, const fiber* to,
                                                          exec_context& save, exec_context& load,
                                                          arrival_hook hook, void* arg) noexcept;

  // idle.cpp: parking the thread, in steps.
  void park_thread() noexcept;
  void report_finished_fibers() noexcept;
  void sleep() noexcept;
  void sleep_on_timer_duty(clock::time_point deadline) noexcept;
  void sleep_in_poller(io_poller& poller, clock::time_point until) noexcept;
  void sleep_until_woken() noexcept;

  scheduler& sched_;
  std::thread thread_;
  exec_context ctx_;
  fiber* current_ = nullptr;
  // Scheduling decisions left until the next fairness turn, and the turns taken (pick_local):
  // a countdown, not a count modulo 61, which cost a multiply and a shift at every decision.
  std::uint32_t until_fair_turn_;
  std::uint32_t fair_turns_ = 0;
  bool firing_timers_ = false;  // inside poll_timers: ready() queues fibers in firing order
  // The next slot's fiber is a spawning parent (queue_parent), not one a hand-off woke. A hint:
  // a thief may have taken that fiber since.
  bool next_is_parent_ = false;
  bool polling_ = false;          // inside a poll for I/O: ready() collects fibers (add_polled)
  fiber* polled_head_ = nullptr;  // what the poll made runnable, linked through fiber::next
  fiber* polled_tail_ = nullptr;
  std::size_t polled_count_ = 0;
  std::uint64_t rng_;
  clock::duration idle_spin_;    // how long spin_for_work looks; adapted by sleep_until_woken
  bool may_claim_bias_ = false;  // see may_claim_bias(); set before the thread starts
  std::uint64_t next_id_ = 0;    // fiber ids [next_id_, end_id_) are this worker's to give
  std::uint64_t end_id_ = 0;
  idle_slot idle_slot_;  // its place in sched_.idle_: the futex word it sleeps on, its flags
  run_queue runq_;
  stack_cache stacks_;
  sched_counters counts_;                     // written only by this worker's thread
  trace_buffer trace_;                        // its events while a trace runs
  std::atomic<bool> loop_done_{false};        // main() has left its loop
  std::uint64_t finished_when_notified_ = 0;  // counts_.finished when it last woke the waiter
  // Bumped by this worker as it falls asleep with no timer duty and as it wakes: odd while
  // asleep (scheduler::quiescent, for the deadlock detector).
  std::atomic<std::uint64_t> sleep_seq_{0};
};

// The calling thread's worker; set by worker::main. Read it through worker::current(), or
// directly only where no fiber switch can intervene (worker::main, on its own thread's stack).
extern thread_local worker* tls_worker __asm__("goro_tls_worker")
    __attribute__((tls_model("initial-exec"), visibility("hidden")));

// A fiber may resume on another thread, so no read of tls_worker may be reused across a
// switch. Where the platform has it (platform/cpu.hpp), the read is one asm statement,
// re-executed wherever it is written; it runs in a few of every hand-off's paths, where the
// out-of-line call it replaces cost 6-10% of pingpong and spawn. Elsewhere, a call the compiler
// cannot see into (worker.cpp). Initial-exec TLS marks a shared libgoro (or a shared object
// linking the static one) DF_STATIC_TLS: dlopen() of it needs 8 bytes of glibc's surplus static
// TLS, which is there unless other such libraries used it up.
#if GORO_TLS_READ_ASM
inline worker* worker::current() noexcept {
  worker* w;
  GORO_TLS_READ(w, "goro_tls_worker");
  return w;
}
#endif

// Traces that the running fiber made the parked fiber `id` runnable (waiter::unpark), if a
// trace runs. A wake-up from a plain thread or a worker's loop (a timer) has no slice to start
// from, and is not traced.
void trace_wake(std::uint64_t id) noexcept;

// Counts `e` for the runtime of the calling worker (runtime_metrics). A plain thread's events
// are not counted: a channel belongs to no runtime, and the thread to none either.
inline void count_event(sched_event e) noexcept {
  if constexpr (metrics_enabled) {
    if (worker* w = worker::current()) w->count(e);
  }
}

}  // namespace goro::detail
