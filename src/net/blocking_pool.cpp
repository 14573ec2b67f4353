// SPDX-License-Identifier: Apache-2.0
// Layer: net. May include: net, park, sched, stack, time, platform.
// goro::blocking's pool (include/goro/blocking.hpp): an elastic set of threads taking jobs from
// one queue. A job finds an idle thread or starts a new one, so it never waits behind another
// (Go starts an M when a system call blocks its P); a thread idle for idle_timeout leaves.
// The pool is never destroyed: its threads are detached, and may be inside a job at exit.
//
// Invariants (under mu_):
//   - idle_ counts the threads waiting for a job; a job is queued only with idle_ > queued_
//     (one of them will take it) or with a new thread started for it.
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <system_error>
#include <thread>

#include "goro/blocking.hpp"
#include "goro/detail/thread_safety.hpp"
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
  waiter* done;
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
      job->run(job->arg);
      waiter* done = job->done;  // the job lives on the parked caller's stack until unparked
      done->claim(job_done);
      done->unpark();
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

}  // namespace goro::detail
