// SPDX-License-Identifier: Apache-2.0
// Stress tests of a worker's run queue (src/sched/run_queue.hpp; protocol and proofs in
// docs/scheduler.md, "Run queues and placement"), driven directly by plain std::threads, without
// a runtime: one owner thread and 1 to 3 thieves race over a fiber_ring, then over a run_queue,
// and every fake fiber pushed must be taken exactly once. Each kind of ring is raced the way
// run_queue uses it: a `displaced` ring, whose owner takes from both ends, loses fibers to
// thieves one at a time (take_oldest_if, on fresh and stale snapshots); a `queued` ring, whose
// owner takes only the oldest, loses half at a time (grab). The owner works in bursts that
// drain the ring to one fiber and to none, since the one-fiber race between the owner's take
// and a thief's is the delicate case. Beside exactly-once, the owner checks each take against
// what it knows (pop_newest returns the newest fiber it has not taken itself, or nothing), and
// each thread checks that fibers leave the front of a ring in push order. A corrupt ring can
// keep a thief spinning or an owner taking forever: the owner stops at the first problem it
// sees, and a thief that has not returned 10 s after being told to stop fails the test and is
// left behind. Sized by GORO_STRESS_SCALE (tests/test_support.hpp); each test also stops
// starting rounds once its time budget is spent. The fibers are fake: distinct addresses in an
// array, never dereferenced by the queue.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <random>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "sched/run_queue.hpp"
#include "test_support.hpp"

namespace {

using namespace std::chrono_literals;
using clock_type = std::chrono::steady_clock;
using goro::detail::fiber;
using goro::detail::fiber_ring;
using goro::detail::run_queue;
using goro_test::scaled;

// The queue's fences as a runtime would have them: asymmetric (membarrier) unless the kernel
// lacks it or GORO_NO_MEMBARRIER=1, which ctest also runs (the `.fallback_fences` tests).
const bool asymmetric = goro::detail::init_asymmetric_fences();

constexpr std::uint32_t cap = fiber_ring::capacity;
constexpr std::uint32_t half = cap / 2;

// Wall-clock budget of one test instance, after which it starts no new rounds.
constexpr auto time_budget = 1s;
// Fibers pushed per round (each round uses a fresh queue).
constexpr std::uint32_t fibers_per_round = 20000;

// Distinct fake fibers: the addresses of the elements of an array.
class fake_fibers {
 public:
  static constexpr std::uint32_t invalid = UINT32_MAX;

  explicit fake_fibers(std::size_t n) : storage_(n) {}
  std::size_t size() const { return storage_.size(); }
  fiber* operator[](std::size_t i) { return reinterpret_cast<fiber*>(&storage_[i]); }
  // The index of f, or `invalid` if f is not one of ours.
  std::uint32_t index(const fiber* f) const {
    const auto p = reinterpret_cast<std::uintptr_t>(f);
    const auto base = reinterpret_cast<std::uintptr_t>(storage_.data());
    if (p < base || (p - base) % sizeof(std::uint64_t) != 0) return invalid;
    const std::size_t i = (p - base) / sizeof(std::uint64_t);
    return i < storage_.size() ? static_cast<std::uint32_t>(i) : invalid;
  }

 private:
  std::vector<std::uint64_t> storage_;
};

// A grab destination of capacity / 2 slots followed by a guard slot that must stay untouched.
struct grab_buffer {
  fiber* slots[half + 1] = {};
  static fiber* guard() { return reinterpret_cast<fiber*>(std::uintptr_t{0xdead0}); }
  grab_buffer() { slots[half] = guard(); }
  bool guard_intact() const { return slots[half] == guard(); }
};

// What one thread saw: the fibers it took, in order, and the first few problems.
struct taker_log {
  std::string name;
  std::vector<std::uint32_t> taken;
  std::vector<std::string> problems;
  std::atomic<bool> finished{false};  // set by a thief as it returns

