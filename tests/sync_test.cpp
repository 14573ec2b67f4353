// SPDX-License-Identifier: Apache-2.0
// Tests of goro's sync toolkit: mutex, shared_mutex, condition_variable, once, the semaphores
// and group (goro/{mutex,shared_mutex,condition_variable,once,semaphore,group}.hpp). Go's
// sync tests written again as behaviour (TryLock, the hammer, fairness under a hog, parallel
// readers, Once and its retry after a panic, Cond signal and broadcast, errgroup), the standard
// guards over goro's types, cancellation by stop token from another fiber and from another
// std::thread, deadlines, mixed fibers and threads, and every misuse (thrown or fatal).
// Concurrency tests run once per worker count; the heavy mixes are in sync_stress_test.cpp.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <mutex>
#include <shared_mutex>
#include <stdexcept>
#include <stop_token>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "goro/condition_variable.hpp"
#include "goro/go.hpp"
#include "goro/group.hpp"
#include "goro/mutex.hpp"
#include "goro/once.hpp"
#include "goro/runtime.hpp"
#include "goro/semaphore.hpp"
#include "goro/shared_mutex.hpp"
#include "goro/this_fiber.hpp"
#include "goro/wait_group.hpp"
#include "test_support.hpp"

namespace {

using namespace std::chrono_literals;
using goro_test::scaled;
using steady = std::chrono::steady_clock;

// How long a test waits for something that must happen before it calls it a failure (a bug
// then fails the test instead of hanging it).
constexpr auto patience = 10s;

// Lets a blocking call reach its wait before the test acts on it. Only a sleep can show that a
// call blocks; every test below is correct (if less searching) when the call has not parked yet.
void let_it_block() { std::this_thread::sleep_for(20ms); }

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

// Records the largest value a counter reached.
void note_max(std::atomic<int>& max, int v) {
  int m = max.load();
  while (v > m && !max.compare_exchange_weak(m, v)) {
  }
}

// ============================================================================================
// mutex
// ============================================================================================

TEST(SyncMutexTest, TryLock) {
  // Go's TestMutex... TryLock: a held mutex refuses, a free one accepts.
  goro::mutex m;
  ASSERT_TRUE(m.try_lock());
  EXPECT_FALSE(m.try_lock());
  m.unlock();
  ASSERT_TRUE(m.try_lock());
  m.unlock();
}

TEST(SyncMutexTest, WorksWithTheStandardGuards) {
  goro::mutex a;
  goro::mutex b;
  {
    std::lock_guard guard(a);
    EXPECT_FALSE(a.try_lock());
  }
  {
    std::unique_lock lock(a, std::try_to_lock);
    EXPECT_TRUE(lock.owns_lock());
    lock.unlock();
    EXPECT_TRUE(lock.try_lock_for(1ms));
    lock.unlock();
    EXPECT_TRUE(lock.try_lock_until(std::chrono::system_clock::now() + 1ms));
  }
  {
    std::scoped_lock both(a, b);
    EXPECT_FALSE(a.try_lock());
    EXPECT_FALSE(b.try_lock());
  }
  EXPECT_TRUE(a.try_lock());
  EXPECT_TRUE(b.try_lock());
  a.unlock();
  b.unlock();
}

TEST(SyncMutexTest, TimedLockOfAHeldMutexTimesOut) {
  goro::mutex m;
  m.lock();
  std::thread([&] {
    const auto start = steady::now();
    EXPECT_FALSE(m.try_lock_for(30ms));
    EXPECT_GE(steady::now() - start, 30ms);
    EXPECT_FALSE(m.try_lock_until(steady::now() - 1s));  // a passed deadline: try_lock
    EXPECT_FALSE(m.try_lock_until(std::chrono::system_clock::now() + 10ms));
    EXPECT_FALSE(m.try_lock_for(-5s));
  }).join();
  m.unlock();
  std::thread([&] {
    EXPECT_TRUE(m.try_lock_for(std::chrono::hours::max()));  // saturates, does not overflow
    m.unlock();
  }).join();
}

TEST(SyncMutexTest, StopRequestedBeforeTheCall) {
  goro::mutex m;
  std::stop_source stop;
  stop.request_stop();
  // Free: taken, as a lock that needs no wait does not look at the token.
  ASSERT_TRUE(m.lock(stop.get_token()));
  // Held: false at once, and the mutex is untouched.
  std::thread([&] { EXPECT_FALSE(m.lock(stop.get_token())); }).join();
  m.unlock();
  ASSERT_TRUE(m.try_lock());
  m.unlock();
}

TEST(SyncMutexDeathTest, UnlockOfUnlockedMutexAborts) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_DEATH(
      {
        goro::mutex m;
        m.unlock();
      },
      "goro::mutex::unlock: unlock of unlocked mutex");
  EXPECT_DEATH(
      {
        goro::mutex m;
        m.lock();
        m.unlock();
        m.unlock();
      },
      "unlock of unlocked mutex");
}

class SyncMutexWorkersTest : public goro_test::workers_test {};
INSTANTIATE_TEST_SUITE_P(Workers, SyncMutexWorkersTest, goro_test::worker_counts(),
                         goro_test::worker_count_name);

TEST_P(SyncMutexWorkersTest, HammerKeepsACounterExact) {
  // Go's HammerMutex: 10 fibers x 1000 lock/unlock around a plain counter, every third round a
  // TryLock instead.
  constexpr int fibers = 10;
  constexpr int rounds = 1000;
  goro::mutex m;
  long counter = 0;  // GUARDED_BY(m)
  long tried = 0;    // GUARDED_BY(m)
  {
    goro::runtime rt{opts()};
    for (int f = 0; f < fibers; ++f) {
      rt.go([&] {
        for (int i = 0; i < rounds; ++i) {
          if (i % 3 == 0) {
            if (m.try_lock()) {
              ++tried;
              m.unlock();
            }
            continue;
          }
          std::lock_guard guard(m);
          ++counter;
        }
      });
    }
  }
  EXPECT_EQ(counter, fibers * (rounds - (rounds + 2) / 3));
  EXPECT_LE(tried, fibers * ((rounds + 2) / 3));
}

