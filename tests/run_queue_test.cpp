// SPDX-License-Identifier: Apache-2.0
// Single-threaded tests of a worker's run queue (src/sched/run_queue.hpp; design in
// docs/scheduler.md, "Run queues and placement"), driven directly, without a runtime: fiber_ring's
// orders (push/pop_oldest first in first out, pop_newest last in first out, grab takes
// ceil(half) oldest first into at most capacity / 2 slots), its capacity, take_oldest_if's
// refusal once the front has moved and its one-fiber take otherwise, a thief's stale snapshot
// across the owner's newest-first takes, a long random mix checked against a model deque, and
// run_queue's choice order (next, newest displaced, oldest queued) and its thieves' entry points.
// Each test runs with the queue shared and unshared (set_shared(false)): one thread must see the
// same behaviour either way. The fibers are fake: distinct addresses in an array, never
// dereferenced by the queue. The concurrent tests are in run_queue_stress_test.cpp.
#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "sched/run_queue.hpp"

namespace {

using goro::detail::fiber;
using goro::detail::fiber_ring;
using goro::detail::run_queue;

constexpr std::uint32_t cap = fiber_ring::capacity;
constexpr std::uint32_t half = cap / 2;

// Distinct fake fibers: the addresses of the elements of an array. The queue only stores and
// compares the pointers.
class fake_fibers {
 public:
  explicit fake_fibers(std::size_t n) : storage_(n) {}
  fiber* operator[](std::size_t i) { return reinterpret_cast<fiber*>(&storage_.at(i)); }
  // The index of f, or -1 if f is not one of ours (nullptr included).
  long index(const fiber* f) const {
    const auto p = reinterpret_cast<std::uintptr_t>(f);
    const auto base = reinterpret_cast<std::uintptr_t>(storage_.data());
    if (p < base || (p - base) % sizeof(std::uint64_t) != 0) return -1;
    const std::size_t i = (p - base) / sizeof(std::uint64_t);
    return i < storage_.size() ? static_cast<long>(i) : -1;
  }

