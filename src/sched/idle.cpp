// SPDX-License-Identifier: Apache-2.0
// Layer: sched. May include: sched, stack, time, platform.
// Spinning and parking: the idle set's list (idle.hpp), the wake-ups that take a sleeper off it,
// and, after them, the sleeper's side: a worker with no work parks its thread in steps
// (park_thread), the timer-duty holder in the I/O poller if the runtime has one (docs/net.md). Each
// Dekker pair has its two sides in this file: wake_one() against park_thread's fence,
// wake_for_timer() against sleep_on_timer_duty's. Proofs in docs/scheduler.md ("Asymmetric fences",
// "Stealing, spinning and parking workers", "Counting live fibers").
#include "sched/idle.hpp"

#include <algorithm>

#include "platform/asymmetric_fence.hpp"
#include "platform/futex.hpp"
#include "sched/scheduler.hpp"
#include "sched/worker.hpp"

namespace goro::detail {

// ---- the idle set -------------------------------------------------------------------------

void idle_set::enter_idle(idle_slot& s) noexcept {
  // Relaxed: published to wakers by the mu_ release below, before anyone can wake us.
  s.wake_word.store(0, std::memory_order_relaxed);
  {
    std::lock_guard lock(mu_);
    list_.push_back(&s);
    s.in_list = true;
    idle_.fetch_add(1, std::memory_order_seq_cst);
  }
  // No longer spinning. Even the last spinner wakes no one here, as one that found work does:
  // this worker looks at every queue itself, after its fence, before it sleeps.
  stop_spinning(s);
}

void idle_set::leave_idle(idle_slot& s) noexcept {
  std::lock_guard lock(mu_);
  if (s.in_list) {
    list_.erase(std::find(list_.begin(), list_.end(), &s));
    s.in_list = false;
    idle_.fetch_sub(1, std::memory_order_seq_cst);
  } else {
    s.spinning = true;  // wake_one() took us off the list and counted us as spinning
  }
}

void idle_set::wake_one() noexcept {
  light_fence();  // see worker::park_thread
  // Relaxed loads after the fence: the fences, not the loads, carry the Dekker order.
  if (idle_.load(std::memory_order_relaxed) == 0) return;
  if (spinning_.load(std::memory_order_relaxed) != 0) return;  // a spinner will find the work
  int expected = 0;
  if (!spinning_.compare_exchange_strong(expected, 1, std::memory_order_seq_cst)) return;
  idle_slot* s = nullptr;
  {
    std::lock_guard lock(mu_);
    if (!list_.empty()) {
      s = list_.back();
      list_.pop_back();
      s->in_list = false;
      idle_.fetch_sub(1, std::memory_order_seq_cst);
    }
  }
  if (s == nullptr) {
    spinning_.fetch_sub(1, std::memory_order_seq_cst);
    return;
  }
  s->wake();
}

void idle_set::wake_for_timer() noexcept {
  light_fence();  // see worker::sleep_on_timer_duty
  if (idle_slot* s = timer_waiter_.load(std::memory_order_relaxed)) {
    s->wake();
    return;
  }
  wake_one();
}

// ---- parking a worker ---------------------------------------------------------------------

// Announce idle; fence; tell a waiting ~runtime() of our finished fibers; look for work once
// more; sleep only if there is none; leave the idle set, as a spinner if wake_one() woke us;
// queue what a poll in the sleep found.
void worker::park_thread() noexcept {
  sched_.idle_.enter_idle(idle_slot_);
  // Dekker with idle_set::wake_one(): it publishes work, light fence, then reads the idle and
  // spinning counts; we published ourselves idle (enter_idle), heavy fence, then look for
  // work. One of the two sides sees the other (docs/scheduler.md, "Asymmetric fences"). Timers
  // have a pair of their own (sleep_on_timer_duty). The same pair covers a waiter on I/O from
  // outside the workers (scheduler::io_wait_started): it counts itself, fences, reads the idle
  // set; we read the count in sleep() (docs/net.md, "Who makes sure someone polls").
  heavy_fence();
  // The same fence pairs our finished counts with wait_for_fibers(), which announces itself,
  // fences, then sums them: either it sees our last finish, or we see it waiting and wake it.
  report_finished_fibers();
  if (!sched_.any_work() && !sched_.stopping_.load(std::memory_order_acquire)) sleep();
  sched_.idle_.leave_idle(idle_slot_);
  inject_polled();
}

// Wakes wait_for_fibers() if it waits, but only if we finished a fiber since we last woke it:
// its snapshots since then have seen our count (the epoch's release and acquire carry it), so a
// program whose main thread waits in ~runtime() does not wake it at every park. Relaxed loads:
// park_thread's heavy fence orders the read of fibers_awaited_ after our finished counts, as
// the pair needs, and only this thread writes counts_ and finished_when_notified_.
void worker::report_finished_fibers() noexcept {
  if (sched_.fibers_awaited_.load(std::memory_order_relaxed)) {
    const std::uint64_t finished = counts_.finished.load(std::memory_order_relaxed);
    if (finished != finished_when_notified_) {
      finished_when_notified_ = finished;
      sched_.notify_fibers_waiter();
    }
  }
}

// Takes the timer duty if a timer is pending or anyone waits on I/O and no other sleeper has
// it; its holder sleeps until the earliest deadline, in the poller if the runtime has one.
// Without the duty, sleeps until woken.
void worker::sleep() noexcept {
  const clock::time_point deadline = sched_.timers_.next_deadline();
  const io_poller* poller = sched_.poller();
  const bool io_waiters = poller != nullptr && poller->has_waiters();
  counts_.add(sched_event::sleeps);
  if ((deadline != clock::time_point::max() || io_waiters) &&
      sched_.idle_.take_timer_duty(idle_slot_)) {
    sleep_on_timer_duty(deadline);
    sched_.idle_.give_up_timer_duty(idle_slot_);
  } else {
    sleep_until_woken();
  }
  // Relaxed: a hint of who ended the sleep, for runtime_metrics::worker_wakeups; the word is 1
  // once a waker stored it (idle_slot::wake).
  if (metrics_enabled && idle_slot_.wake_word.load(std::memory_order_relaxed) != 0) {
    counts_.add(sched_event::wakeups);
  }
}

void worker::sleep_on_timer_duty(clock::time_point deadline) noexcept {
  // Dekker with idle_set::wake_for_timer(), which pushes a timer (or installs the poller), light
  // fence, reads the duty holder: we took the duty, heavy fence, read the deadline and the
  // poller again. Either it wakes us, or we see its earlier deadline or its poller. (Reading
  // the deadline only before taking the duty, a timer pushed in between went to wake_one(),
  // which may wake another worker, and fired late.)
  heavy_fence();
  const clock::time_point until = std::min(deadline, sched_.timers_.next_deadline());
  if (io_poller* poller = sched_.poller()) {
    sleep_in_poller(*poller, until);
    return;
  }
  // A timer's deadline, not a stream of work, ends this sleep: it leaves the spin alone, or a
  // fast ticker would keep this worker spinning between its ticks.
  futex_wait_until(idle_slot_.wake_word, 0, until);
}

// Sleeps in the poller until `until`, an I/O event or a wake-up; the fibers the poll makes
// runnable are queued by inject_polled() once we have left the idle set.
void worker::sleep_in_poller(io_poller& poller, clock::time_point until) noexcept {
  // Store, then load: the pair of idle_slot::wake(), which stores the word, then loads
  // sleeping_in (both seq_cst).
  idle_slot_.sleeping_in.store(&poller, std::memory_order_seq_cst);
  if (idle_slot_.wake_word.load(std::memory_order_seq_cst) == 0) {
    polling_ = true;
    poller.poll(until);
    polling_ = false;
  }
  idle_slot_.sleeping_in.store(nullptr, std::memory_order_relaxed);
}

void worker::sleep_until_woken() noexcept {
  // A sleep cut short means work arrives in a stream too fine for our spin to bridge: a
  // spawning loop or a hand-off chain on another worker wakes us every few microseconds, and
  // each wake-up is a futex system call on the waker's path (7,000 per million spawns at
  // PROCS=2). Spin longer next time, up to max_idle_spin; a long sleep resets it, so a worker
  // woken now and then by sporadic work spins only idle_spin after each.
  const clock::time_point slept_from = clock::now();
  // Odd while asleep here, for the deadlock detector (scheduler::quiescent). Release: what this
  // worker did is visible to the detector that reads it asleep.
  sleep_seq_.store(sleep_seq_.load(std::memory_order_relaxed) + 1, std::memory_order_seq_cst);
  futex_wait(idle_slot_.wake_word, 0);
  sleep_seq_.store(sleep_seq_.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
  const clock::duration slept = clock::now() - slept_from;
  idle_spin_ = slept < 2 * idle_spin_ ? std::min<clock::duration>(2 * idle_spin_, max_idle_spin)
                                      : clock::duration(idle_spin);
}

}  // namespace goro::detail
