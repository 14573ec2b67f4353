// SPDX-License-Identifier: Apache-2.0
// The channel lock biased to a lone worker (docs/channels.md, "The lock, biased to a lone
// worker"), driven directly by plain threads that pose as owners by passing a token: an owner
// locking with plain stores while another thread revokes the bias mid-stream, in many fresh
// locks so that the revocation lands at every point of the owner's loop. Exclusion is checked
// twice: a flag that two holders at once would both see set, and a plain counter whose lost
// increments (and, under ThreadSanitizer, whose race) would show.
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <thread>

#include <gtest/gtest.h>

#include "chan/biased_lock.hpp"
#include "platform/asymmetric_fence.hpp"
#include "test_support.hpp"

namespace {

using goro::detail::biased_lock;
using goro_test::scaled;

// The bias is granted only with asymmetric fences on; here as a runtime would have them.
const bool asymmetric = goro::detail::init_asymmetric_fences();

}  // namespace

// As lock(), for a caller that says who it is: `me` is an identity that no other thread uses, or
// 0 for none. REQUIRES: me != 1, and asymmetric fences on if me != 0.
struct goro::detail::biased_lock_test_peer {
  static void lock_as(biased_lock& lock, std::uintptr_t me) noexcept
      GORO_ACQUIRE(lock) GORO_NO_THREAD_SAFETY_ANALYSIS {
    if (me == 0 || !lock.lock_biased(me)) lock.lock_shared();
  }
};

namespace {

using goro::detail::biased_lock_test_peer;

struct guarded {
  biased_lock lock;
  std::atomic<bool> inside{false};
  std::size_t count = 0;  // plain: written only under the lock
  std::atomic<int> overlaps{0};

  void critical_section(std::uintptr_t token) {
    biased_lock_test_peer::lock_as(lock, token);
    if (inside.exchange(true, std::memory_order_relaxed)) overlaps.fetch_add(1);
    ++count;
    inside.store(false, std::memory_order_relaxed);
    lock.unlock();
  }
};

// An owner takes the lock `per_thread` times; `others` threads start once it is `head_start`
// locks in and take it as many times each, with token 0 or a token of their own.
void race(std::size_t per_thread, std::size_t head_start, int others, bool others_have_tokens) {
  guarded g;
  std::atomic<std::size_t> owner_progress{0};
  static int owner_tag;
  static int other_tags[8];
  std::thread owner([&] {
    const auto token = reinterpret_cast<std::uintptr_t>(&owner_tag);
    for (std::size_t i = 0; i < per_thread; ++i) {
      g.critical_section(token);
      owner_progress.store(i + 1, std::memory_order_relaxed);
    }
  });
  std::thread threads[8];
  for (int t = 0; t < others; ++t) {
    threads[t] = std::thread([&, t] {
      while (owner_progress.load(std::memory_order_relaxed) < head_start) std::this_thread::yield();
      const std::uintptr_t token =
          others_have_tokens ? reinterpret_cast<std::uintptr_t>(&other_tags[t]) : 0;
      for (std::size_t i = 0; i < per_thread; ++i) g.critical_section(token);
    });
  }
  owner.join();
  for (int t = 0; t < others; ++t) threads[t].join();
  biased_lock_test_peer::lock_as(g.lock, 0);
  const std::size_t count = g.count;
  g.lock.unlock();
  EXPECT_EQ(g.overlaps.load(), 0);
  EXPECT_EQ(count, per_thread * static_cast<std::size_t>(1 + others));
}

TEST(BiasedLockStressTest, OwnerAloneNeverRevokes) {
  if (!asymmetric) GTEST_SKIP() << "no membarrier here: the lock is never biased";
  race(scaled(100'000), 0, 0, false);
}

TEST(BiasedLockStressTest, ThreadRevokesWhileTheOwnerLocks) {
  if (!asymmetric) GTEST_SKIP() << "no membarrier here: the lock is never biased";
  const std::size_t rounds = scaled(400);
  for (std::size_t r = 0; r < rounds && !HasFailure(); ++r) {
    race(2'000, r % 1'000, 1, false);
  }
}

TEST(BiasedLockStressTest, SeveralThreadsRevokeAtOnce) {
  if (!asymmetric) GTEST_SKIP() << "no membarrier here: the lock is never biased";
  const std::size_t rounds = scaled(200);
  for (std::size_t r = 0; r < rounds && !HasFailure(); ++r) {
    race(2'000, r % 500, 3, false);
  }
}

// Another lone worker (a token of its own) does not share the bias: it revokes it too.
TEST(BiasedLockStressTest, AnotherOwnerRevokes) {
  if (!asymmetric) GTEST_SKIP() << "no membarrier here: the lock is never biased";
  const std::size_t rounds = scaled(200);
  for (std::size_t r = 0; r < rounds && !HasFailure(); ++r) {
    race(2'000, r % 500, 2, true);
  }
}

}  // namespace