 private:
  std::vector<std::uint64_t> storage_;
};

// A grab destination of capacity / 2 slots followed by a guard slot that must stay untouched.
struct grab_buffer {
  fiber* slots[half + 1];
  fiber* const guard = reinterpret_cast<fiber*>(std::uintptr_t{0xdead0});
  grab_buffer() {
    for (fiber*& s : slots) s = nullptr;
    slots[half] = guard;
  }
  bool guard_intact() const { return slots[half] == guard; }
};

class FiberRingTest : public ::testing::TestWithParam<bool> {
 protected:
  FiberRingTest() { ring_->set_shared(GetParam()); }
  std::unique_ptr<fiber_ring> ring_ = std::make_unique<fiber_ring>();
  fake_fibers fibers_{4 * cap};
};

std::string shared_name(const ::testing::TestParamInfo<bool>& info) {
  return info.param ? "shared" : "unshared";
}

TEST_P(FiberRingTest, EmptyRingGivesNothing) {
  grab_buffer out;
  EXPECT_TRUE(ring_->empty());
  EXPECT_EQ(ring_->pop_oldest(), nullptr);
  EXPECT_EQ(ring_->pop_newest(), nullptr);
  EXPECT_EQ(ring_->grab(out.slots), 0u);
  EXPECT_EQ(ring_->take_oldest_if(ring_->oldest()), nullptr);
  EXPECT_TRUE(ring_->empty());
  EXPECT_TRUE(out.guard_intact());
}

TEST_P(FiberRingTest, PopOldestIsFirstInFirstOut) {
  for (int i = 0; i < 10; ++i) ASSERT_TRUE(ring_->push(fibers_[i]));
  EXPECT_FALSE(ring_->empty());
  for (int i = 0; i < 10; ++i) EXPECT_EQ(ring_->pop_oldest(), fibers_[i]) << i;
  EXPECT_EQ(ring_->pop_oldest(), nullptr);
  EXPECT_TRUE(ring_->empty());
}

TEST_P(FiberRingTest, PopNewestIsLastInFirstOut) {
  for (int i = 0; i < 10; ++i) ASSERT_TRUE(ring_->push(fibers_[i]));
  for (int i = 9; i >= 0; --i) EXPECT_EQ(ring_->pop_newest(), fibers_[i]) << i;
  EXPECT_EQ(ring_->pop_newest(), nullptr);
  EXPECT_EQ(ring_->pop_oldest(), nullptr);
  EXPECT_TRUE(ring_->empty());
}

// The one-fiber case, where pop_newest races thieves by CAS: alone, it must still take it, and
// leave the ring usable at the right position.
TEST_P(FiberRingTest, PopNewestOfTheOnlyFiberThenReuse) {
  for (int round = 0; round < 3 * static_cast<int>(cap); ++round) {
    ASSERT_TRUE(ring_->push(fibers_[round % 8]));
    ASSERT_EQ(ring_->pop_newest(), fibers_[round % 8]) << round;
    ASSERT_TRUE(ring_->empty()) << round;
    ASSERT_EQ(ring_->pop_newest(), nullptr) << round;
    ASSERT_EQ(ring_->pop_oldest(), nullptr) << round;
  }
  // The front did not move: the last pops were from the back.
  const std::uint32_t h = ring_->oldest();
  ASSERT_TRUE(ring_->push(fibers_[1]));
  ASSERT_TRUE(ring_->push(fibers_[2]));
  EXPECT_EQ(ring_->oldest(), h);
  EXPECT_EQ(ring_->pop_oldest(), fibers_[1]);
  EXPECT_EQ(ring_->oldest(), h + 1);
  EXPECT_EQ(ring_->pop_newest(), fibers_[2]);
  EXPECT_TRUE(ring_->empty());
}

TEST_P(FiberRingTest, MixedEndsTakeFromTheirOwnEnd) {
  for (int i = 0; i < 6; ++i) ASSERT_TRUE(ring_->push(fibers_[i]));  // 0 1 2 3 4 5
  EXPECT_EQ(ring_->pop_oldest(), fibers_[0]);                        // 1 2 3 4 5
  EXPECT_EQ(ring_->pop_newest(), fibers_[5]);                        // 1 2 3 4
  ASSERT_TRUE(ring_->push(fibers_[6]));                              // 1 2 3 4 6
  EXPECT_EQ(ring_->pop_newest(), fibers_[6]);                        // 1 2 3 4
  EXPECT_EQ(ring_->pop_oldest(), fibers_[1]);                        // 2 3 4
  EXPECT_EQ(ring_->pop_newest(), fibers_[4]);                        // 2 3
  EXPECT_EQ(ring_->pop_oldest(), fibers_[2]);                        // 3
  EXPECT_EQ(ring_->pop_newest(), fibers_[3]);                        //
  EXPECT_EQ(ring_->pop_newest(), nullptr);
  EXPECT_EQ(ring_->pop_oldest(), nullptr);
  EXPECT_TRUE(ring_->empty());
}

// Full at 256, at any position of the ring's indices: the 257th push fails and changes nothing;
// a pop from either end makes room for exactly one more.
TEST_P(FiberRingTest, PushFailsWhenFull) {
  for (std::uint32_t offset : {0u, 1u, 100u, cap - 1, cap, 3 * cap + 17}) {
    SCOPED_TRACE(offset);
    auto ring = std::make_unique<fiber_ring>();
    ring->set_shared(GetParam());
    for (std::uint32_t i = 0; i < offset; ++i) {
      ASSERT_TRUE(ring->push(fibers_[0]));
      ASSERT_EQ(ring->pop_oldest(), fibers_[0]);
    }
    for (std::uint32_t i = 0; i < cap; ++i) ASSERT_TRUE(ring->push(fibers_[i])) << i;
    EXPECT_FALSE(ring->push(fibers_[cap]));
    EXPECT_FALSE(ring->push(fibers_[cap]));
    EXPECT_EQ(ring->pop_oldest(), fibers_[0]);
    EXPECT_TRUE(ring->push(fibers_[cap]));
    EXPECT_FALSE(ring->push(fibers_[cap + 1]));
    EXPECT_EQ(ring->pop_newest(), fibers_[cap]);
    EXPECT_TRUE(ring->push(fibers_[cap + 2]));
    EXPECT_FALSE(ring->push(fibers_[cap + 3]));
    // Contents: 1 .. cap-1, then cap+2.
    for (std::uint32_t i = 1; i < cap; ++i) ASSERT_EQ(ring->pop_oldest(), fibers_[i]) << i;
    EXPECT_EQ(ring->pop_oldest(), fibers_[cap + 2]);
    EXPECT_EQ(ring->pop_oldest(), nullptr);
    EXPECT_TRUE(ring->empty());
  }
}

// grab takes ceil(k / 2) of k fibers, the oldest, in order, writing no more than capacity / 2
// slots; the rest stay, in order.
TEST_P(FiberRingTest, GrabTakesTheOldestHalfRoundedUp) {
  for (std::uint32_t k = 0; k <= cap; ++k) {
    SCOPED_TRACE(k);
    auto ring = std::make_unique<fiber_ring>();
    ring->set_shared(GetParam());
    // Start part-way round the ring so that grabs also cross the wrap of the slot array.
    for (std::uint32_t i = 0; i < k % 7 * 37; ++i) {
      ASSERT_TRUE(ring->push(fibers_[0]));
      ASSERT_EQ(ring->pop_oldest(), fibers_[0]);
    }
    for (std::uint32_t i = 0; i < k; ++i) ASSERT_TRUE(ring->push(fibers_[i]));
    grab_buffer out;
    const std::uint32_t n = ring->grab(out.slots);
    ASSERT_EQ(n, (k + 1) / 2);
    ASSERT_TRUE(out.guard_intact());
    for (std::uint32_t i = 0; i < n; ++i) ASSERT_EQ(out.slots[i], fibers_[i]) << i;
    for (std::uint32_t i = n; i < k; ++i) ASSERT_EQ(ring->pop_oldest(), fibers_[i]) << i;
    ASSERT_EQ(ring->pop_oldest(), nullptr);
    ASSERT_TRUE(ring->empty());
  }
}

TEST_P(FiberRingTest, RepeatedGrabsDrainOldestFirst) {
  for (std::uint32_t i = 0; i < cap; ++i) ASSERT_TRUE(ring_->push(fibers_[i]));
  std::uint32_t next = 0;
  for (std::uint32_t left : {256u, 128u, 64u, 32u, 16u, 8u, 4u, 2u, 1u}) {
    grab_buffer out;
    ASSERT_EQ(ring_->grab(out.slots), (left + 1) / 2) << left;
    ASSERT_TRUE(out.guard_intact());
    for (std::uint32_t i = 0; i < (left + 1) / 2; ++i) ASSERT_EQ(out.slots[i], fibers_[next++]);
  }
  EXPECT_EQ(next, cap);
  EXPECT_TRUE(ring_->empty());
}

// take_oldest_if(h) refuses once any fiber has left the front since oldest() returned h, by
// pop_oldest, by a grab or by its own take; a pop from the back does not move the front.
// Otherwise it takes exactly one fiber, the oldest.
TEST_P(FiberRingTest, TakeOldestIfRefusesOnceTheFrontMoved) {
  for (int i = 0; i < 6; ++i) ASSERT_TRUE(ring_->push(fibers_[i]));
  std::uint32_t h = ring_->oldest();

  ASSERT_EQ(ring_->pop_oldest(), fibers_[0]);  // 1 2 3 4 5
  EXPECT_EQ(ring_->take_oldest_if(h), nullptr);
  EXPECT_EQ(ring_->pop_oldest(), fibers_[1]) << "a refused take_oldest_if took a fiber";

  grab_buffer out;
  h = ring_->oldest();                    // 2 3 4 5
  ASSERT_EQ(ring_->grab(out.slots), 2u);  // 4 5
  EXPECT_EQ(ring_->take_oldest_if(h), nullptr);

  h = ring_->oldest();
  ASSERT_TRUE(ring_->push(fibers_[6]));        // 4 5 6
  ASSERT_EQ(ring_->pop_newest(), fibers_[6]);  // 4 5
  ASSERT_EQ(ring_->pop_newest(), fibers_[5]);  // 4
  EXPECT_EQ(ring_->oldest(), h);
  ASSERT_TRUE(ring_->push(fibers_[7]));             // 4 7
  EXPECT_EQ(ring_->take_oldest_if(h), fibers_[4]);  // 7
  EXPECT_EQ(ring_->take_oldest_if(h), nullptr) << "its own take moved the front";
  EXPECT_EQ(ring_->oldest(), h + 1);

  // The only fiber, taken by pop_newest: shared, it races thieves for it by CAS on the front
  // (docs/scheduler.md), so the front moves; unshared, the front may stay.
  h = ring_->oldest();  // 7
  ASSERT_EQ(ring_->pop_newest(), fibers_[7]);
  EXPECT_EQ(ring_->take_oldest_if(h), nullptr) << "the ring is empty";
  ASSERT_TRUE(ring_->push(fibers_[8]));
  ASSERT_TRUE(ring_->push(fibers_[9]));
  if (GetParam()) {
    EXPECT_NE(ring_->oldest(), h);
    EXPECT_EQ(ring_->take_oldest_if(h), nullptr);
  }
  h = ring_->oldest();
  EXPECT_EQ(ring_->take_oldest_if(h), fibers_[8]);
  EXPECT_EQ(ring_->pop_oldest(), fibers_[9]);
  EXPECT_TRUE(ring_->empty());
  EXPECT_EQ(ring_->take_oldest_if(ring_->oldest()), nullptr);
}

// Repeated take_oldest_if, each on a fresh snapshot, drains k fibers one at a time, oldest
// first, and leaves the rest in place, also across the wrap of the slot array.
TEST_P(FiberRingTest, TakeOldestIfTakesOneFiberOldestFirst) {
  for (std::uint32_t k : {1u, 2u, 3u, 37u, cap - 1, cap}) {
    for (std::uint32_t offset : {0u, 1u, cap - 2, 5 * cap / 2}) {
      SCOPED_TRACE("k " + std::to_string(k) + ", offset " + std::to_string(offset));
      auto ring = std::make_unique<fiber_ring>();
      ring->set_shared(GetParam());
      for (std::uint32_t i = 0; i < offset; ++i) {
        ASSERT_TRUE(ring->push(fibers_[0]));
        ASSERT_EQ(ring->pop_oldest(), fibers_[0]);
      }
      for (std::uint32_t i = 0; i < k; ++i) ASSERT_TRUE(ring->push(fibers_[i]));
      const std::uint32_t taken = k / 2 + 1;
      for (std::uint32_t i = 0; i < taken; ++i) {
        const std::uint32_t h = ring->oldest();
        ASSERT_EQ(ring->take_oldest_if(h), fibers_[i]) << i;
        ASSERT_EQ(ring->oldest(), h + 1) << i;
      }
      for (std::uint32_t i = k; i-- > taken;) ASSERT_EQ(ring->pop_newest(), fibers_[i]) << i;
      ASSERT_EQ(ring->pop_newest(), nullptr);
      ASSERT_TRUE(ring->empty());
      ASSERT_EQ(ring->take_oldest_if(ring->oldest()), nullptr);
    }
  }
}

// The interleaving that made a half-grab take one fiber twice (docs/scheduler.md): a thief
// reads the front of A B C, then the owner takes C and B from the back before the thief takes.
// take_oldest_if, on that stale snapshot, takes A alone, and the ring stays consistent. The two
// sides run one after the other here: pausing a thief inside take_oldest_if, between its reads
// and its CAS, needs a hook in the header, so that window is left to the stress test
// (run_queue_stress_test.cpp).
TEST_P(FiberRingTest, StaleSnapshotAcrossNewestTakesTakesTheOldestOnce) {
  fiber* const a = fibers_[0];
  fiber* const b = fibers_[1];
  fiber* const c = fibers_[2];
  for (fiber* f : {a, b, c}) ASSERT_TRUE(ring_->push(f));
  std::uint32_t h = ring_->oldest();  // the thief's snapshot
  ASSERT_EQ(ring_->pop_newest(), c);
  ASSERT_EQ(ring_->pop_newest(), b);
  EXPECT_EQ(ring_->take_oldest_if(h), a);
  EXPECT_EQ(ring_->pop_newest(), nullptr) << "A taken twice";
  EXPECT_EQ(ring_->pop_oldest(), nullptr) << "A taken twice";
  EXPECT_TRUE(ring_->empty());
  // Head did not pass tail: the ring fills and drains as before.
  for (std::uint32_t i = 0; i < cap; ++i) ASSERT_TRUE(ring_->push(fibers_[3 + i])) << i;
  EXPECT_FALSE(ring_->push(fibers_[3 + cap]));
  for (std::uint32_t i = 0; i < cap; ++i) ASSERT_EQ(ring_->pop_oldest(), fibers_[3 + i]) << i;
  EXPECT_TRUE(ring_->empty());

  // The same, but the owner takes A too before the thief: the thief gets nothing.
  for (fiber* f : {a, b, c}) ASSERT_TRUE(ring_->push(f));
  h = ring_->oldest();
  ASSERT_EQ(ring_->pop_newest(), c);
  ASSERT_EQ(ring_->pop_newest(), b);
  ASSERT_EQ(ring_->pop_newest(), a);
  EXPECT_EQ(ring_->take_oldest_if(h), nullptr) << "A taken twice";
  EXPECT_TRUE(ring_->empty());
  ASSERT_TRUE(ring_->push(c));
  EXPECT_EQ(ring_->take_oldest_if(ring_->oldest()), c);
  EXPECT_TRUE(ring_->empty());
}

// A long random mix of every operation against a model deque, over many wraps of the slots.
TEST_P(FiberRingTest, RandomMixMatchesAModelDeque) {
  const unsigned seed = std::random_device{}();
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937 rng(seed);
  std::deque<fiber*> model;
  std::size_t next = 0;
  for (int step = 0; step < 200000; ++step) {
    grab_buffer out;
    switch (rng() % 9) {
      case 0:
      case 1:
      case 2: {
        fiber* f = fibers_[next++ % (4 * cap)];
        const bool ok = ring_->push(f);
        ASSERT_EQ(ok, model.size() < cap) << step;
        if (ok) model.push_back(f);
        break;
      }
      case 3:
      case 4: {
        fiber* f = ring_->pop_oldest();
        ASSERT_EQ(f, model.empty() ? nullptr : model.front()) << step;
        if (!model.empty()) model.pop_front();
        break;
      }
      case 5:
      case 6: {
        fiber* f = ring_->pop_newest();
        ASSERT_EQ(f, model.empty() ? nullptr : model.back()) << step;
        if (!model.empty()) model.pop_back();
        break;
      }
      case 7: {
        // A thief's snapshot, then owner takes from either end, then the thief's take: it
        // refuses if the front moved (a pop_oldest) or the ring is empty, else takes the
        // oldest.
        const std::uint32_t h = ring_->oldest();
        bool moved = false;
        for (std::uint32_t n = rng() % 3; n > 0; --n) {
          if (rng() % 2 == 0) {
            ASSERT_EQ(ring_->pop_oldest(), model.empty() ? nullptr : model.front()) << step;
            if (!model.empty()) {
              model.pop_front();
              moved = true;
            }
          } else {
            ASSERT_EQ(ring_->pop_newest(), model.empty() ? nullptr : model.back()) << step;
            if (!model.empty()) model.pop_back();
          }
        }
        fiber* f = ring_->take_oldest_if(h);
        ASSERT_EQ(f, moved || model.empty() ? nullptr : model.front()) << step;
        if (f != nullptr) model.pop_front();
        break;
      }
      default: {
        const std::uint32_t n = ring_->grab(out.slots);
        ASSERT_EQ(n, (model.size() + 1) / 2) << step;
        ASSERT_TRUE(out.guard_intact());
        for (std::uint32_t i = 0; i < n; ++i) {
          ASSERT_EQ(out.slots[i], model.front()) << step;
          model.pop_front();
        }
        break;
      }
    }
    ASSERT_EQ(ring_->empty(), model.empty()) << step;
  }
}

INSTANTIATE_TEST_SUITE_P(Sharing, FiberRingTest, ::testing::Bool(), shared_name);

class RunQueueTest : public ::testing::TestWithParam<bool> {
 protected:
  RunQueueTest() { q_->set_shared(GetParam()); }
  std::unique_ptr<run_queue> q_ = std::make_unique<run_queue>();
  fake_fibers fibers_{4 * cap};
};

TEST_P(RunQueueTest, EmptyQueueGivesNothing) {
  grab_buffer out;
  EXPECT_TRUE(q_->empty());
  EXPECT_TRUE(q_->queued_empty());
  EXPECT_EQ(q_->pop(), nullptr);
  EXPECT_EQ(q_->pop_queued(), nullptr);
  EXPECT_EQ(q_->pop_oldest_displaced(), nullptr);
  EXPECT_EQ(q_->steal(out.slots), 0u);
  const auto seen = q_->peek_stuck();
  EXPECT_EQ(seen.next, nullptr);
  EXPECT_FALSE(seen.displaced);
  EXPECT_FALSE(q_->take_next_if(nullptr));
  EXPECT_EQ(q_->steal_displaced_if(seen), nullptr);
  EXPECT_TRUE(out.guard_intact());
  // A snapshot of an empty displaced ring takes nothing, even once the ring has a fiber.
  ASSERT_TRUE(q_->push_displaced(fibers_[0]));
  EXPECT_EQ(q_->steal_displaced_if(seen), nullptr);
  EXPECT_EQ(q_->steal_displaced_if(q_->peek_stuck()), fibers_[0]);
  EXPECT_TRUE(q_->empty());
}

// pop: the next slot, then the newest displaced fiber, then the oldest queued one.
TEST_P(RunQueueTest, PopTakesNextThenNewestDisplacedThenOldestQueued) {
  ASSERT_TRUE(q_->push(fibers_[0]));
  ASSERT_TRUE(q_->push(fibers_[1]));
  EXPECT_EQ(q_->set_next(fibers_[10]), nullptr);
  for (int i = 11; i < 14; ++i) {
    fiber* old = q_->set_next(fibers_[i]);
    ASSERT_EQ(old, fibers_[i - 1]);
    ASSERT_TRUE(q_->push_displaced(old));
  }
  EXPECT_FALSE(q_->empty());
  EXPECT_FALSE(q_->queued_empty());
  // next 13; displaced 10 11 12; queued 0 1
  EXPECT_EQ(q_->pop(), fibers_[13]);
  EXPECT_EQ(q_->pop(), fibers_[12]);
  EXPECT_EQ(q_->set_next(fibers_[14]), nullptr);
  EXPECT_EQ(q_->pop(), fibers_[14]);
  EXPECT_EQ(q_->pop(), fibers_[11]);
  EXPECT_EQ(q_->pop(), fibers_[10]);
  EXPECT_EQ(q_->pop(), fibers_[0]);
  EXPECT_EQ(q_->pop(), fibers_[1]);
  EXPECT_EQ(q_->pop(), nullptr);
  EXPECT_TRUE(q_->empty());
}

TEST_P(RunQueueTest, FairnessPopsSkipTheNewestFirstOrder) {
  ASSERT_TRUE(q_->push(fibers_[0]));
  ASSERT_TRUE(q_->push(fibers_[1]));
  for (int i = 10; i < 13; ++i) ASSERT_TRUE(q_->push_displaced(fibers_[i]));
  ASSERT_EQ(q_->set_next(fibers_[20]), nullptr);
  EXPECT_EQ(q_->pop_queued(), fibers_[0]);
  EXPECT_EQ(q_->pop_oldest_displaced(), fibers_[10]);
  EXPECT_EQ(q_->pop(), fibers_[20]);
  EXPECT_EQ(q_->pop(), fibers_[12]);
  EXPECT_EQ(q_->pop_oldest_displaced(), fibers_[11]);
  EXPECT_EQ(q_->pop_oldest_displaced(), nullptr);
  EXPECT_EQ(q_->pop_queued(), fibers_[1]);
  EXPECT_EQ(q_->pop_queued(), nullptr);
  EXPECT_TRUE(q_->empty());
}

TEST_P(RunQueueTest, RingsFillSeparately) {
  for (std::uint32_t i = 0; i < cap; ++i) ASSERT_TRUE(q_->push(fibers_[i]));
  EXPECT_FALSE(q_->push(fibers_[cap]));
  for (std::uint32_t i = 0; i < cap; ++i) ASSERT_TRUE(q_->push_displaced(fibers_[cap + i]));
  EXPECT_FALSE(q_->push_displaced(fibers_[2 * cap]));
  // take_half: the oldest half of the full queued ring, for the global queue.
  grab_buffer out;
  ASSERT_EQ(q_->take_half(out.slots), half);
  EXPECT_TRUE(out.guard_intact());
  for (std::uint32_t i = 0; i < half; ++i) ASSERT_EQ(out.slots[i], fibers_[i]);
  EXPECT_TRUE(q_->push(fibers_[2 * cap]));
  EXPECT_FALSE(q_->push_displaced(fibers_[2 * cap + 1]));
}

// Thieves: steal takes half of queued; the stuck candidates are taken only if unchanged, and
// displaced fibers one at a time.
TEST_P(RunQueueTest, ThievesTakeQueuedAtOnceAndStuckOnlyIfUnchanged) {
  grab_buffer out;
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(q_->push(fibers_[i]));
  for (int i = 10; i < 14; ++i) ASSERT_TRUE(q_->push_displaced(fibers_[i]));
  ASSERT_EQ(q_->set_next(fibers_[20]), nullptr);

  ASSERT_EQ(q_->steal(out.slots), 3u);
  for (int i = 0; i < 3; ++i) EXPECT_EQ(out.slots[i], fibers_[i]);

  auto seen = q_->peek_stuck();
  EXPECT_EQ(seen.next, fibers_[20]);
  EXPECT_TRUE(seen.displaced);
  // The owner runs the next fiber and puts another there: the snapshot's one is gone.
  ASSERT_EQ(q_->pop(), fibers_[20]);
  ASSERT_EQ(q_->set_next(fibers_[21]), nullptr);
  EXPECT_FALSE(q_->take_next_if(seen.next));
  EXPECT_FALSE(q_->take_next_if(nullptr));
  // The owner took the oldest displaced fiber (fairness): the front moved.
  ASSERT_EQ(q_->pop_oldest_displaced(), fibers_[10]);  // 11 12 13
  EXPECT_EQ(q_->steal_displaced_if(seen), nullptr) << "the front moved";
  seen = q_->peek_stuck();
  ASSERT_EQ(q_->set_next(fibers_[22]), fibers_[21]);
  ASSERT_TRUE(q_->push_displaced(fibers_[21]));  // 11 12 13 21
  EXPECT_FALSE(q_->take_next_if(seen.next));
  // One fiber per take, the oldest; the take itself moves the front.
  EXPECT_EQ(q_->steal_displaced_if(seen), fibers_[11]);  // 12 13 21
  EXPECT_EQ(q_->steal_displaced_if(seen), nullptr) << "the front moved";
  EXPECT_EQ(q_->steal_displaced_if(q_->peek_stuck()), fibers_[12]);  // 13 21
  seen = q_->peek_stuck();
  EXPECT_TRUE(q_->take_next_if(seen.next));
  EXPECT_EQ(seen.next, fibers_[22]);
  EXPECT_FALSE(q_->take_next_if(seen.next)) << "taken twice";
  EXPECT_TRUE(out.guard_intact());

  // Left: displaced 13 21, queued 3 4.
  EXPECT_EQ(q_->pop(), fibers_[21]);
  EXPECT_EQ(q_->pop(), fibers_[13]);
  EXPECT_EQ(q_->pop(), fibers_[3]);
  EXPECT_EQ(q_->pop(), fibers_[4]);
  EXPECT_EQ(q_->pop(), nullptr);
  EXPECT_TRUE(q_->empty());
  seen = q_->peek_stuck();
  EXPECT_FALSE(seen.displaced);
  EXPECT_EQ(seen.next, nullptr);
}

// A next slot emptied by a thief: set_next fills it and displaces nothing.
TEST_P(RunQueueTest, SetNextAfterAThiefTookTheSlotDisplacesNothing) {
  ASSERT_EQ(q_->set_next(fibers_[1]), nullptr);
  ASSERT_TRUE(q_->take_next_if(fibers_[1]));
  EXPECT_TRUE(q_->empty());
  EXPECT_EQ(q_->set_next(fibers_[2]), nullptr);
  EXPECT_EQ(q_->pop(), fibers_[2]);
  EXPECT_TRUE(q_->empty());
}

INSTANTIATE_TEST_SUITE_P(Sharing, RunQueueTest, ::testing::Bool(), shared_name);

}  // namespace
