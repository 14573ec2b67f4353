// SPDX-License-Identifier: Apache-2.0
//
// What every Boost.Fiber peer of goro's standard workloads (WORKLOADS.md) shares: the size from
// argv[1] and the worker count from PROCS, the PROCS-thread work-stealing scheduler, a monotonic
// stopwatch, VmRSS from /proc/self/status, a countdown that stands in for Go's sync.WaitGroup,
// and the one result line that bench/compare parses. Fibers use Boost.Fiber's default stack
// allocator (fixedsize_stack, 128 KiB of address space per fiber on Linux) throughout.

#pragma once

#include <boost/fiber/algo/round_robin.hpp>
#include <boost/fiber/algo/work_stealing.hpp>
#include <boost/fiber/all.hpp>

#include <algorithm>
#include <atomic>
#include <charconv>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <limits>
#include <mutex>
#include <string>
#include <string_view>
#include <system_error>
#include <thread>
#include <vector>

namespace peer {

// Parses a positive integer; exits with status 2 and a message naming `what` otherwise.
inline std::int64_t parse_positive(std::string_view text, const char* what) {
  std::int64_t value = 0;
  auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (error != std::errc{} || end != text.data() + text.size() || value <= 0) {
    std::fprintf(stderr, "%s must be a positive integer, got \"%.*s\"\n", what,
                 static_cast<int>(text.size()), text.data());
    std::exit(2);
  }
  return value;
}

// The workload size: argv[1] when given, otherwise `fallback`.
inline std::int64_t size_from_args(int argc, char** argv, std::int64_t fallback) {
  return argc > 1 ? parse_positive(argv[1], "size (argv[1])") : fallback;
}

// The worker count: the PROCS environment variable when set, otherwise the number of
// hardware threads.
inline unsigned procs_from_env() {
  if (const char* text = std::getenv("PROCS"); text != nullptr && *text != '\0') {
    return static_cast<unsigned>(parse_positive(text, "PROCS"));
  }
  return std::max(1U, std::thread::hardware_concurrency());
}

// Runs fibers on `procs` threads that share work through boost::fibers::algo::work_stealing.
// The constructing thread becomes worker 0 and keeps running main's fiber; procs - 1 helper
// threads install the same algorithm and then park their own main fiber on a fiber condition
// variable, so their dispatchers only run fibers stolen from the others. work_stealing's
// constructor waits on a barrier until all procs threads have installed it, so the constructor
// returns with every worker running. The destructor releases the helpers and joins them; every
// fiber must have finished by then. Idle workers spin looking for work (work_stealing's
// default, suspend = false), as Go's idle Ps spin briefly before sleeping.
// With procs == 1 the pool installs algo::round_robin (Boost.Fiber's default) instead: when its
// own queue is empty, work_stealing::pick_next draws random victims until it finds one that is not
// itself, which never ends with a single thread, so a lone worker waiting on a timer hangs.
// Only one pool may exist per process: work_stealing keeps its worker table in static storage.
class worker_pool {
 public:
  explicit worker_pool(unsigned procs) {
    if (procs == 1) {
      boost::fibers::use_scheduling_algorithm<boost::fibers::algo::round_robin>();
      return;
    }
    helpers_.reserve(procs - 1);
    for (unsigned i = 1; i < procs; ++i) {
      helpers_.emplace_back([this, procs] {
        boost::fibers::use_scheduling_algorithm<boost::fibers::algo::work_stealing>(procs);
        std::unique_lock lock{mutex_};
        released_cv_.wait(lock, [this] { return released_; });
      });
    }
    boost::fibers::use_scheduling_algorithm<boost::fibers::algo::work_stealing>(procs);
  }

  worker_pool(const worker_pool&) = delete;
  worker_pool& operator=(const worker_pool&) = delete;

  ~worker_pool() {
    {
      std::unique_lock lock{mutex_};
      released_ = true;
    }
    released_cv_.notify_all();
    for (std::thread& helper : helpers_) {
      helper.join();
    }
  }

 private:
  boost::fibers::mutex mutex_;
  boost::fibers::condition_variable released_cv_;
  bool released_ = false;  // guarded by mutex_
  std::vector<std::thread> helpers_;
};

// The closest Boost.Fiber gets to sync.WaitGroup with a fixed count: done() counts down with one
// atomic decrement, and wait() blocks the calling fiber until the count reaches zero. The fiber
// that makes the count zero takes the mutex before notifying, so a waiter that saw a non-zero
// count under the mutex is already waiting when the notification comes: none is lost.
class countdown {
 public:
  explicit countdown(std::int64_t count) : remaining_{count} {}

  // Counts one down; wakes the waiters when that was the last.
  void done() {
    // acq_rel: the last decrement acquires every earlier done()'s writes, and the mutex
    // below passes them on to the waiter.
    if (remaining_.fetch_sub(1, std::memory_order_acq_rel) == 1) {
      std::unique_lock lock{mutex_};
      zero_cv_.notify_all();
    }
  }

  // Blocks the calling fiber until done() has been called `count` times.
  void wait() {
    std::unique_lock lock{mutex_};
    zero_cv_.wait(lock, [this] { return remaining_.load(std::memory_order_acquire) == 0; });
  }

 private:
  std::atomic<std::int64_t> remaining_;
  boost::fibers::mutex mutex_;
  boost::fibers::condition_variable zero_cv_;
};

// Wall time from a monotonic clock.
class stopwatch {
 public:
  using clock = std::chrono::steady_clock;

  std::chrono::nanoseconds elapsed() const { return clock::now() - start_; }

 private:
  clock::time_point start_ = clock::now();
};

inline double millis(std::chrono::nanoseconds d) { return static_cast<double>(d.count()) / 1e6; }

inline double nanos_per(std::chrono::nanoseconds d, std::int64_t count) {
  return static_cast<double>(d.count()) / static_cast<double>(count);
}

inline double million_per_second(std::chrono::nanoseconds d, std::int64_t count) {
  return static_cast<double>(count) / (static_cast<double>(d.count()) / 1e9) / 1e6;
}

// The process's resident set size (the VmRSS line of /proc/self/status), in bytes. Exits with
// status 2 when the line cannot be read.
inline std::int64_t resident_bytes() {
  std::ifstream status{"/proc/self/status"};
  std::string key;
  std::int64_t kib = 0;
  std::string unit;
  while (status >> key) {
    if (key == "VmRSS:" && status >> kib >> unit && unit == "kB") {
      return kib * 1024;
    }
    status.ignore(std::numeric_limits<std::streamsize>::max(), '\n');
  }
  std::fprintf(stderr, "no VmRSS line in /proc/self/status\n");
  std::exit(2);
}

// Prints the result line and returns the process exit status: 0 when the self-check passed,
// 1 when it failed. The number of decimals follows the unit: ms and ns get one, M/s (millions of
// items per second) two, bytes none.
inline int report(const char* name, unsigned procs, std::int64_t n, double value,
                  std::string_view unit, bool ok) {
  int decimals = 1;
  if (unit == "M/s") {
    decimals = 2;
  } else if (unit == "bytes") {
    decimals = 0;
  }
  std::printf("workload=%s impl=boostfiber procs=%u n=%lld value=%.*f unit=%.*s check=%s\n", name,
              procs, static_cast<long long>(n), decimals, value, static_cast<int>(unit.size()),
              unit.data(), ok ? "ok" : "FAIL");
  std::fflush(stdout);
  return ok ? 0 : 1;
}

}  // namespace peer