TEST_P(SyncMutexWorkersTest, FairnessAHogCannotStarveAWaiter) {
  // Go's TestMutexFairness: one fiber holds the mutex for 100 us at a time and relocks at once;
  // another must still get it 10 times within 10 s (starvation mode hands it over).
  goro::mutex m;
  std::atomic<bool> stop{false};
  goro::binary_semaphore done{0};
  goro::runtime rt{opts()};
  rt.go([&] {
    while (!stop.load()) {
      std::lock_guard guard(m);
      goro::this_fiber::sleep_for(100us);
    }
  });
  rt.go([&] {
    for (int i = 0; i < 10; ++i) {
      goro::this_fiber::sleep_for(100us);
      std::lock_guard guard(m);
    }
    done.release();
  });
  EXPECT_TRUE(done.try_acquire_for(10s)) << "the waiter could not get the mutex in 10 s";
  stop.store(true);
}

TEST_P(SyncMutexWorkersTest, FairnessAThreadHogCannotStarveAFiber) {
  // The same with the hog on a plain thread, which never parks while it holds the mutex.
  goro::mutex m;
  std::atomic<bool> stop{false};
  goro::binary_semaphore done{0};
  std::thread hog([&] {
    while (!stop.load()) {
      std::lock_guard guard(m);
      const auto until = steady::now() + 100us;
      while (steady::now() < until) {
      }
    }
  });
  {
    goro::runtime rt{opts()};
    rt.go([&] {
      for (int i = 0; i < 10; ++i) {
        goro::this_fiber::sleep_for(100us);
        std::lock_guard guard(m);
      }
      done.release();
    });
    EXPECT_TRUE(done.try_acquire_for(10s)) << "the fiber could not get the mutex in 10 s";
    stop.store(true);
    hog.join();  // before ~runtime: the hog's unlock may still be waking one of rt's fibers
  }
}

TEST_P(SyncMutexWorkersTest, FibersAndThreadsShareOneMutex) {
  constexpr int fibers = 8;
  constexpr int threads = 2;
  const int rounds = static_cast<int>(scaled(2000));
  goro::mutex m;
  long counter = 0;  // GUARDED_BY(m)
  {
    goro::runtime rt{opts()};
    std::vector<std::thread> pool;
    for (int t = 0; t < threads; ++t) {
      pool.emplace_back([&] {
        for (int i = 0; i < rounds; ++i) {
          std::lock_guard guard(m);
          ++counter;
        }
      });
    }
    for (int f = 0; f < fibers; ++f) {
      rt.go([&] {
        for (int i = 0; i < rounds; ++i) {
          std::lock_guard guard(m);
          ++counter;
          if (i % 64 == 0) goro::this_fiber::yield();
        }
      });
    }
    for (auto& t : pool) t.join();
  }
  EXPECT_EQ(counter, static_cast<long>(fibers + threads) * rounds);
}

TEST_P(SyncMutexWorkersTest, ABlockedLockParksTheFiberNotTheWorker) {
  // While one fiber waits for the mutex, another fiber on the same single worker runs and is
  // the one that unlocks it.
  goro::mutex m;
  event_count got;
  goro::runtime rt{opts()};
  m.lock();
  rt.go([&] {
    std::lock_guard guard(m);
    got.arrive();
  });
  rt.go([&] {
    goro::this_fiber::sleep_for(5ms);
    m.unlock();  // Go allows unlocking from another goroutine; so do we
  });
  EXPECT_TRUE(got.wait_for(1));
}

TEST_P(SyncMutexWorkersTest, LockCancelledFromAnotherFiber) {
  goro::mutex m;
  std::stop_source stop;
  event_count returned;
  bool result = true;
  goro::runtime rt{opts()};
  m.lock();
  rt.go([&] {
    result = m.lock(stop.get_token());
    returned.arrive();
  });
  rt.go([&] {
    goro::this_fiber::sleep_for(20ms);  // lets the other fiber park in lock()
    stop.request_stop();
  });
  ASSERT_TRUE(returned.wait_for(1));
  EXPECT_FALSE(result);
  m.unlock();
  ASSERT_TRUE(m.try_lock()) << "the cancelled lock left the mutex held";
  m.unlock();
}

TEST_P(SyncMutexWorkersTest, LockCancelledFromAThread) {
  goro::mutex m;
  std::stop_source stop;
  event_count returned;
  bool result = true;
  goro::runtime rt{opts()};
  m.lock();
  rt.go([&] {
    result = m.lock(stop.get_token());
    returned.arrive();
  });
  let_it_block();
  std::thread([&] { stop.request_stop(); }).join();
  ASSERT_TRUE(returned.wait_for(1));
  EXPECT_FALSE(result);
  m.unlock();
  ASSERT_TRUE(m.try_lock());
  m.unlock();
}

TEST_P(SyncMutexWorkersTest, ACancelledWaiterDoesNotStrandTheOthers) {
  // Waiters queue behind a holder; the middle ones leave by stop or deadline; the rest must
  // still each get the mutex once the holder lets go, and the mutex must end up free.
  constexpr int waiters = 6;
  goro::mutex m;
  std::stop_source stop;
  event_count finished;
  std::atomic<int> got{0};
  std::atomic<int> gave_up{0};
  goro::runtime rt{opts()};
  m.lock();
  for (int i = 0; i < waiters; ++i) {
    rt.go([&, i] {
      bool ok = false;
      if (i % 3 == 1) {
        ok = m.lock(stop.get_token());
      } else if (i % 3 == 2) {
        ok = m.try_lock_for(30ms);
      } else {
        m.lock();
        ok = true;
      }
      if (ok) {
        got.fetch_add(1);
        m.unlock();
      } else {
        gave_up.fetch_add(1);
      }
      finished.arrive();
    });
  }
  let_it_block();
  stop.request_stop();
  goro::this_fiber::sleep_for(40ms);  // past the try_lock_for deadlines
  m.unlock();
  ASSERT_TRUE(finished.wait_for(waiters));
  EXPECT_EQ(got.load() + gave_up.load(), waiters);
  EXPECT_GE(got.load(), waiters / 3);  // the plain lock() calls always succeed
  ASSERT_TRUE(m.try_lock());
  m.unlock();
}

