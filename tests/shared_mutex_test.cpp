// SPDX-License-Identifier: Apache-2.0
// Tests of goro::shared_mutex: parallel readers, writers excluding everyone, neither side starving,
// cancellation. Go's sync tests written again as behaviour; concurrency tests run once per worker
// count, and the heavy mixes are in sync_stress_test.cpp.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
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
#include "sync_test_support.hpp"
#include "test_support.hpp"

namespace {

using namespace std::chrono_literals;
using goro_test::scaled;
using steady = std::chrono::steady_clock;
using namespace sync_test;

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

// A shared_mutex's last user may delete it as soon as it has had it, even while the unlock that
// freed it is still returning (as for std::shared_mutex; goro::mutex's own test has the story).
// Here the test's thread is the last reader and a writer waits, so unlock_shared() takes the
// slow path to hand the mutex over; the writer, cancelled at about the same moment, gives up,
// then takes the mutex, frees it and deletes it. The spin sweeps the unlock across the writer's
// giving up. unlock_shared() once dropped its count first and took the spinlock after: a writer
// giving up meanwhile could find the mutex free and delete it while the unlock still waited for
// the spinlock. This test did not catch that unaided on the 2-CPU development machine (the
// writer had to win a window of some tens of nanoseconds, then outrun the unlock), only with
// the window widened by a delay (see the commit); it stands guard over the order, under ASan.
TEST_P(SyncSharedMutexWorkersTest, MayBeDestroyedByItsLastUserWhileAnUnlockSharedReturns) {
  // Only ASan sees the freed mutex used; the other builds run fewer rounds for the logic.
  const int rounds = static_cast<int>(scaled(goro_test::sanitized ? 3000 : 500));
  goro::runtime rt{opts()};
  // The reader is this thread, so that it runs beside the writer's fiber even on one worker.
  for (int r = 0; r < rounds; ++r) {
    auto* m = new goro::shared_mutex;
    std::stop_source stop;
    goro::wait_group writer_done;
    writer_done.add(1);
    m->lock_shared();
    rt.go([m, token = stop.get_token(), &writer_done] {
      if (m->lock(token)) m->unlock();
      m->lock();  // free once the reader has unlocked: then nobody else touches it
      m->unlock();
      delete m;
      writer_done.done();
    });
    // A waiting writer holds back new readers: that is how we see it has queued.
    while (m->try_lock_shared()) {
      m->unlock_shared();
      std::this_thread::yield();
    }
    stop.request_stop();
    spin_for(r * 37 % 1024 * 16);
    m->unlock_shared();
    writer_done.wait();
  }
}

// As above for unlock(): the test's thread holds the mutex exclusively and a writer (even
// rounds) or a reader (odd rounds) waits for it, cancelled at about the moment of the unlock; the
// waiter then takes the mutex itself, frees it and deletes it. An unlock whose waiters had all
// given up freed the mutex under the spinlock and released the spinlock after: a window of a few
// instructions, which this test did not catch unaided, only with it widened by a delay (see the
// commit); it stands guard over the order, under ASan.
TEST_P(SyncSharedMutexWorkersTest, MayBeDestroyedByItsLastUserWhileAnUnlockReturns) {
  const int rounds = static_cast<int>(scaled(goro_test::sanitized ? 3000 : 500));
  goro::runtime rt{opts()};
  // The unlocking owner is this thread, so that it runs beside the waiter's fiber.
  for (int r = 0; r < rounds; ++r) {
    auto* m = new goro::shared_mutex;
    std::stop_source stop;
    goro::wait_group waiter_done;
    waiter_done.add(1);
    m->lock();
    const bool as_writer = r % 2 == 0;
    const std::uint64_t parked_before = rt.metrics().fibers_parked;
    rt.go([m, as_writer, token = stop.get_token(), &waiter_done] {
      if (as_writer) {
        if (m->lock(token)) m->unlock();
        while (!m->try_lock()) goro::this_fiber::yield();
        m->unlock();
      } else {
        if (m->lock_shared(token)) m->unlock_shared();
        while (!m->try_lock_shared()) goro::this_fiber::yield();
        m->unlock_shared();
      }
      delete m;
      waiter_done.done();
    });
    // Let the waiter queue: the parked count rises once it has (with metrics built in).
    for (int i = 0; i < 1000 && rt.metrics().fibers_parked <= parked_before; ++i) {
      std::this_thread::yield();
    }
    stop.request_stop();
    spin_for(r / 2 * 37 % 1024 * 16);
    m->unlock();
    waiter_done.wait();
  }
}

}  // namespace
