// SPDX-License-Identifier: Apache-2.0
// Layer: sched. May include: sched, stack, time, platform.
// The census: what the diagnostics (src/diag/, docs/diagnostics.md) need to know of the whole
// process that no one scheduler knows: the live schedulers, the plain threads blocked in a goro
// call with no deadline (and on what), and goro::blocking's pool threads and jobs in flight.
// Everything here is written off the fast paths: a scheduler's construction and destruction, a
// plain thread about to sleep on a futex, a pool thread starting or ending a job.
//
// Invariants:
//   - schedulers_ holds exactly the schedulers between their construction and the start of
//     their destruction; blocked_ exactly the threads between thread_blocked() and
//     thread_unblocked(). Both change only under mu_, and each change bumps epoch_.
//   - pool_threads_ counts the blocking pool's threads that have been started and have not
//     left serve(); jobs_ the jobs submitted whose waiter has not been unparked yet (or, for a
//     job its caller stopped waiting for, that has not returned yet).
#pragma once

#include <atomic>
#include <cstdint>
#include <mutex>
#include <vector>

#include "sched/fiber.hpp"

namespace goro::detail {

class scheduler;

// Milliseconds of steady_clock, set by the monitor thread (src/diag/) every monitor period: the
// time a parking fiber records (fiber::wait_since). A relaxed load of a line written five times
// a second costs what a register move does; a clock read (a vDSO call, or rdtsc's 25 cycles)
// would cost every park. Its resolution, the monitor's period, is plenty for "waiting 3 s".
inline std::atomic<std::uint64_t> coarse_clock_ms{0};

// One plain thread blocked in a goro call with no deadline; lives on that thread's stack.
struct blocked_thread {
  const wait_reason* why = nullptr;
  const void* object = nullptr;
  long tid = 0;             // the kernel's thread id (gettid)
  std::uint64_t since = 0;  // coarse_clock_ms when it blocked
  // The futex word it sleeps on and the value it sleeps while the word holds: the detector
  // takes a thread whose word holds anything else for one woken and about to run.
  const std::atomic<std::uint32_t>* word = nullptr;
  std::uint32_t asleep_value = 0;
  blocked_thread* next = nullptr;  // GUARDED_BY(census::mu_)
  blocked_thread* prev = nullptr;  // GUARDED_BY(census::mu_)
};

class census {
 public:
  // The one census; never destroyed (threads may block during exit).
  static census& get() noexcept;

  void add(scheduler* s);
  void remove(scheduler* s) noexcept;

  // Called by a plain thread around a futex sleep with no deadline (waiter::park,
  // wait_for_fibers). `t` names what it waits on; thread_blocked calls the hook below, then
  // fills in tid and since.
  void thread_blocked(blocked_thread& t) noexcept;
  void thread_unblocked(blocked_thread& t) noexcept;
  // What a plain thread about to block calls first: the diagnostics set it to start their
  // monitor (src/diag/monitor.cpp), which otherwise starts with the first runtime, so that a
  // main blocked before it made any fiber is reported as Go reports it.
  void set_thread_blocked_hook(void (*hook)() noexcept) noexcept {
    thread_blocked_hook_.store(hook, std::memory_order_release);
  }

  // goro::blocking's pool (src/net/blocking_pool.cpp).
  void pool_thread_started() noexcept { pool_threads_.fetch_add(1, std::memory_order_relaxed); }
  void pool_thread_ended() noexcept { pool_threads_.fetch_sub(1, std::memory_order_relaxed); }
  void job_started() noexcept { jobs_.fetch_add(1, std::memory_order_seq_cst); }
  void job_ended() noexcept { jobs_.fetch_sub(1, std::memory_order_seq_cst); }
  int pool_threads() const noexcept { return pool_threads_.load(std::memory_order_relaxed); }
  int jobs() const noexcept { return jobs_.load(std::memory_order_seq_cst); }

  // The lock the readers below need; a reader holds it while it looks.
  std::mutex& mutex() noexcept { return mu_; }
  // REQUIRES: mutex() held.
  const std::vector<scheduler*>& schedulers() const noexcept { return schedulers_; }
  const blocked_thread* blocked() const noexcept { return blocked_; }
  std::uint64_t epoch() const noexcept { return epoch_; }

 private:
  friend struct debugger_layout;  // census.cpp: the offsets the gdb script reads
  census() = default;
  std::mutex mu_;
  std::vector<scheduler*> schedulers_;  // GUARDED_BY(mu_)
  blocked_thread* blocked_ = nullptr;   // GUARDED_BY(mu_)
  std::uint64_t epoch_ = 0;             // GUARDED_BY(mu_)
  std::atomic<int> pool_threads_{0};
  std::atomic<int> jobs_{0};
  std::atomic<void (*)() noexcept> thread_blocked_hook_{nullptr};
};

// Registers the calling plain thread as blocked on `why` (`object`) for the object's lifetime.
class blocked_scope {
 public:
  blocked_scope(const wait_reason* why, const void* object, const std::atomic<std::uint32_t>* word,
                std::uint32_t asleep_value) noexcept {
    t_.why = why;
    t_.object = object;
    t_.word = word;
    t_.asleep_value = asleep_value;
    census::get().thread_blocked(t_);
  }
  ~blocked_scope() { census::get().thread_unblocked(t_); }
  blocked_scope(const blocked_scope&) = delete;
  blocked_scope& operator=(const blocked_scope&) = delete;

 private:
  blocked_thread t_;
};

}  // namespace goro::detail