TEST_P(SyncMutexWorkersTest, DeadlineInAFiber) {
  goro::mutex m;
  event_count done;
  goro::runtime rt{opts()};
  m.lock();
  rt.go([&] {
    const auto start = steady::now();
    EXPECT_FALSE(m.try_lock_for(20ms));
    EXPECT_GE(steady::now() - start, 20ms);
    std::stop_source never;
    EXPECT_FALSE(m.try_lock_until(steady::now() + 10ms, never.get_token()));
    done.arrive();
  });
  ASSERT_TRUE(done.wait_for(1));
  m.unlock();
}

// ============================================================================================
// shared_mutex
// ============================================================================================

TEST(SyncSharedMutexTest, WorksWithTheStandardGuards) {
  goro::shared_mutex m;
  {
    std::shared_lock r1(m);
    std::shared_lock r2(m, std::try_to_lock);
    EXPECT_TRUE(r2.owns_lock());
    EXPECT_FALSE(m.try_lock());
    std::shared_lock r3(m, 1ms);
    EXPECT_TRUE(r3.owns_lock());
  }
  {
    std::unique_lock w(m);
    EXPECT_FALSE(m.try_lock_shared());
    EXPECT_FALSE(m.try_lock());
    EXPECT_FALSE(m.try_lock_shared_for(1ms));
  }
  ASSERT_TRUE(m.try_lock());
  m.unlock();
}

TEST(SyncSharedMutexDeathTest, UnlockOfUnlockedAborts) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_DEATH(
      {
        goro::shared_mutex m;
        m.unlock();
      },
      "goro::shared_mutex::unlock: unlock of unlocked shared_mutex");
  EXPECT_DEATH(
      {
        goro::shared_mutex m;
        m.unlock_shared();
      },
      "goro::shared_mutex::unlock_shared: unlock of unlocked shared_mutex");
  EXPECT_DEATH(
      {
        goro::shared_mutex m;
        m.lock();
        m.unlock_shared();
      },
      "unlock_shared: unlock of unlocked shared_mutex");
}

class SyncSharedMutexWorkersTest : public goro_test::workers_test {};
INSTANTIATE_TEST_SUITE_P(Workers, SyncSharedMutexWorkersTest, goro_test::worker_counts(),
                         goro_test::worker_count_name);

TEST_P(SyncSharedMutexWorkersTest, ReadersRunConcurrently) {
  // Go's TestParallelReaders: every reader is inside at once (each waits, holding the read
  // lock, until all have arrived). Exclusive readers would never all arrive.
  constexpr int readers = 8;
  goro::shared_mutex m;
  event_count inside;
  event_count finished;
  std::atomic<int> all_seen{0};
  goro::runtime rt{opts()};
  for (int i = 0; i < readers; ++i) {
    rt.go([&] {
      std::shared_lock lock(m);
      inside.arrive();
      if (inside.wait_for(readers)) all_seen.fetch_add(1);
      finished.arrive();
    });
  }
  ASSERT_TRUE(finished.wait_for(readers));
  EXPECT_EQ(all_seen.load(), readers);
}

TEST_P(SyncSharedMutexWorkersTest, HammerWritersExcludeEveryone) {
  // Go's HammerRWMutex: readers add 1 to an activity count, writers 10000; a reader must never
  // see a writer inside, and a writer must see nobody else.
  const int rounds = static_cast<int>(scaled(2000));
  constexpr int readers = 6;
  constexpr int writers = 2;
  goro::shared_mutex m;
  std::atomic<int> activity{0};
  std::atomic<int> violations{0};
  {
    goro::runtime rt{opts()};
    for (int r = 0; r < readers; ++r) {
      rt.go([&] {
        for (int i = 0; i < rounds; ++i) {
          std::shared_lock lock(m);
          if (activity.fetch_add(1) + 1 >= 10000) violations.fetch_add(1);
          if (i % 16 == 0) goro::this_fiber::yield();
          activity.fetch_sub(1);
        }
      });
    }
    for (int w = 0; w < writers; ++w) {
      rt.go([&] {
        for (int i = 0; i < rounds / 4; ++i) {
          std::lock_guard lock(m);
          if (activity.fetch_add(10000) + 10000 != 10000) violations.fetch_add(1);
          if (i % 16 == 0) goro::this_fiber::yield();
          activity.fetch_sub(10000);
        }
      });
    }
  }
  EXPECT_EQ(violations.load(), 0);
}

TEST_P(SyncSharedMutexWorkersTest, AStreamOfReadersDoesNotStarveAWriter) {
  // Readers overlap so that one is always inside; a waiting writer must still get in, as new
  // readers queue behind it.
  constexpr int readers = 4;
  goro::shared_mutex m;
  std::atomic<bool> stop{false};
  goro::wait_group wg;
  event_count writer_done;
  bool got = false;
  goro::runtime rt{opts()};
  wg.add(readers);
  for (int r = 0; r < readers; ++r) {
    rt.go([&] {
      while (!stop.load()) {
        std::shared_lock lock(m);
        goro::this_fiber::sleep_for(200us);
      }
      wg.done();
    });
  }
  rt.go([&] {
    goro::this_fiber::sleep_for(2ms);
    got = m.try_lock_for(5s);
    if (got) m.unlock();
    writer_done.arrive();
  });
  EXPECT_TRUE(writer_done.wait_for(1));
  EXPECT_TRUE(got) << "the writer waited 5 s behind readers";
  stop.store(true);
  wg.wait();
}

