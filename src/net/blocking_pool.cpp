// SPDX-License-Identifier: Apache-2.0
// Layer: net. May include: net, park, sched, stack, time, platform.
// goro::blocking's pool (include/goro/blocking.hpp): an elastic set of threads taking jobs from
// one queue. A job finds an idle thread or starts a new one, so it never waits behind another
// (Go starts an M when a system call blocks its P); a thread idle for idle_timeout leaves.
// The pool is never destroyed: its threads are detached, and may be inside a job at exit.
// A job's caller waits for it (run_blocking), or may stop waiting (run_blocking_limited, in
// blocking_pool.hpp): such a job is kept on the heap, shared by its caller and the pool.
//
// Invariants (under mu_):
//   - idle_ counts the threads waiting for a job; a job is queued only with idle_ > queued_
//     (one of them will take it) or with a new thread started for it.
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <system_error>
#include <thread>

#include "goro/blocking.hpp"
#include "goro/detail/thread_safety.hpp"
#include "net/blocking_pool.hpp"
#include "park/park.hpp"
#include "platform/fatal.hpp"
#include "sched/census.hpp"

namespace goro::detail {

namespace {

constexpr auto idle_timeout = std::chrono::seconds(10);
constexpr claim_outcome job_done{0};

struct blocking_job {
  void (*run)(void*) noexcept;
  void* arg;
  waiter* done;  // unparked once run returns; null for a job that completes itself
  blocking_job* next = nullptr;
};

class blocking_pool {
 public:
  void submit(blocking_job& job) {
    bool start_thread = false;
    census::get().job_started();  // ended once its caller is unparked
    {
      std::lock_guard lock(mu_);
      (tail_ != nullptr ? tail_->next : head_) = &job;
      tail_ = &job;
      ++queued_;
      if (idle_ >= queued_) {
        ready_.notify_one();
      } else {
        start_thread = true;
        ++idle_;  // counted idle from now: it takes a job as soon as it runs
        census::get().pool_thread_started();
      }
    }
    if (!start_thread) return;
    try {
      std::thread([this] { serve(); }).detach();
    } catch (const std::system_error&) {
      // The job is queued and its caller about to park for it: nothing could run it.
      fatal("goro::blocking: cannot start a thread for the blocking pool");
    }
  }

 private:
  void serve() noexcept {
    std::unique_lock lock(mu_);
    for (;;) {
      if (!ready_.wait_for(lock, idle_timeout, [this] { return head_ != nullptr; })) {
        --idle_;
        census::get().pool_thread_ended();
        return;  // idle for idle_timeout: leave
      }
      blocking_job* job = head_;
      head_ = job->next;
      if (head_ == nullptr) tail_ = nullptr;
      --queued_;
      --idle_;
      lock.unlock();
      // Read first: a job that completes itself may be gone once it returns. Any other lives
      // on its parked caller's stack until unparked.
      waiter* const done = job->done;
      job->run(job->arg);
      if (done != nullptr) {
        done->claim(job_done);
        done->unpark();
      }
      census::get().job_ended();
      lock.lock();
      ++idle_;
    }
  }

  std::mutex mu_;
  std::condition_variable ready_;
  blocking_job* head_ = nullptr;
  blocking_job* tail_ = nullptr;
  int queued_ = 0;
  int idle_ = 0;
};

blocking_pool& pool() {
  static auto* p = new blocking_pool;  // never destroyed: its threads may outlive main
  return *p;
}

}  // namespace

namespace {

constexpr wait_reason blocking_wait{"goro::blocking call"};

// run_blocking_limited's job: owned by its caller and by the pool (`self`) until it returns.
// Protocol: the job, once it has returned, claims the caller's waiter under mu; a caller that
// stops waiting won the waiter's claim first (so the job's claim fails and it wakes nobody) and
// then clears `caller` under mu, after which nothing touches the waiter it is about to destroy.
struct limited_job {
  blocking_job entry;
  std::shared_ptr<void> state;
  void (*job)(void*) noexcept;
  std::mutex mu;
  waiter* caller;  // GUARDED_BY(mu); null once the caller stopped waiting
  std::shared_ptr<limited_job> self;
};

void run_limited(void* arg) noexcept {
  auto* j = static_cast<limited_job*>(arg);
  j->job(j->state.get());
  // Dropped last, after the lock below: the caller may already have let go of its reference.
  const std::shared_ptr<limited_job> self = std::move(j->self);
  const std::lock_guard lock(j->mu);
  if (j->caller != nullptr && j->caller->claim(job_done)) j->caller->unpark();
}

}  // namespace

void run_blocking(void (*job)(void*) noexcept, void* arg) {
  waiter done(blocking_wait, nullptr);
  if (!done.in_fiber()) {
    job(arg);
    return;
  }
  blocking_job j{job, arg, &done};
  pool().submit(j);
  done.park();
}

std::errc run_blocking_limited(std::shared_ptr<void> state, void (*job)(void*) noexcept,
                               const wait_limit& limit) {
  waiter done(blocking_wait, nullptr);
  auto j = std::make_shared<limited_job>();
  j->entry = {run_limited, j.get(), nullptr};
  j->state = std::move(state);
  j->job = job;
  j->caller = &done;
  j->self = j;
  pool().submit(j->entry);
  park_limited(done, limit);
  const claim_outcome winner = done.winner();
  if (!limit_won(winner)) return std::errc();
  const std::lock_guard lock(j->mu);  // waits out a job that is claiming `done` right now
  j->caller = nullptr;
  return winner == claim_outcome::timed_out ? std::errc::timed_out : std::errc::operation_canceled;
}

}  // namespace goro::detail