  void problem(std::string what) {
    if (problems.size() < 8) problems.push_back(name + ": " + std::move(what));
  }
};

// A short, variable pause, so that the two sides of a race meet at different offsets.
void spin(std::uint32_t n) {
  for (std::uint32_t i = 0; i < n; ++i) std::atomic_signal_fence(std::memory_order_seq_cst);
}

// Every fiber in [0, pushed) taken exactly once, by all logs together; failures name who took
// a fiber twice and which are missing. With `partial` (a taker's log is not there), only that
// none was taken twice.
void expect_exactly_once(const std::vector<const taker_log*>& logs, std::uint32_t pushed,
                         std::size_t round, bool partial = false) {
  std::vector<std::uint8_t> count(pushed, 0);
  std::vector<std::int16_t> first_taker(pushed, -1);
  int reported = 0;
  for (std::size_t l = 0; l < logs.size(); ++l) {
    for (std::string_view p : logs[l]->problems) ADD_FAILURE() << "round " << round << ": " << p;
    for (std::uint32_t i : logs[l]->taken) {
      if (i == fake_fibers::invalid || i >= pushed) {
        ADD_FAILURE() << "round " << round << ": " << logs[l]->name
                      << " took a fiber never pushed (index " << i << ")";
        continue;
      }
      if (++count[i] > 1 && reported++ < 8) {
        ADD_FAILURE() << "round " << round << ": fiber " << i << " taken twice, by "
                      << logs[static_cast<std::size_t>(first_taker[i])]->name << " and by "
                      << logs[l]->name;
      }
      if (first_taker[i] < 0) first_taker[i] = static_cast<std::int16_t>(l);
    }
  }
  std::size_t missing = 0;
  std::size_t dup = 0;
  std::uint32_t first_missing = 0;
  for (std::uint32_t i = 0; i < pushed; ++i) {
    if (count[i] == 0 && missing++ == 0) first_missing = i;
    if (count[i] > 1) ++dup;
  }
  if (!partial) {
    EXPECT_EQ(missing, 0u) << "round " << round << ": fibers never taken, first " << first_missing;
  }
  EXPECT_EQ(dup, 0u) << "round " << round << ": fibers taken more than once";
}

// Fibers leave the front of a ring in the order they were pushed (the owner pushes 0, 1, 2, ...
// and pop_newest takes only from the back), so each thread's front takes must increase.
class front_order {
 public:
  void check(taker_log& log, std::uint32_t i, const char* how) {
    if (last_ != none && i <= last_) {
      log.problem(std::string(how) + " took fiber " + std::to_string(i) + " from the front after " +
                  std::to_string(last_));
    }
    last_ = i;
  }