TEST_P(SyncSharedMutexWorkersTest, AStreamOfWritersDoesNotStarveAReader) {
  constexpr int writers = 3;
  goro::shared_mutex m;
  std::atomic<bool> stop{false};
  goro::wait_group wg;
  event_count reader_done;
  bool got = false;
  goro::runtime rt{opts()};
  wg.add(writers);
  for (int w = 0; w < writers; ++w) {
    rt.go([&] {
      while (!stop.load()) {
        std::lock_guard lock(m);
        goro::this_fiber::sleep_for(200us);
      }
      wg.done();
    });
  }
  rt.go([&] {
    goro::this_fiber::sleep_for(2ms);
    got = m.try_lock_shared_for(5s);
    if (got) m.unlock_shared();
    reader_done.arrive();
  });
  EXPECT_TRUE(reader_done.wait_for(1));
  EXPECT_TRUE(got) << "the reader waited 5 s behind writers";
  stop.store(true);
  wg.wait();
}

TEST_P(SyncSharedMutexWorkersTest, ACancelledWriterLetsTheReadersBehindItIn) {
  // A reader holds; a writer waits (so new readers queue behind it); a second reader queues.
  // Cancelling the writer must admit the second reader while the first still holds.
  goro::shared_mutex m;
  std::stop_source stop;
  event_count writer_returned;
  event_count reader_in;
  bool writer_result = true;
  goro::runtime rt{opts()};
  m.lock_shared();
  rt.go([&] {
    writer_result = m.lock(stop.get_token());
    writer_returned.arrive();
  });
  // A waiting writer holds back new readers: that is how we see it has queued.
  const auto give_up = steady::now() + patience;
  while (m.try_lock_shared()) {
    m.unlock_shared();
    if (steady::now() > give_up) {
      ADD_FAILURE() << "the writer never queued";
      break;
    }
    std::this_thread::sleep_for(1ms);
  }
  rt.go([&] {
    if (m.try_lock_shared_for(patience)) {
      m.unlock_shared();
      reader_in.arrive();  // the test's own read lock is still held now
    }
  });
  let_it_block();
  std::thread([&] { stop.request_stop(); }).join();
  ASSERT_TRUE(writer_returned.wait_for(1));
  EXPECT_FALSE(writer_result);
  EXPECT_TRUE(reader_in.wait_for(1));
  m.unlock_shared();
  ASSERT_TRUE(m.try_lock());
  m.unlock();
}

TEST_P(SyncSharedMutexWorkersTest, ReaderCancelledAndTimedOutBehindAWriter) {
  goro::shared_mutex m;
  std::stop_source stop;
  event_count done;
  goro::runtime rt{opts()};
  m.lock();
  rt.go([&] {
    EXPECT_FALSE(m.lock_shared(stop.get_token()));
    done.arrive();
  });
  rt.go([&] {
    EXPECT_FALSE(m.try_lock_shared_for(20ms));
    EXPECT_FALSE(m.try_lock_for(20ms));
    done.arrive();
  });
  let_it_block();
  stop.request_stop();
  ASSERT_TRUE(done.wait_for(2));
  m.unlock();
  ASSERT_TRUE(m.try_lock_shared());
  m.unlock_shared();
  ASSERT_TRUE(m.try_lock());
  m.unlock();
}

TEST_P(SyncSharedMutexWorkersTest, WriterHandsOverToQueuedWriterAndReaders) {
  // Writers and readers pile up behind a writer; everyone gets through, and at the end the
  // mutex is free.
  constexpr int each = 5;
  goro::shared_mutex m;
  event_count finished;
  long value = 0;  // GUARDED_BY(m)
  goro::runtime rt{opts()};
  m.lock();
  for (int i = 0; i < each; ++i) {
    rt.go([&] {
      std::lock_guard lock(m);
      ++value;
      finished.arrive();
    });
    rt.go([&] {
      std::shared_lock lock(m);
      finished.arrive();
    });
  }
  let_it_block();
  m.unlock();
  ASSERT_TRUE(finished.wait_for(2 * each));
  std::lock_guard lock(m);
  EXPECT_EQ(value, each);
}

// ============================================================================================
// condition_variable
// ============================================================================================

TEST(SyncCondVarTest, WaitWithoutTheLockThrows) {
  goro::mutex m;
  goro::condition_variable cv;
  std::unique_lock lock(m, std::defer_lock);
  try {
    cv.wait(lock);
    ADD_FAILURE() << "no std::logic_error";
  } catch (const std::logic_error& e) {
    EXPECT_NE(std::string(e.what()).find("goro::condition_variable::wait"), std::string::npos);
  }
}

TEST(SyncCondVarTest, TimedWaitsTimeOutOnAThread) {
  goro::mutex m;
  goro::condition_variable cv;
  std::unique_lock lock(m);
  const auto start = steady::now();
  EXPECT_EQ(cv.wait_for(lock, 20ms), std::cv_status::timeout);
  EXPECT_GE(steady::now() - start, 20ms);
  EXPECT_TRUE(lock.owns_lock());
  EXPECT_EQ(cv.wait_until(lock, std::chrono::system_clock::now() + 5ms), std::cv_status::timeout);
  EXPECT_FALSE(cv.wait_for(lock, 5ms, [] { return false; }));
  EXPECT_TRUE(cv.wait_for(lock, 5ms, [] { return true; }));
  std::stop_source stop;
  stop.request_stop();
  EXPECT_FALSE(cv.wait(lock, stop.get_token(), [] { return false; }));
  EXPECT_TRUE(cv.wait(lock, stop.get_token(), [] { return true; }));
  EXPECT_TRUE(lock.owns_lock());
  cv.notify_one();  // no waiters: nothing happens
  cv.notify_all();
}

