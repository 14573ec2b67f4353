// SPDX-License-Identifier: Apache-2.0
// Layer: sched. May include: sched, stack, time, platform.
// The M:N scheduler: fibers, workers and the runtime-wide state they share. The design, the
// spinning and parking protocol and its proof are in docs/scheduler.md.
//
// Invariants:
//   - A fiber is, at any moment, exactly one of: running on one worker; in one run queue, a
//     next slot or the global queue; parked (referenced only by what will unpark it); finished.
//   - A fiber's context (exec_context::fctx) is saved before anything can make it runnable:
//     the arrival hook of the switch that suspends it is the first place that may.
//   - spinning_ counts workers looking for work that have not yet parked; idle_ counts workers
//     in idle_list_. A worker woken by wake_one() starts out spinning, counted by its waker.
//   - The fibers live (created, not yet finished) are the sum over the workers' tallies and
//     outside_ of created minus finished. Each worker counts only on its own tally, so a spawn
//     writes no shared cache line; wait_for_fibers() sums them (docs/scheduler.md, "Counting
//     live fibers").
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "goro/detail/spawn.hpp"
#include "goro/detail/timer_entry.hpp"
#include "goro/options.hpp"
#include "platform/context.hpp"
#include "sched/run_queue.hpp"
#include "stack/stack_pool.hpp"
#include "time/timer_heap.hpp"

namespace goro::detail {

class worker;

// Fibers created and finished on one worker (or, for scheduler::outside_, on no worker of the
// scheduler). Both counts only grow. A tally has a cache line to itself: its worker writes it on
// every spawn and exit, and no one else touches it until a runtime is destroyed.
struct fiber_tally {
  alignas(64) std::atomic<std::uint64_t> created{0};
  std::atomic<std::uint64_t> finished{0};
};

// Where a fiber is in its life. Every transition is checked (GORO_DCHECK) where it happens:
//   created -> running (first switch in) | finished (discarded before it started)
//   running -> parked (switch_away) | runnable (yield, or its child runs first) | finished
//   parked -> runnable (ready, or waiter::finish_park when the wake-up came first)
//   runnable -> running
// Relaxed: the state is written by whoever owns the fiber at that moment, and ownership passes
// with the synchronisation of the run queues, the waiter and the locks; the atomic only keeps
// a diagnostic read (a dump, a failed check) from being a data race.
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

  // Moves the fiber from `from` to `to`, checking that it was in `from`.
  void transition(fiber_state from, fiber_state to) noexcept;
  // created or runnable -> running: the worker is about to switch to it.
  void start_running() noexcept;
};

class scheduler {
 public:
  explicit scheduler(const options& opts);
  ~scheduler();  // stops the workers; REQUIRES: no fibers live, or abandon() called
  scheduler(const scheduler&) = delete;
  scheduler& operator=(const scheduler&) = delete;

  std::size_t worker_count() const noexcept { return workers_.size(); }
  std::size_t stack_size() const noexcept { return stacks_.stack_size(); }

  new_fiber create(std::size_t size, std::size_t align, void (*run)(void*));
  void discard(fiber* f) noexcept;

  // Makes `f` runnable: next on the calling worker if it belongs to this scheduler, else on
  // the global queue.
  void ready(fiber* f) noexcept;

  // Blocks the calling thread until every fiber has finished.
  void wait_for_fibers() noexcept;
  // Stops the workers at their next scheduling point, abandoning fibers still parked, and
  // joins them.
  void stop() noexcept;
  // The default runtime's part of process exit (docs/scheduler.md, "Process exit"): asks every
  // worker to stop at its next scheduling point and detaches them, waiting for none, so a fiber
  // that computes or sits in a system call cannot hold the process up. In ASan builds it then
  // tells LeakSanitizer that the abandoned fibers' stacks are live, once the workers it can
  // wait for have stopped. May run on one of the scheduler's own fibers (std::exit there).
  void stop_at_exit() noexcept;
  // True once stop() or stop_at_exit() has begun: nothing will run a new fiber or fire a timer.
  bool stopped() const noexcept { return stopping_.load(std::memory_order_acquire); }

  // Queues `e` (idle) to fire at e.when, waking a worker to watch it if it is the earliest.
  void add_timer(timer_entry& e);
  // True if `e` was queued and now will not fire; waits out a fire in progress.
  bool remove_timer(timer_entry& e) noexcept { return timers_.remove(e); }
  // What a timer or ticker made on this runtime holds of it (see timer_binding).
  const std::shared_ptr<timer_binding>& binding() const noexcept { return timer_binding_; }

  stack_pool& stacks() noexcept { return stacks_; }
  // Counts a finished fiber on `w`, which must be this scheduler's worker, or null off them.
  void fiber_finished(worker* w) noexcept;

 private:
  friend class worker;

  void global_push(fiber* first, fiber* last, std::size_t n) noexcept;
  fiber* global_take(worker& w, std::size_t max) noexcept;
  bool any_work() const noexcept;
  void wake_one() noexcept;
  void wake_for_timer() noexcept;
  void request_stop() noexcept;
  void report_abandoned_stacks_as_roots(bool workers_stopped);
  bool no_live_fibers() const noexcept;
  void notify_fibers_waiter() noexcept;

  std::vector<std::unique_ptr<worker>> workers_;