 private:
  static constexpr std::uint32_t none = UINT32_MAX;
  std::uint32_t last_ = none;
};

// Everything a round's threads share. A thief that does not return is left this, never freed.
template <class Queue>
struct round_state {
  explicit round_state(int thieves) : thief_logs(static_cast<std::size_t>(thieves)) {
    for (std::size_t t = 0; t < thief_logs.size(); ++t) {
      thief_logs[t].name = "thief " + std::to_string(t);
    }
  }
  Queue queue;
  fake_fibers fibers{fibers_per_round};
  std::atomic<bool> stop{false};
  taker_log owner_log{"owner", {}, {}};
  std::vector<taker_log> thief_logs;
};

// Joins the thieves; false (detaching them) if any is still running 10 s after being told to
// stop, which only a corrupt queue can cause.
bool join_all(std::vector<std::thread>& threads, std::vector<taker_log>& logs) {
  const auto deadline = clock_type::now() + 10s;
  for (;;) {
    bool all = true;
    for (taker_log& l : logs) all = all && l.finished.load(std::memory_order_acquire);
    if (all) break;
    if (clock_type::now() > deadline) {
      for (std::thread& t : threads) t.detach();
      return false;
    }
    std::this_thread::sleep_for(1ms);  // polling for an exit, not synchronising data
  }
  for (std::thread& t : threads) t.join();
  return true;
}

// Rounds of one Owner and `thieves` thieves over a fresh Queue, until GORO_STRESS_SCALE's count
// or the time budget is spent; after each, every fiber pushed must have been taken exactly once.
// Owner: Owner(Queue&, fake_fibers&, taker_log&, seed) with step(), done(), broken(),
// drain() (takes whatever the thieves left), expect_empty() and pushed().
template <class Queue, class Owner, class Thief>
void run_rounds(int thieves, Thief thief) {
  const auto start = clock_type::now();
  const std::size_t rounds = scaled(100);
  const unsigned seed = std::random_device{}();
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::size_t round = 0;
  for (; round < rounds && clock_type::now() - start < time_budget; ++round) {
    auto st = std::make_unique<round_state<Queue>>(thieves);
    std::vector<std::thread> threads;
    for (std::size_t t = 0; t < st->thief_logs.size(); ++t) {
      threads.emplace_back(thief, std::ref(st->queue), std::cref(st->fibers),
                           std::ref(st->thief_logs[t]), std::cref(st->stop),
                           seed + static_cast<unsigned>(round * 8 + t + 1));
    }
    Owner owner(st->queue, st->fibers, st->owner_log, seed + static_cast<unsigned>(round * 8));
    while (!owner.done() && !owner.broken()) owner.step();
    st->stop.store(true, std::memory_order_release);
    if (!join_all(threads, st->thief_logs)) {
      // A corrupt ring can keep a thief in grab's retry loop forever: leave it the round, and
      // report what the owner and the thieves that returned saw.
      const round_state<Queue>* left = st.release();
      ADD_FAILURE() << "round " << round << ": a thief did not return within 10 s";
      std::vector<const taker_log*> logs{&left->owner_log};
      for (const taker_log& l : left->thief_logs) {
        if (l.finished.load(std::memory_order_acquire)) logs.push_back(&l);
      }
      expect_exactly_once(logs, owner.pushed(), round, true);
      return;
    }
    owner.drain();
    owner.expect_empty();
    std::vector<const taker_log*> logs{&st->owner_log};
    for (const taker_log& l : st->thief_logs) logs.push_back(&l);
    expect_exactly_once(logs, owner.pushed(), round);
    if (::testing::Test::HasFailure()) break;
  }
  ::testing::Test::RecordProperty("rounds", static_cast<int>(round));
}

class RingStressTest : public ::testing::TestWithParam<int> {
 protected:
  void SetUp() override { RecordProperty("asymmetric_fences", asymmetric ? "yes" : "no"); }
  int thieves() const { return GetParam(); }
};

std::string thief_count_name(const ::testing::TestParamInfo<int>& info) {
  return "thieves_" + std::to_string(info.param);
}

// The owner of a `displaced` ring, in one round: push, pop_newest and pop_oldest. `model` holds
// the fibers it pushed and has not taken itself, oldest first; thieves take a prefix of them.
// So pop_newest must return model's last fiber or nothing (then thieves took them all), and
// pop_oldest one of model's fibers, all before it having gone to thieves.
class displaced_ring_owner {
 public:
  displaced_ring_owner(fiber_ring& ring, fake_fibers& fibers, taker_log& log, unsigned seed)
      : ring_(ring), fibers_(fibers), log_(log), rng_(seed) {}

  // Pushes up to k fibers.
  void push_some(std::uint32_t k) {
    for (std::uint32_t i = 0; i < k && next_ < fibers_.size(); ++i) {
      if (!ring_.push(fibers_[next_])) {
        if (model_.size() < cap) log_.problem("push failed with fewer than capacity fibers in");
        return;
      }
      model_.push_back(next_++);
    }
  }

  bool pop_newest() {
    fiber* f = ring_.pop_newest();
    if (f == nullptr) {
      model_.clear();  // every fiber left went to thieves
      return false;
    }
    const std::uint32_t i = fibers_.index(f);
    log_.taken.push_back(i);
    if (model_.empty() || model_.back() != i) {
      log_.problem("pop_newest returned fiber " + std::to_string(i) + ", expected " +
                   (model_.empty() ? std::string("nothing") : std::to_string(model_.back())));
      model_.clear();
    } else {
      model_.pop_back();
    }
    return true;
  }