class SyncCondVarWorkersTest : public goro_test::workers_test {};
INSTANTIATE_TEST_SUITE_P(Workers, SyncCondVarWorkersTest, goro_test::worker_counts(),
                         goro_test::worker_count_name);

TEST_P(SyncCondVarWorkersTest, SignalWakesOneWaiterAtATime) {
  // Go's TestCondSignal: n fibers wait; each notify_one lets exactly one through.
  constexpr int n = 4;
  goro::mutex m;
  goro::condition_variable cv;
  int waiting = 0;  // GUARDED_BY(m)
  int tickets = 0;  // GUARDED_BY(m)
  event_count through;
  goro::runtime rt{opts()};
  for (int i = 0; i < n; ++i) {
    rt.go([&] {
      std::unique_lock lock(m);
      ++waiting;
      cv.wait(lock, [&] { return tickets > 0; });
      --tickets;
      lock.unlock();
      through.arrive();
    });
  }
  // Wait until every fiber is waiting (waiting is bumped under m just before the wait).
  for (;;) {
    std::unique_lock lock(m);
    if (waiting == n) break;
    lock.unlock();
    std::this_thread::sleep_for(1ms);
  }
  for (int i = 1; i <= n; ++i) {
    {
      std::lock_guard lock(m);
      ++tickets;
    }
    cv.notify_one();
    ASSERT_TRUE(through.wait_for(i));
    EXPECT_EQ(through.count(), i);
  }
}

TEST_P(SyncCondVarWorkersTest, WaitersWakeInArrivalOrder) {
  // Waiters queue in the order they waited (each registers under the mutex before releasing
  // it), and notify_one serves the longest waiter first.
  constexpr int n = 5;
  goro::mutex m;
  goro::condition_variable cv;
  goro::condition_variable arrived;
  int registered = 0;      // GUARDED_BY(m)
  std::vector<int> order;  // GUARDED_BY(m)
  goro::runtime rt{opts()};
  for (int i = 0; i < n; ++i) {
    rt.go([&, i] {
      std::unique_lock lock(m);
      ++registered;
      arrived.notify_all();
      cv.wait(lock);
      order.push_back(i);
      arrived.notify_all();
    });
    std::unique_lock lock(m);
    ASSERT_TRUE(arrived.wait_for(lock, patience, [&] { return registered == i + 1; }));
  }
  for (int i = 0; i < n; ++i) {
    std::unique_lock lock(m);
    cv.notify_one();
    ASSERT_TRUE(
        arrived.wait_for(lock, patience, [&] { return order.size() == std::size_t(i) + 1; }));
  }
  std::lock_guard lock(m);
  EXPECT_EQ(order, (std::vector<int>{0, 1, 2, 3, 4}));
}

TEST_P(SyncCondVarWorkersTest, BroadcastWakesEveryWaiterFibersAndThreads) {
  // Go's TestCondBroadcast, with some waiters on plain threads.
  constexpr int fibers = 6;
  constexpr int threads = 2;
  goro::mutex m;
  goro::condition_variable cv;
  int generation = 0;  // GUARDED_BY(m)
  int waiting = 0;     // GUARDED_BY(m)
  event_count woke;
  goro::runtime rt{opts()};
  auto waiter = [&] {
    std::unique_lock lock(m);
    const int g = generation;
    ++waiting;
    cv.wait(lock, [&] { return generation != g; });
    lock.unlock();
    woke.arrive();
  };
  for (int i = 0; i < fibers; ++i) rt.go(waiter);
  std::vector<std::thread> pool;
  for (int i = 0; i < threads; ++i) pool.emplace_back(waiter);
  for (;;) {
    std::unique_lock lock(m);
    if (waiting == fibers + threads) break;
    lock.unlock();
    std::this_thread::sleep_for(1ms);
  }
  {
    std::lock_guard lock(m);
    ++generation;
  }
  cv.notify_all();
  EXPECT_TRUE(woke.wait_for(fibers + threads));
  for (auto& t : pool) t.join();
}

TEST_P(SyncCondVarWorkersTest, PingPongLosesNoNotification) {
  const int rounds = static_cast<int>(scaled(5000));
  goro::mutex m;
  goro::condition_variable cv;
  int turn = 0;  // GUARDED_BY(m): even = ping's turn, odd = pong's
  event_count done;
  goro::runtime rt{opts()};
  for (int side = 0; side < 2; ++side) {
    rt.go([&, side] {
      for (int i = 0; i < rounds; ++i) {
        std::unique_lock lock(m);
        cv.wait(lock, [&] { return turn % 2 == side; });
        ++turn;
        cv.notify_one();
      }
      done.arrive();
    });
  }
  ASSERT_TRUE(done.wait_for(2));
  std::lock_guard lock(m);
  EXPECT_EQ(turn, 2 * rounds);
}

TEST_P(SyncCondVarWorkersTest, WaitCancelledFromAnotherFiberAndFromAThread) {
  goro::mutex m;
  goro::condition_variable cv;
  std::stop_source by_fiber;
  std::stop_source by_thread;
  std::atomic<int> cancelled{0};
  event_count returned;
  goro::runtime rt{opts()};
  for (std::stop_source* s : {&by_fiber, &by_thread}) {
    rt.go([&, s] {
      std::unique_lock lock(m);
      if (!cv.wait(lock, s->get_token(), [] { return false; })) cancelled.fetch_add(1);
      EXPECT_TRUE(lock.owns_lock());
      lock.unlock();
      returned.arrive();
    });
  }
  rt.go([&] {
    goro::this_fiber::sleep_for(20ms);  // lets the waiters park
    by_fiber.request_stop();
  });
  let_it_block();
  std::thread([&] { by_thread.request_stop(); }).join();
  ASSERT_TRUE(returned.wait_for(2));
  EXPECT_EQ(cancelled.load(), 2);
  // The mutex came back free, and the cancelled waiters left the queue: a notify has nobody
  // stale to wake, and a new waiter is served.
  ASSERT_TRUE(m.try_lock());
  m.unlock();
  bool flag = false;
  event_count served;
  rt.go([&] {
    std::unique_lock lock(m);
    if (cv.wait_for(lock, patience, [&] { return flag; })) served.arrive();
  });
  let_it_block();
  {
    std::lock_guard lock(m);
    flag = true;
  }
  cv.notify_one();
  EXPECT_TRUE(served.wait_for(1));
}

