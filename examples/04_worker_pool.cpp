// SPDX-License-Identifier: Apache-2.0
// A worker pool with a deadline, Go's errgroup pattern: a goro::group with a limit of 4 runs
// one fiber per job, at most 4 at a time. A std::stop_source, requested once the deadline has
// passed, is the group's parent token (Go's context.WithTimeout): jobs still running see the
// stop on their std::stop_token and give up, and jobs not yet started are skipped.
#include <atomic>
#include <chrono>
#include <cstdio>
#include <stop_token>

#include <goro/goro.hpp>
#include <goro/group.hpp>

int main() {
  using namespace std::chrono_literals;
  constexpr int jobs = 40;
  constexpr int workers = 4;
  constexpr auto job_time = 10ms;
  static constexpr auto deadline = 55ms;  // 4 at a time, 10 ms each: about 20 jobs fit

  // The deadline: a fiber that requests stop when it passes. It holds its own copy of the
  // stop source (a shared handle), so it may outlive this scope.
  std::stop_source expired;
  goro::go([expired]() mutable {
    goro::this_fiber::sleep_for(deadline);
    expired.request_stop();
  });

  std::atomic<int> finished{0};
  std::atomic<int> abandoned{0};
  int skipped = 0;
  goro::group pool{expired.get_token(), workers};
  for (int job = 0; job < jobs; ++job) {
    if (pool.get_stop_token().stop_requested()) {
      ++skipped;
      continue;
    }
    // go() blocks while 4 jobs run.
    pool.go([&](std::stop_token stop) {
      // The job's work: job_time of waiting that a stop request cuts short.
      if (goro::after(job_time).recv(stop)) {
        ++finished;
      } else {
        ++abandoned;
      }
    });
  }
  pool.wait();  // rethrows a job's exception, if one had thrown

  std::printf(
      "%d of %d jobs finished before the %lld ms deadline; %d abandoned mid-job, %d "
      "never started\n",
      finished.load(), jobs, static_cast<long long>(deadline.count()), abandoned.load(), skipped);
  return finished.load() > 0 && finished.load() + abandoned.load() + skipped == jobs ? 0 : 1;
}