  bool pop_oldest() {
    fiber* f = ring_.pop_oldest();
    if (f == nullptr) {
      model_.clear();
      return false;
    }
    const std::uint32_t i = fibers_.index(f);
    log_.taken.push_back(i);
    order_.check(log_, i, "pop_oldest");
    const auto it = std::lower_bound(model_.begin(), model_.end(), i);
    if (it == model_.end() || *it != i) {
      log_.problem("pop_oldest returned fiber " + std::to_string(i) +
                   ", which the owner never pushed or took itself");
      model_.clear();
    } else {
      model_.erase(model_.begin(), it + 1);
    }
    return true;
  }

  bool pop_either() {
    if (broken()) return false;
    return rng_() % 2 == 0 ? pop_newest() : pop_oldest();
  }
  // A problem seen: the ring may be corrupt (say, head past tail, so pops never run dry).
  bool broken() const { return !log_.problems.empty() || log_.taken.size() > fibers_.size(); }

  // One burst: pushes, then takes, in one of several shapes.
  void step() {
    switch (rng_() % 8) {
      case 0:  // one fiber, taken back from the back at once: the one-fiber race
        push_some(1);
        spin(rng_() % 64);
        pop_newest();
        break;
      case 1:  // two, both from the back: the second is the one-fiber race
        push_some(2);
        pop_newest();
        spin(rng_() % 16);
        pop_newest();
        break;
      case 2:  // one, from the front
        push_some(1);
        spin(rng_() % 64);
        pop_oldest();
        break;
      case 3:  // a few, then drain to empty by a random mix
        push_some(1 + rng_() % 8);
        while (pop_either()) {
        }
        break;
      case 4:  // many, then drain from the back to (at most) one, left for the thieves
        push_some(1 + rng_() % cap);
        while (!broken() && model_.size() > 1 && pop_newest()) {
        }
        break;
      case 5:  // many, then a random mix of takes
        push_some(1 + rng_() % cap);
        for (std::uint32_t n = rng_() % 300; n > 0; --n) pop_either();
        break;
      case 6:  // grow; thieves take the rest
        push_some(1 + rng_() % 16);
        break;
      default:  // take what is there, alternating ends
        for (int n = 0; n < 4; ++n) pop_either();
        break;
    }
  }

  void drain() {
    while (pop_either()) {
    }
  }
  void expect_empty() {
    EXPECT_TRUE(ring_.empty());
    EXPECT_EQ(ring_.pop_newest(), nullptr);
    EXPECT_EQ(ring_.pop_oldest(), nullptr);
    EXPECT_EQ(ring_.take_oldest_if(ring_.oldest()), nullptr);
  }
  bool done() const { return next_ == fibers_.size(); }
  std::uint32_t pushed() const { return next_; }

 private:
  fiber_ring& ring_;
  fake_fibers& fibers_;
  taker_log& log_;
  std::mt19937 rng_;
  std::deque<std::uint32_t> model_;
  front_order order_;
  std::uint32_t next_ = 0;
};

// A thief of a `displaced` ring: take_oldest_if, one fiber at a time, on a fresh snapshot or on
// one left to go stale for a short random pause (as worker::steal_stuck does for 3 us).
void displaced_ring_thief(fiber_ring& ring, const fake_fibers& fibers, taker_log& log,
                          const std::atomic<bool>& stop, unsigned seed) {
  std::mt19937 rng(seed);
  front_order order;
  std::uint32_t idle = 0;
  while (!stop.load(std::memory_order_acquire)) {
    const std::uint32_t h = ring.oldest();
    if (rng() % 2 == 0) spin(rng() % 128);
    fiber* f = ring.take_oldest_if(h);
    if (f != nullptr) {
      const std::uint32_t i = fibers.index(f);
      log.taken.push_back(i);
      order.check(log, i, "take_oldest_if");
    } else if (++idle % 256 == 0) {
      std::this_thread::yield();  // let the owner run on a machine with fewer cores than threads
    }
  }
  log.finished.store(true, std::memory_order_release);
}

// One owner taking from both ends and 1-3 thieves taking one at a time: every fiber taken
// exactly once.
TEST_P(RingStressTest, DisplacedRingTakesEachFiberExactlyOnce) {
  run_rounds<fiber_ring, displaced_ring_owner>(thieves(), displaced_ring_thief);
}

// The owner of a `queued` ring, in one round: push, pop_oldest, and its own half-grab when the
// ring is full (run_queue::take_half, for the global queue). Nothing leaves from the back, so
// the ring always holds a run of consecutive fibers [front, next), and every take, the owner's
// or a thief's, is a run from its front.
class queued_ring_owner {
 public:
  queued_ring_owner(fiber_ring& ring, fake_fibers& fibers, taker_log& log, unsigned seed)
      : ring_(ring), fibers_(fibers), log_(log), rng_(seed) {}