TEST_P(SyncCondVarWorkersTest, DeadlineAndStopForms) {
  goro::mutex m;
  goro::condition_variable cv;
  event_count done;
  goro::runtime rt{opts()};
  rt.go([&] {
    std::unique_lock lock(m);
    const auto start = steady::now();
    EXPECT_EQ(cv.wait_for(lock, 20ms), std::cv_status::timeout);
    EXPECT_GE(steady::now() - start, 20ms);
    std::stop_source never;
    EXPECT_FALSE(cv.wait_for(lock, 10ms, never.get_token(), [] { return false; }));
    EXPECT_FALSE(
        cv.wait_until(lock, steady::now() + 10ms, never.get_token(), [] { return false; }));
    EXPECT_FALSE(cv.wait_until(lock, std::chrono::system_clock::now() + 5ms, [] { return false; }));
    done.arrive();
  });
  EXPECT_TRUE(done.wait_for(1));
}

TEST_P(SyncCondVarWorkersTest, NotifiedBeforeStopReturnsTrue) {
  goro::mutex m;
  goro::condition_variable cv;
  std::stop_source stop;
  bool ready = false;  // GUARDED_BY(m)
  bool result = false;
  event_count done;
  goro::runtime rt{opts()};
  rt.go([&] {
    std::unique_lock lock(m);
    result = cv.wait(lock, stop.get_token(), [&] { return ready; });
    done.arrive();
  });
  let_it_block();
  {
    std::lock_guard lock(m);
    ready = true;
  }
  cv.notify_all();
  ASSERT_TRUE(done.wait_for(1));
  stop.request_stop();
  EXPECT_TRUE(result);
}

// ============================================================================================
// once
// ============================================================================================

TEST(SyncOnceTest, CallsOnceAndPassesArguments) {
  goro::once_flag flag;
  int calls = 0;
  for (int i = 0; i < 3; ++i)
    goro::call_once(
        flag, [&](int k) { calls += k; }, 5);
  EXPECT_EQ(calls, 5);
}

TEST(SyncOnceTest, RetriesAfterAThrow) {
  // Go's TestOncePanic, with std::call_once's rule: a call that throws does not count.
  goro::once_flag flag;
  int calls = 0;
  EXPECT_THROW(goro::call_once(flag,
                               [&] {
                                 ++calls;
                                 throw std::runtime_error("first");
                               }),
               std::runtime_error);
  goro::call_once(flag, [&] { ++calls; });
  goro::call_once(flag, [&] { ++calls; });
  EXPECT_EQ(calls, 2);
}

class SyncOnceWorkersTest : public goro_test::workers_test {};
INSTANTIATE_TEST_SUITE_P(Workers, SyncOnceWorkersTest, goro_test::worker_counts(),
                         goro_test::worker_count_name);

TEST_P(SyncOnceWorkersTest, ConcurrentFirstCallsWaitForTheOne) {
  // Go's TestOnce: many callers at once; one call; every caller returns after it finished.
  constexpr int fibers = 16;
  constexpr int threads = 2;
  goro::once_flag flag;
  std::atomic<int> calls{0};
  std::atomic<bool> finished{false};
  std::atomic<int> early{0};
  auto caller = [&] {
    goro::call_once(flag, [&] {
      calls.fetch_add(1);
      goro::this_fiber::sleep_for(5ms);  // keeps the others waiting
      finished.store(true);
    });
    if (!finished.load()) early.fetch_add(1);
  };
  {
    goro::runtime rt{opts()};
    for (int i = 0; i < fibers; ++i) rt.go(caller);
    std::vector<std::thread> pool;
    for (int i = 0; i < threads; ++i) pool.emplace_back(caller);
    for (auto& t : pool) t.join();
  }
  EXPECT_EQ(calls.load(), 1);
  EXPECT_EQ(early.load(), 0);
}

TEST_P(SyncOnceWorkersTest, AThrowPassesTheTurnToAWaiter) {
  constexpr int fibers = 8;
  goro::once_flag flag;
  std::atomic<int> calls{0};
  std::atomic<int> threw{0};
  {
    goro::runtime rt{opts()};
    for (int i = 0; i < fibers; ++i) {
      rt.go([&] {
        try {
          goro::call_once(flag, [&] {
            const int n = calls.fetch_add(1);
            goro::this_fiber::sleep_for(2ms);  // keeps the others waiting
            if (n == 0) throw std::runtime_error("first call fails");
          });
        } catch (const std::runtime_error&) {
          threw.fetch_add(1);
        }
      });
    }
  }
  EXPECT_EQ(calls.load(), 2);
  EXPECT_EQ(threw.load(), 1);
}

// ============================================================================================
// counting_semaphore
// ============================================================================================

TEST(SyncSemaphoreTest, CountsAndTries) {
  goro::counting_semaphore<3> s{2};
  static_assert(goro::counting_semaphore<3>::max() == 3);
  static_assert(goro::counting_semaphore<>::max() == PTRDIFF_MAX);
  EXPECT_TRUE(s.try_acquire());
  EXPECT_TRUE(s.try_acquire());
  EXPECT_FALSE(s.try_acquire());
  EXPECT_FALSE(s.try_acquire_for(10ms));
  EXPECT_FALSE(s.try_acquire_until(std::chrono::system_clock::now() + 1ms));
  s.release(3);
  for (int i = 0; i < 3; ++i) s.acquire();
  EXPECT_FALSE(s.try_acquire());
  s.release(0);
  EXPECT_FALSE(s.try_acquire());
}

