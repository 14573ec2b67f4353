// SPDX-License-Identifier: Apache-2.0
// What the sync toolkit's tests share (mutex_test.cpp, shared_mutex_test.cpp,
// condition_variable_test.cpp, once_test.cpp, semaphore_test.cpp, group_test.cpp): how long a
// test waits before it calls something a failure, and an event count built on goro's own mutex
// and condition_variable.
#pragma once

#include <atomic>
#include <chrono>
#include <mutex>
#include <thread>

#include "goro/condition_variable.hpp"
#include "goro/mutex.hpp"

namespace sync_test {

using namespace std::chrono_literals;

// How long a test waits for something that must happen before it calls it a failure (a bug
// then fails the test instead of hanging it).
constexpr auto patience = 10s;

// Lets a blocking call reach its wait before the test acts on it. Only a sleep can show that a
// call blocks; every test below is correct (if less searching) when the call has not parked yet.
inline void let_it_block() { std::this_thread::sleep_for(20ms); }

// A count that fibers and threads can wait on, with a timeout. Built on goro's own mutex and
// condition_variable, so every test that uses it also exercises them.
class event_count {
 public:
  void arrive(int k = 1) {
    std::lock_guard lock(mu_);
    n_ += k;
    cv_.notify_all();
  }
  // True once the count has reached k; false if `patience` passed first.
  bool wait_for(int k) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, patience, [&] { return n_ >= k; });
  }
  int count() {
    std::lock_guard lock(mu_);
    return n_;
  }

 private:
  goro::mutex mu_;
  goro::condition_variable cv_;
  int n_ = 0;
};

// Spins for `steps` steps without parking or yielding: a test sweeps a race across a window of
// a few microseconds with it (round r spins r % k steps), where a sleep is far too coarse.
inline void spin_for(int steps) {
  std::atomic<int> done{0};
  while (done.fetch_add(1, std::memory_order_relaxed) < steps) {
  }
}

// Records the largest value a counter reached.
inline void note_max(std::atomic<int>& max, int v) {
  int m = max.load();
  while (v > m && !max.compare_exchange_weak(m, v)) {
  }
}

}  // namespace sync_test