  // Pushes up to k fibers; a full ring first gives its older half to the owner.
  void push_some(std::uint32_t k) {
    for (std::uint32_t i = 0; i < k && next_ < fibers_.size() && !broken(); ++i) {
      while (!ring_.push(fibers_[next_])) {
        if (broken()) return;
        if (next_ - front_ < cap) log_.problem("push failed with fewer than capacity fibers in");
        take_half();
      }
      ++next_;
    }
  }

  bool pop_oldest() {
    if (broken()) return false;
    fiber* f = ring_.pop_oldest();
    if (f == nullptr) {
      front_ = next_;
      return false;
    }
    took(fibers_.index(f), "pop_oldest");
    return true;
  }

  std::uint32_t take_half() {
    grab_buffer out;
    const std::uint32_t n = ring_.grab(out.slots);
    if (n > half || !out.guard_intact()) log_.problem("take_half overran its buffer");
    for (std::uint32_t k = 0; k < n && k < half; ++k) {
      const std::uint32_t i = fibers_.index(out.slots[k]);
      if (k > 0 && i != fibers_.index(out.slots[k - 1]) + 1) {
        log_.problem("take_half took fiber " + std::to_string(i) + " after " +
                     std::to_string(fibers_.index(out.slots[k - 1])));
      }
      took(i, "take_half");
    }
    return n;
  }

  bool broken() const { return !log_.problems.empty() || log_.taken.size() > fibers_.size(); }

  void step() {
    switch (rng_() % 8) {
      case 0:  // one fiber, taken back at once: the one-fiber race on the front
        push_some(1);
        spin(rng_() % 64);
        pop_oldest();
        break;
      case 1:  // a few, then drain to empty
        push_some(1 + rng_() % 8);
        while (pop_oldest()) {
        }
        break;
      case 2:  // many
        push_some(1 + rng_() % cap);
        break;
      case 3:  // fill, and past full: the owner's own half-grabs race the thieves'
        push_some(cap + rng_() % cap);
        break;
      case 4: take_half(); break;
      case 5:
        for (std::uint32_t n = rng_() % 64; n > 0; --n) pop_oldest();
        break;
      default:  // grow; thieves take the rest
        push_some(1 + rng_() % 16);
        break;
    }
  }

  void drain() {
    while (pop_oldest()) {
    }
  }
  void expect_empty() {
    EXPECT_TRUE(ring_.empty());
    grab_buffer out;
    EXPECT_EQ(ring_.grab(out.slots), 0u);
    EXPECT_EQ(ring_.pop_oldest(), nullptr);
  }
  bool done() const { return next_ == fibers_.size(); }
  std::uint32_t pushed() const { return next_; }

 private:
  void took(std::uint32_t i, const char* how) {
    log_.taken.push_back(i);
    if (i < front_ || i >= next_) {
      log_.problem(std::string(how) + " took fiber " + std::to_string(i) + ", not in [" +
                   std::to_string(front_) + ", " + std::to_string(next_) + ")");
    }
    front_ = i + 1;
  }