TEST(SyncSemaphoreTest, MisuseThrowsAndLeavesTheCount) {
  goro::binary_semaphore b{1};
  try {
    b.release();
    ADD_FAILURE() << "no std::logic_error";
  } catch (const std::logic_error& e) {
    EXPECT_NE(std::string(e.what()).find("goro::counting_semaphore::release"), std::string::npos);
    EXPECT_NE(std::string(e.what()).find("max()"), std::string::npos);
  }
  EXPECT_TRUE(b.try_acquire());
  EXPECT_FALSE(b.try_acquire());
  goro::counting_semaphore<5> s{4};
  EXPECT_THROW(s.release(2), std::logic_error);
  EXPECT_THROW(s.release(-1), std::invalid_argument);
  s.release(1);
  for (int i = 0; i < 5; ++i) EXPECT_TRUE(s.try_acquire());
  EXPECT_FALSE(s.try_acquire());
  EXPECT_THROW(goro::binary_semaphore{2}, std::invalid_argument);
  EXPECT_THROW(goro::counting_semaphore<>{-1}, std::invalid_argument);
  goro::counting_semaphore<> big{PTRDIFF_MAX};
  EXPECT_THROW(big.release(), std::logic_error);
  EXPECT_TRUE(big.try_acquire());
  big.release();
}

class SyncSemaphoreWorkersTest : public goro_test::workers_test {};
INSTANTIATE_TEST_SUITE_P(Workers, SyncSemaphoreWorkersTest, goro_test::worker_counts(),
                         goro_test::worker_count_name);

TEST_P(SyncSemaphoreWorkersTest, BoundsHowManyRunAtOnce) {
  constexpr int limit = 3;
  constexpr int fibers = 12;
  goro::counting_semaphore<limit> s{limit};
  std::atomic<int> inside{0};
  std::atomic<int> max_inside{0};
  {
    goro::runtime rt{opts()};
    for (int i = 0; i < fibers; ++i) {
      rt.go([&] {
        s.acquire();
        note_max(max_inside, inside.fetch_add(1) + 1);
        goro::this_fiber::sleep_for(1ms);
        inside.fetch_sub(1);
        s.release();
      });
    }
  }
  EXPECT_LE(max_inside.load(), limit);
  EXPECT_GE(max_inside.load(), 1);
}

TEST_P(SyncSemaphoreWorkersTest, ReleaseHandsPermitsToWaitersInOrder) {
  constexpr int n = 4;
  goro::counting_semaphore<> s{0};
  goro::mutex m;
  std::vector<int> order;  // GUARDED_BY(m)
  event_count queued;
  event_count through;
  goro::runtime rt{opts()};
  for (int i = 0; i < n; ++i) {
    rt.go([&, i] {
      queued.arrive();
      s.acquire();
      {
        std::lock_guard lock(m);
        order.push_back(i);
      }
      through.arrive();
    });
    ASSERT_TRUE(queued.wait_for(i + 1));
    // Only a sleep can let fiber i queue (a few instructions after arrive()) before fiber i+1
    // starts; generous, as a loaded machine may preempt it in between.
    std::this_thread::sleep_for(50ms);
  }
  s.release(2);
  ASSERT_TRUE(through.wait_for(2));
  s.release(2);
  ASSERT_TRUE(through.wait_for(4));
  std::lock_guard lock(m);
  ASSERT_EQ(order.size(), std::size_t{n});
  std::vector<int> first(order.begin(), order.begin() + 2);
  std::sort(first.begin(), first.end());
  EXPECT_EQ(first, (std::vector<int>{0, 1}));
  EXPECT_FALSE(s.try_acquire());
}

TEST_P(SyncSemaphoreWorkersTest, AcquireCancelledFromAFiberAndAThreadKeepsNoPermit) {
  goro::counting_semaphore<> s{0};
  std::stop_source by_fiber;
  std::stop_source by_thread;
  std::atomic<int> cancelled{0};
  event_count returned;
  event_count served;
  goro::runtime rt{opts()};
  for (std::stop_source* src : {&by_fiber, &by_thread}) {
    rt.go([&, src] {
      if (!s.acquire(src->get_token())) cancelled.fetch_add(1);
      returned.arrive();
    });
  }
  rt.go([&] {
    s.acquire();  // queued behind the cancellable ones
    served.arrive();
  });
  rt.go([&] {
    goro::this_fiber::sleep_for(20ms);  // lets the acquirers queue
    by_fiber.request_stop();
  });
  let_it_block();
  std::thread([&] { by_thread.request_stop(); }).join();
  ASSERT_TRUE(returned.wait_for(2));
  EXPECT_EQ(cancelled.load(), 2);
  s.release();  // must reach the plain acquire, not a cancelled one
  EXPECT_TRUE(served.wait_for(1));
  EXPECT_FALSE(s.try_acquire());
}

TEST_P(SyncSemaphoreWorkersTest, DeadlinesAndASignalFromAThread) {
  goro::binary_semaphore s{0};
  event_count done;
  goro::runtime rt{opts()};
  rt.go([&] {
    const auto start = steady::now();
    EXPECT_FALSE(s.try_acquire_for(20ms));
    EXPECT_GE(steady::now() - start, 20ms);
    std::stop_source never;
    EXPECT_FALSE(s.try_acquire_until(steady::now() + 5ms, never.get_token()));
    done.arrive();
    EXPECT_TRUE(s.try_acquire_for(patience));  // the thread's release below
    done.arrive();
  });
  ASSERT_TRUE(done.wait_for(1));
  std::thread([&] { s.release(); }).join();
  EXPECT_TRUE(done.wait_for(2));
}

