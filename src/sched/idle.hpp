// SPDX-License-Identifier: Apache-2.0
// Layer: sched. May include: sched, stack, time, platform.
// The idle set: which workers sleep, how many spin looking for work, and which sleeper watches
// the timers (Go's sched.nmspinning and idle lists; Tokio's idle.rs). Its transitions are the
// spinning and parking protocol of docs/scheduler.md ("Stealing, spinning and parking
// workers"). wake_one() and wake_for_timer(), on the side that publishes work or a timer, pair
// with a parking worker's fences; that side, worker::park_thread and its steps, follows the
// idle set in idle.cpp, so each Dekker pair reads in one file.
//
// Invariants:
//   - spinning_ counts the workers looking for work that have not parked: those whose slot has
//     `spinning` set, and those wake_one() took off the list that have not yet left the idle
//     set (their waker counted them; leave_idle sets their flag). For a moment it may also
//     count a waker whose CAS won but that found no one on the list.
//   - A slot is in list_ exactly while its `in_list` is set, and idle_ is the length of list_
//     whenever mu_ is free (both change together, under mu_).
//   - timer_waiter_ is null or the slot of the one worker between take_timer_duty() and
//     give_up_timer_duty(); that worker is between enter_idle() and leave_idle(), and sleeps
//     no later than the earliest deadline it read after its fence, in the scheduler's poller if
//     it had one then (docs/net.md), else on its futex.
//   - A slot's wake_word is 0 from enter_idle() until something wakes it (wake_one,
//     wake_for_timer, scheduler::request_stop); its worker sleeps only while it reads 0.
#pragma once

#include <atomic>
#include <cstdint>
#include <mutex>
#include <vector>

#include "platform/futex.hpp"
#include "sched/io_poller.hpp"

namespace goro::detail {

// A worker's place in the idle set, kept in the worker. Only the worker's own thread touches
// `spinning` and stores `sleeping_in`; `in_list` is guarded by the idle set's mutex.
struct idle_slot {
  std::atomic<std::uint32_t> wake_word{0};  // the futex word its worker sleeps on; 1 once woken
  // The poller its worker sleeps in (with the timer duty), or null: then it sleeps on wake_word.
  std::atomic<io_poller*> sleeping_in{nullptr};
  bool spinning = false;  // counted in the idle set's spinning count
  bool in_list = false;   // GUARDED_BY(idle_set::mu_)

  // Wakes the worker, or keeps it from sleeping if it has entered the idle set and not yet
  // slept. The store, then the load of sleeping_in, pair with the sleeper's store of
  // sleeping_in, then load of the word (worker::sleep_in_poller): all seq_cst, so either we see
  // the poller and wake it, or the sleeper sees the word and does not sleep (docs/net.md,
  // "Waking the poller"). The worker acquires what it needs of the waker elsewhere (the idle
  // set's mutex in leave_idle, stopping_).
  void wake() noexcept {
    wake_word.store(1, std::memory_order_seq_cst);
    if (io_poller* p = sleeping_in.load(std::memory_order_seq_cst)) {
      p->wake();
    } else {
      futex_wake(wake_word);
    }
  }
};

class idle_set {
 public:
  explicit idle_set(unsigned workers) noexcept : workers_(static_cast<int>(workers)) {}
  idle_set(const idle_set&) = delete;
  idle_set& operator=(const idle_set&) = delete;

  // ---- Spinning: a worker with nothing local looks for work on the others.

  // Counts `s` as spinning, unless half or more of the busy workers spin already (Go's
  // findrunnable: so stealing cannot eat the machine). Returns whether `s` spins. Called by
  // its worker.
  bool try_start_spinning(idle_slot& s) noexcept {
    if (!s.spinning) {
      // A heuristic, so relaxed reads of the counts are enough.
      const int busy = workers_ - idle_.load(std::memory_order_relaxed);
      if (2 * spinning_.load(std::memory_order_relaxed) < busy) {
        s.spinning = true;
        spinning_.fetch_add(1, std::memory_order_seq_cst);
      }
    }
    return s.spinning;
  }

  // Stops counting `s` as spinning, if it was. Returns true if it was the last spinner: a
  // worker that found work then calls wake_one(), in case there is more (Go's resetspinning).
  bool stop_spinning(idle_slot& s) noexcept {
    if (!s.spinning) return false;
    s.spinning = false;
    return spinning_.fetch_sub(1, std::memory_order_seq_cst) == 1;
  }

  // ---- Parking: the sleeper's side (worker::park_thread).

  // Announces `s` idle: on the list, counted idle, no longer spinning. Its worker then makes a
  // heavy fence and looks at every queue once more before it sleeps.
  void enter_idle(idle_slot& s) noexcept;
  // Takes `s` off the list, or, if wake_one() took it off already, counts it spinning as its
  // waker did.
  void leave_idle(idle_slot& s) noexcept;

  // Makes `s` the one sleeper that watches the timers, if no worker is. Its worker then makes a
  // heavy fence and reads the earliest deadline again, and sleeps no later than that.
  bool take_timer_duty(idle_slot& s) noexcept {
    idle_slot* no_one = nullptr;
    return timer_waiter_.compare_exchange_strong(no_one, &s);
  }
  void give_up_timer_duty(idle_slot& s) noexcept {
    idle_slot* self = &s;
    timer_waiter_.compare_exchange_strong(self, nullptr);
  }

  // ---- Waking: the side that publishes work.

  // Called after making work visible in a queue: if workers are idle and none spins, wakes one
  // as a spinner (counted here), which will find the work.
  void wake_one() noexcept;
  // Called after queuing a timer earlier than every other: wakes the worker on timer duty, to
  // sleep again until the new deadline, or if none, as wake_one(). Also called when the duty
  // holder must sleep differently: a poller was installed, or a waiter from outside the
  // workers started waiting on I/O (scheduler::io_wait_started).
  void wake_for_timer() noexcept;

  // A hint (relaxed): how many workers are in the idle set.
  int idle_count() const noexcept { return idle_.load(std::memory_order_relaxed); }

 private:
  std::atomic<int> spinning_{0};
  std::atomic<int> idle_{0};
  std::mutex mu_;
  std::vector<idle_slot*> list_;  // GUARDED_BY(mu_)
  std::atomic<idle_slot*> timer_waiter_{nullptr};
  const int workers_;
};

}  // namespace goro::detail
