// SPDX-License-Identifier: Apache-2.0
// Layer: sched. May include: sched, stack, time, platform.
// The M:N scheduler's shared state: its workers, the global run queue, the idle set, the
// timers, the stacks and the live-fiber counts. Its code is cut at the seams: fiber.cpp
// (creation, exit, counting live fibers), worker.cpp (the worker loop, switching, stealing),
// idle.cpp (spinning and parking), scheduler.cpp (construction, the global queue, ready, stop).
// The design, the spinning and parking protocol and its proof are in docs/scheduler.md.
//
// Invariants:
//   - global_size_ is the length of the list from global_head_ to global_tail_ (linked through
//     fiber::next), and changes only under global_mu_ with it. Read without the lock it is a
//     hint; global_take() reads it again under the lock.
//   - stopping_, once set, stays set; every worker then leaves its loop at its next scheduling
//     point.
//   - external_wakers_ counts the ready() calls from outside the runtime that have not
//     returned; wait_for_fibers() returns only once it is 0, so ~runtime() cannot free the
//     scheduler under a thread still inside the ready() that woke the last fiber.
//   - The live-fiber counts (outside_ and each worker's counts_) and the fiber's life are
//     described in fiber.hpp; the spinning and idle counts in idle.hpp.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <vector>

#include "goro/detail/hardware.hpp"
#include "goro/detail/spawn.hpp"
#include "goro/detail/timer_entry.hpp"
#include "goro/metrics.hpp"
#include "goro/options.hpp"
#include "sched/fiber.hpp"
#include "sched/idle.hpp"
#include "sched/io_poller.hpp"
#include "sched/trace_buffer.hpp"
#include "stack/stack_pool.hpp"
#include "time/timer_heap.hpp"

namespace goro::detail {

class worker;

class scheduler {
 public:
  explicit scheduler(const options& opts);
  ~scheduler();  // stops the workers; REQUIRES: no fibers live, or abandon() called
  scheduler(const scheduler&) = delete;
  scheduler& operator=(const scheduler&) = delete;

  std::size_t worker_count() const noexcept { return workers_.size(); }
  // This runtime's number among those the process made (1, 2...): its process in a trace.
  std::uint64_t id() const noexcept { return id_; }
  std::size_t stack_size() const noexcept { return stacks_.stack_size(); }
  // Whether this runtime measures its fibers' stack use (options::stack_watermark).
  bool stack_watermark() const noexcept { return stack_watermark_; }

  new_fiber create(std::size_t size, std::size_t align, void (*run)(void*), spawn_site site);
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

  // The I/O poller, or null until the first socket is made on this runtime (acquire: its
  // construction happens-before a worker polls it).
  io_poller* poller() const noexcept { return poller_.load(std::memory_order_acquire); }
  // Installs the poller `make` returns, unless one is installed; returns the installed one.
  // Wakes the timer-duty holder, to sleep in it.
  io_poller& install_poller(const std::function<std::shared_ptr<io_poller>()>& make);
  // Shares the poller's ownership (a socket keeps its poller beyond the scheduler).
  std::shared_ptr<io_poller> poller_shared() const;
  // Called by a waiter on I/O that is not a fiber of this scheduler, after counting itself:
  // makes sure a worker polls (docs/net.md, "Who makes sure someone polls").
  void io_wait_started() noexcept;

  stack_pool& stacks() noexcept { return stacks_; }

  // ---- For the diagnostics (src/diag/); defined in census.cpp.

  // True if nothing of this scheduler can run by itself: not stopped, every worker asleep with
  // no timer duty and no wake-up pending, no fiber queued, no timer, no I/O waiter, no ready()
  // from outside in progress. Appends each worker's sleep sequence, which changes whenever it
  // wakes. Reads atomics only.
  bool quiescent(std::vector<std::uint64_t>& sleeps) const noexcept;
  // Calls visit(f) for every fiber of this scheduler not yet finished, found through its
  // stacks (the record lies at the top of each). Takes no lock a fiber holds. Exact while the
  // scheduler is quiescent; while fibers run, what changes under it is read as it happens to be.
  void for_each_fiber(const std::function<void(const fiber&)>& visit);
  // What this runtime asks of the deadlock detector (options::on_deadlock, resolved).
  deadlock_mode on_deadlock() const noexcept { return on_deadlock_; }
  // Counts a finished fiber on `w`, which must be this scheduler's worker, or null off them.
  void fiber_finished(worker* w) noexcept;
  // The workers' counts summed, and the gauges (goro::runtime::metrics). Relaxed loads of each
  // worker's counters; see runtime_metrics for what holds of the result.
  runtime_metrics metrics() const noexcept;

 private:
  friend class worker;
  friend struct debugger_layout;  // census.cpp: the offsets the gdb script reads
  friend class trace_session;     // activates and drains the workers' trace buffers

  void global_push(fiber* first, fiber* last, std::size_t n) noexcept;
  fiber* global_take(worker& w, std::size_t max) noexcept;
  bool any_work() const noexcept;
  void request_stop() noexcept;
  void report_abandoned_stacks_as_roots(bool workers_stopped);
  bool no_live_fibers() const noexcept;
  void notify_fibers_waiter() noexcept;

  std::vector<std::unique_ptr<worker>> workers_;

  mutable std::mutex global_mu_;
  fiber* global_head_ = nullptr;  // GUARDED_BY(global_mu_)
  fiber* global_tail_ = nullptr;  // GUARDED_BY(global_mu_)
  std::atomic<std::size_t> global_size_{0};

  idle_set idle_;  // who sleeps, who spins, who watches the timers (idle.hpp)

  std::atomic<bool> stopping_{false};
  // The worker whose fiber ran stop_at_exit(). Relaxed: the only reader that must see it is
  // that same fiber, on that worker's thread, after its own store; any other reader compares
  // it with its own worker, which it can never equal.
  std::atomic<worker*> exiting_on_{nullptr};

 public:
  // True if `w`'s running fiber is the one that called stop_at_exit() (std::exit on a fiber).
  bool exiting_on(const worker* w) const noexcept {
    return exiting_on_.load(std::memory_order_relaxed) == w;
  }

 private:
  sched_counters outside_;  // fibers created or discarded off this scheduler's workers
  alignas(cache_line_size) std::atomic<int> external_wakers_{
      0};                                    // ready() calls from outside the runtime in progress
  std::atomic<bool> fibers_awaited_{false};  // wait_for_fibers() is waiting
  std::atomic<std::uint32_t> done_epoch_{0};

  std::atomic<io_poller*> poller_{nullptr};
  mutable std::mutex poller_mu_;
  std::shared_ptr<io_poller> poller_owner_;  // GUARDED_BY(poller_mu_) once set; never reset

  timer_heap timers_;
  // Cleared, under its lock, by ~scheduler.
  std::shared_ptr<timer_binding> timer_binding_ = std::make_shared<timer_binding>(this);
  stack_pool stacks_;
  const deadlock_mode on_deadlock_;
  const bool stack_watermark_;
  const std::uint64_t id_;
};

// The scheduler of the default runtime, started on first use.
scheduler& default_scheduler();

// Whether a runtime of more than one worker is alive now (a hint: one may start or stop at any
// moment). A buffered channel made off workers takes the ring if so (docs/channels.md, "The
// ring").
bool multi_worker_runtime_alive() noexcept;

}  // namespace goro::detail