// ============================================================================================
// group
// ============================================================================================

class SyncGroupWorkersTest : public goro_test::workers_test {};
INSTANTIATE_TEST_SUITE_P(Workers, SyncGroupWorkersTest, goro_test::worker_counts(),
                         goro_test::worker_count_name);

// Runs body in a fiber on `rt` and waits for it from this thread.
template <class F>
void in_fiber(goro::runtime& rt, F body) {
  goro::binary_semaphore done{0};
  rt.go([&] {
    body();
    done.release();
  });
  done.acquire();
}

TEST_P(SyncGroupWorkersTest, WaitsForEveryFunction) {
  constexpr int n = 50;
  goro::runtime rt{opts()};
  std::atomic<int> ran{0};
  in_fiber(rt, [&] {
    goro::group g;
    for (int i = 0; i < n; ++i) {
      g.go([&] { ran.fetch_add(1); });
      g.go([&](std::stop_token st) {
        EXPECT_FALSE(st.stop_requested());
        ran.fetch_add(1);
      });
    }
    g.wait();
    EXPECT_TRUE(g.get_stop_token().stop_requested()) << "wait() requests stop, as Go's cancel";
  });
  EXPECT_EQ(ran.load(), 2 * n);
}

TEST_P(SyncGroupWorkersTest, FirstExceptionIsRethrownAndStopsTheOthers) {
  constexpr int others = 6;
  goro::runtime rt{opts()};
  std::atomic<int> saw_stop{0};
  in_fiber(rt, [&] {
    goro::group g;
    for (int i = 0; i < others; ++i) {
      g.go([&](std::stop_token st) {
        // Blocks until the group is stopped: a semaphore nobody releases.
        goro::binary_semaphore never{0};
        if (!never.acquire(st)) saw_stop.fetch_add(1);
      });
    }
    g.go([] {
      goro::this_fiber::sleep_for(2ms);
      throw std::runtime_error("boom");
    });
    g.go([] {
      goro::this_fiber::sleep_for(30ms);
      throw std::logic_error("second");  // after the stop: dropped
    });
    try {
      g.wait();
      ADD_FAILURE() << "wait() did not rethrow";
    } catch (const std::runtime_error& e) {
      EXPECT_STREQ(e.what(), "boom");
    }
  });
  EXPECT_EQ(saw_stop.load(), others);
}

TEST_P(SyncGroupWorkersTest, LimitCapsHowManyRunAtOnce) {
  constexpr int limit = 3;
  constexpr int n = 20;
  goro::runtime rt{opts()};
  std::atomic<int> running{0};
  std::atomic<int> max_running{0};
  event_count reached;  // the limit was reached once
  in_fiber(rt, [&] {
    goro::group g{limit};
    for (int i = 0; i < n; ++i) {
      g.go([&] {
        const int now = running.fetch_add(1) + 1;
        note_max(max_running, now);
        if (now == limit) reached.arrive();
        // The first `limit` functions wait for each other, so the limit is reached for sure.
        EXPECT_TRUE(reached.wait_for(1));
        goro::this_fiber::yield();
        running.fetch_sub(1);
      });
    }
    g.wait();
  });
  EXPECT_EQ(max_running.load(), limit);
}

TEST_P(SyncGroupWorkersTest, TryGoAndSetLimit) {
  goro::runtime rt{opts()};
  in_fiber(rt, [&] {
    goro::group g;
    g.set_limit(1);
    goro::binary_semaphore release_first{0};
    EXPECT_TRUE(g.try_go([&] { release_first.acquire(); }));
    EXPECT_FALSE(g.try_go([] {})) << "at the limit";
    EXPECT_THROW(g.set_limit(2), std::logic_error) << "a function is running";
    release_first.release();
    g.wait();
  });
}

TEST_P(SyncGroupWorkersTest, ParentStopReachesTheGroup) {
  goro::runtime rt{opts()};
  std::stop_source parent;
  std::atomic<bool> stopped{false};
  event_count started;
  goro::binary_semaphore done{0};
  rt.go([&] {
    goro::group g{parent.get_token()};
    g.go([&](std::stop_token st) {
      started.arrive();
      goro::binary_semaphore never{0};
      stopped.store(!never.acquire(st));
    });
    g.wait();
    done.release();
  });
  ASSERT_TRUE(started.wait_for(1));
  std::thread([&] { parent.request_stop(); }).join();
  EXPECT_TRUE(done.try_acquire_for(patience));
  EXPECT_TRUE(stopped.load());
}

TEST(SyncGroupTest, MisuseAfterWaitThrows) {
  goro::runtime rt{goro::options{.workers = 1}};
  in_fiber(rt, [] {
    goro::group g;
    g.go([] {});
    g.wait();
    try {
      g.go([] {});
      ADD_FAILURE() << "no std::logic_error";
    } catch (const std::logic_error& e) {
      EXPECT_NE(std::string(e.what()).find("goro::group::go"), std::string::npos);
    }
    EXPECT_THROW(g.try_go([] {}), std::logic_error);
    EXPECT_THROW(g.wait(), std::logic_error);
    EXPECT_THROW(g.set_limit(2), std::logic_error);
  });
}

TEST(SyncGroupTest, WaitFromAPlainThreadAndDestroyWithoutWait) {
  // From a plain thread, go() uses the default runtime; wait() blocks the thread.
  std::atomic<int> ran{0};
  {
    goro::group g{2};
    for (int i = 0; i < 10; ++i) g.go([&] { ran.fetch_add(1); });
    g.wait();
  }
  EXPECT_EQ(ran.load(), 10);
  std::atomic<bool> saw_stop{false};
  {
    goro::group g;
    g.go([&](std::stop_token st) {
      goro::binary_semaphore never{0};
      saw_stop.store(!never.acquire(st));
    });
  }  // ~group requests stop and waits
  EXPECT_TRUE(saw_stop.load());
}

}  // namespace