  fiber_ring& ring_;
  fake_fibers& fibers_;
  taker_log& log_;
  std::mt19937 rng_;
  std::uint32_t front_ = 0;  // no fiber below it is in the ring
  std::uint32_t next_ = 0;
};

// A thief of a `queued` ring: grab, half of what it sees, a run of consecutive fibers; now and
// then take_oldest_if, which any ring allows.
void queued_ring_thief(fiber_ring& ring, const fake_fibers& fibers, taker_log& log,
                       const std::atomic<bool>& stop, unsigned seed) {
  std::mt19937 rng(seed);
  front_order order;
  grab_buffer out;
  std::uint32_t idle = 0;
  while (!stop.load(std::memory_order_acquire)) {
    std::uint32_t n = 0;
    if (rng() % 8 != 0) {
      n = ring.grab(out.slots);
    } else {
      const std::uint32_t h = ring.oldest();
      spin(rng() % 64);
      if ((out.slots[0] = ring.take_oldest_if(h)) != nullptr) n = 1;
    }
    if (n > half) log.problem("grab returned " + std::to_string(n));
    if (!out.guard_intact()) log.problem("grab wrote past capacity / 2 slots");
    for (std::uint32_t k = 0; k < n && k < half; ++k) {
      const std::uint32_t i = fibers.index(out.slots[k]);
      log.taken.push_back(i);
      order.check(log, i, "grab");
      if (k > 0 && i != fibers.index(out.slots[k - 1]) + 1) {
        log.problem("grab took fiber " + std::to_string(i) + " after " +
                    std::to_string(fibers.index(out.slots[k - 1])));
      }
    }
    if (n == 0 && ++idle % 256 == 0) std::this_thread::yield();
  }
  log.finished.store(true, std::memory_order_release);
}

// One owner taking only the oldest and 1-3 thieves taking half: every fiber taken exactly once.
TEST_P(RingStressTest, QueuedRingTakesEachFiberExactlyOnce) {
  run_rounds<fiber_ring, queued_ring_owner>(thieves(), queued_ring_thief);
}

INSTANTIATE_TEST_SUITE_P(Thieves, RingStressTest, ::testing::Values(1, 2, 3), thief_count_name);

// The owner of a run_queue, in one round: fibers enter by set_next (the displaced one goes to
// the displaced ring, or queued if that is full), by push, and leave by every owner take; a full
// queued ring sends its older half to an "overflow" the owner counts as taken, as the runtime
// sends it to the global queue.
class queue_owner {
 public:
  queue_owner(run_queue& q, fake_fibers& fibers, taker_log& log, unsigned seed)
      : q_(q), fibers_(fibers), log_(log), rng_(seed) {}

  void set_next() {
    if (next_ == fibers_.size()) return;
    fiber* f = fibers_[next_++];
    fiber* old = q_.set_next(f);
    // The slot held what we put there last, unless a thief or pop took it since.
    if (old != nullptr && old != in_next_) {
      log_.problem("set_next displaced fiber " + std::to_string(fibers_.index(old)) +
                   ", not the one last put there");
    }
    in_next_ = f;
    if (old != nullptr && !q_.push_displaced(old)) push_queued(old);
  }

  void push() {
    if (next_ == fibers_.size()) return;
    push_queued(fibers_[next_++]);
  }

  bool pop() { return !broken() && took(q_.pop(), "pop", true); }
  bool broken() const { return !log_.problems.empty() || log_.taken.size() > fibers_.size(); }
  bool pop_queued() { return took(q_.pop_queued(), "pop_queued", false); }
  bool pop_oldest_displaced() {
    return took(q_.pop_oldest_displaced(), "pop_oldest_displaced", false);
  }

  void step() {
    switch (rng_() % 10) {
      case 0:
      case 1:
      case 2: set_next(); break;
      case 3: push(); break;
      case 4:  // a spawn loop: every fiber displaces the one before
        for (std::uint32_t n = 1 + rng_() % 16; n > 0; --n) set_next();
        break;
      case 5:
        spin(rng_() % 64);
        pop();
        break;
      case 6: pop_queued(); break;
      case 7: pop_oldest_displaced(); break;
      case 8:  // drain everything
        while (pop()) {
        }
        break;
      default:  // one fiber displaced, then taken back: the one-fiber race on `displaced`
        set_next();
        set_next();
        pop();
        spin(rng_() % 32);
        pop();
        break;
    }
  }