  mutable std::mutex global_mu_;
  fiber* global_head_ = nullptr;  // GUARDED_BY(global_mu_)
  fiber* global_tail_ = nullptr;  // GUARDED_BY(global_mu_)
  std::atomic<std::size_t> global_size_{0};

  std::atomic<int> spinning_{0};
  std::atomic<int> idle_{0};
  std::mutex idle_mu_;
  std::vector<worker*> idle_list_;  // GUARDED_BY(idle_mu_)
  std::atomic<worker*> timer_waiter_{nullptr};

  std::atomic<bool> stopping_{false};
  std::atomic<worker*> exiting_on_{nullptr};  // the worker whose fiber ran stop_at_exit()
  fiber_tally outside_;  // fibers created or discarded off this scheduler's workers
  alignas(64) std::atomic<int> external_wakers_{
      0};                                    // ready() calls from outside the runtime in progress
  std::atomic<bool> fibers_awaited_{false};  // wait_for_fibers() is waiting
  std::atomic<std::uint32_t> done_epoch_{0};

  timer_heap timers_;
  // Cleared, under its lock, by ~scheduler.
  std::shared_ptr<timer_binding> timer_binding_ = std::make_shared<timer_binding>(this);
  stack_pool stacks_;
};

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

  // Called on the running fiber: switches to the next runnable fiber (or the worker's own
  // loop); `hook` runs once the fiber is saved. Returns when the fiber is resumed.
  void switch_away(arrival_hook hook, void* arg) noexcept;
  [[noreturn]] void exit_fiber() noexcept;
  // Called on the running fiber: lets other local fibers run first, if there are any.
  void yield_current() noexcept;

  // This worker's stack cache if `s` is its scheduler, else null.
  stack_cache* stack_cache_for(scheduler& s) noexcept { return &s == &sched_ ? &stacks_ : nullptr; }

  // Called on the running fiber: switches to the new fiber `child` at once; the caller runs
  // next on this worker unless stolen first.
  void run_child_first(fiber* child) noexcept;

  void make_next(fiber* f) noexcept;
  void push_back(fiber* f) noexcept;

 private:
  friend class scheduler;

  void main() noexcept;
  fiber* pick_local() noexcept;
  fiber* find_runnable() noexcept;
  fiber* steal_work() noexcept;
  fiber* steal_stuck() noexcept;
  void spin_for_work() noexcept;
  void park_thread() noexcept;
  void stop_spinning() noexcept;
  void poll_timers() noexcept;
  void check_stack(const fiber& f) const noexcept;

  scheduler& sched_;
  std::thread thread_;
  exec_context ctx_;
  fiber* current_ = nullptr;
  std::uint32_t tick_ = 0;
  bool firing_timers_ = false;  // inside poll_timers: ready() queues fibers in firing order
  std::uint64_t rng_;
  clock::duration idle_spin_;  // how long spin_for_work looks; adapted by park_thread
  bool spinning_ = false;
  bool in_idle_list_ = false;    // GUARDED_BY(sched_.idle_mu_)
  bool may_claim_bias_ = false;  // see may_claim_bias(); set before the thread starts
  std::uint64_t next_id_ = 0;    // fiber ids [next_id_, end_id_) are this worker's to give
  std::uint64_t end_id_ = 0;
  std::atomic<std::uint32_t> wake_word_{0};
  run_queue runq_;
  stack_cache stacks_;
  fiber_tally tally_;                         // written only by this worker's thread
  std::atomic<bool> loop_done_{false};        // main() has left its loop
  std::uint64_t finished_when_notified_ = 0;  // tally_.finished when it last woke the waiter
};

// The calling thread's worker; set by worker::main. Read it through worker::current(), or
// directly only where no fiber switch can intervene (worker::main, on its own thread's stack).
extern thread_local worker* tls_worker __asm__("goro_tls_worker")
    __attribute__((tls_model("initial-exec"), visibility("hidden")));

// A fiber may resume on another thread, so no read of tls_worker, nor of the thread pointer it
// is found from, may be reused across a switch; compilers treat both as fixed for a function's
// whole run. On x86-64 ELF the read is one asm statement (initial-exec TLS: the variable's
// offset from the GOT, then a load through %fs), re-executed wherever it is written: volatile,
// so never merged with an earlier one, and clobbering memory, so never moved across a call that
// may touch memory, as every switch is (switch_context and exit_context end in Boost's
// assembly, out of the compiler's sight). It runs in a few of every hand-off's paths, where the
// out-of-line call it replaces cost 6-10% of pingpong and spawn. Elsewhere, a call the compiler
// cannot see into (scheduler.cpp). Initial-exec TLS marks a shared libgoro (or a shared object
// linking the static one) DF_STATIC_TLS: dlopen() of it needs 8 bytes of glibc's surplus static
// TLS, which is there unless other such libraries used it up.
#if defined(__x86_64__) && defined(__LP64__) && defined(__ELF__)
#define GORO_TLS_WORKER_ASM 1
#else
#define GORO_TLS_WORKER_ASM 0
#endif

#if GORO_TLS_WORKER_ASM
inline worker* worker::current() noexcept {
  worker* w;
  asm volatile(
      "movq goro_tls_worker@gottpoff(%%rip), %0\n\t"
      "movq %%fs:(%0), %0"
      : "=r"(w)
      :
      : "memory");
  return w;
}
#endif

// The scheduler of the default runtime, started on first use.
scheduler& default_scheduler();

}  // namespace goro::detail