  void drain() {
    while (pop()) {
    }
  }
  void expect_empty() {
    EXPECT_TRUE(q_.empty());
    EXPECT_FALSE(pop_queued());
    EXPECT_FALSE(pop_oldest_displaced());
    grab_buffer out;
    EXPECT_EQ(q_.steal(out.slots), 0u);
    const auto seen = q_.peek_stuck();
    EXPECT_EQ(seen.next, nullptr);
    EXPECT_FALSE(seen.displaced);
  }
  bool done() const { return next_ == fibers_.size(); }
  std::uint32_t pushed() const { return next_; }

 private:
  void push_queued(fiber* f) {
    while (!q_.push(f) && !broken()) {
      grab_buffer out;
      const std::uint32_t n = q_.take_half(out.slots);
      if (!out.guard_intact() || n > half) log_.problem("take_half overran its buffer");
      for (std::uint32_t k = 0; k < n && k < half; ++k) {
        log_.taken.push_back(fibers_.index(out.slots[k]));
      }
    }
  }

  bool took(fiber* f, const char* how, bool empties_next) {
    if (empties_next) in_next_ = nullptr;  // pop leaves the next slot empty either way
    if (f == nullptr) return false;
    if (f == in_next_ && !empties_next) log_.problem(std::string(how) + " took the next fiber");
    log_.taken.push_back(fibers_.index(f));
    return true;
  }

  run_queue& q_;
  fake_fibers& fibers_;
  taker_log& log_;
  std::mt19937 rng_;
  fiber* in_next_ = nullptr;
  std::uint32_t next_ = 0;
};

// A thief of a run_queue: steal from queued, or take a stuck candidate if unchanged since a
// snapshot, after a short random pause, or both in worker::steal_stuck's order (the oldest
// displaced fiber, else the next slot's).
void queue_thief(run_queue& q, const fake_fibers& fibers, taker_log& log,
                 const std::atomic<bool>& stop, unsigned seed) {
  std::mt19937 rng(seed);
  grab_buffer out;
  std::uint32_t idle = 0;
  while (!stop.load(std::memory_order_acquire)) {
    std::uint32_t n = 0;
    switch (rng() % 4) {
      case 0: n = q.steal(out.slots); break;
      case 1: {
        const auto seen = q.peek_stuck();
        spin(rng() % 64);
        if ((out.slots[0] = q.steal_displaced_if(seen)) != nullptr) n = 1;
        break;
      }
      case 2: {
        const auto seen = q.peek_stuck();
        spin(rng() % 64);
        if (q.take_next_if(seen.next)) {
          out.slots[0] = seen.next;
          n = 1;
        }
        break;
      }
      default: {
        const auto seen = q.peek_stuck();
        spin(rng() % 64);
        if ((out.slots[0] = q.steal_displaced_if(seen)) != nullptr) {
          n = 1;
        } else if (q.take_next_if(seen.next)) {
          out.slots[0] = seen.next;
          n = 1;
        }
        break;
      }
    }
    if (n > half) log.problem("a steal returned " + std::to_string(n));
    if (!out.guard_intact()) log.problem("a steal wrote past capacity / 2 slots");
    for (std::uint32_t k = 0; k < n && k < half; ++k) {
      log.taken.push_back(fibers.index(out.slots[k]));
    }
    if (n == 0 && ++idle % 256 == 0) std::this_thread::yield();
  }
  log.finished.store(true, std::memory_order_release);
}

using QueueStressTest = RingStressTest;

// One owner and 1-3 thieves over a run_queue, through every entry point: every fiber taken
// exactly once.
TEST_P(QueueStressTest, OwnerAndThievesTakeEachFiberExactlyOnce) {
  run_rounds<run_queue, queue_owner>(thieves(), queue_thief);
}

INSTANTIATE_TEST_SUITE_P(Thieves, QueueStressTest, ::testing::Values(1, 2, 3), thief_count_name);

}  // namespace
