// SPDX-License-Identifier: Apache-2.0
// Adversarial tests of a buffered channel's storage, for every element layout, and of selects of
// every size, written as a sceptical user would, through the public API only. What is attacked:
// the locked buffer's byte offsets (src/chan/chan_core.hpp: head_at_, buffer_bytes_, slot_at,
// take_front, buffer_push) and the element_mover shared with the ring, with element types of 1,
// 3, 5, 12, 16, 24 bytes and over-aligned ones (alignas 16, 32, 64, and sizes three times their
// alignment), trivial and not (a move-only type that checks its own alignment, its bytes and its
// life on every move and destroy; std::string); capacities 1, 2, 3, 7, 8, 128 and 129 wrapped
// around many times against a model; a full buffer with senders waiting (the receive that takes
// the front and moves a waiting sender's value into the freed back slot), plain and select ones;
// close and destruction with values buffered at every head offset (each value destroyed exactly
// once); len and cap. And select's scratch (src/chan/select.cpp, select_scratch): 1, 7, 8, 9, 16,
// 17 and 40 cases (the inline block and the heap block, the insertion sort and std::sort),
// duplicate channels, nil channels, send and receive cases on one channel, compile-time and
// run-time selects, parked and not, and many at once on several workers. Buffered channels are
// in the ring on several workers unless GORO_CHAN_RING=0, and on one worker too with
// GORO_CHAN_RING=2: tests/CMakeLists.txt runs this file under all three. Sized by
// GORO_STRESS_SCALE.
#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <iostream>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

#include "goro/diag.hpp"
#include "goro/goro.hpp"
#include "test_support.hpp"

namespace {

using namespace std::chrono_literals;
using goro::chan;
using goro::chan_status;
using goro::on_recv;
using goro::on_send;
using goro::otherwise;
using goro_test::scaled;

class ChanBufferAdversarialTest : public goro_test::workers_test {};

// A size for ASan and plain builds, a quarter of it under TSan (several times slower).
constexpr std::size_t sanitized_size(std::size_t n) {
#ifdef GORO_TEST_TSAN
  return n / 4 > 0 ? n / 4 : 1;
#else
  return n;
#endif
}

// ---- element types ---------------------------------------------------------------------------

// Violations seen by the element types (a move from a dead object, a double destroy, a
// misaligned object), counted rather than aborting so that the test names them.
std::atomic<long> violations{0};
void violation(const char* what) {
  violations.fetch_add(1, std::memory_order_relaxed);
  std::fprintf(stderr, "chan_buffer_adversarial_test: %s\n", what);
}

// Byte i of value v's pattern: the value's bytes, repeated past 8, each mixed with its index, so
// that a value shifted, torn or read from a neighbouring slot does not decode.
unsigned char pattern_byte(std::uint64_t v, std::size_t i) {
  return static_cast<unsigned char>((v >> (8 * (i % 8))) ^ (i * 0x9d + 0x41));
}
void encode(unsigned char* p, std::size_t n, std::uint64_t v) {
  for (std::size_t i = 0; i < n; ++i) p[i] = pattern_byte(v, i);
}
std::optional<std::uint64_t> decode(const unsigned char* p, std::size_t n) {
  std::uint64_t v = 0;
  for (std::size_t i = 0; i < n && i < 8; ++i) {
    v |= std::uint64_t{static_cast<unsigned char>(p[i] ^ pattern_byte(0, i))} << (8 * i);
  }
  for (std::size_t i = 0; i < n; ++i) {
    if (p[i] != pattern_byte(v, i)) return std::nullopt;
  }
  return v;
}

// Trivially copyable: moved by the channel as bytes. No padding: every byte is the pattern's.
template <std::size_t N, std::size_t A>
struct alignas(A) raw {
  static_assert(N % A == 0);
  unsigned char b[N];
};

// Objects of `tracked` alive now, in the whole process.
std::atomic<long> live_tracked{0};

// Move-only and not trivial: byte 0 is its state, the rest the value's pattern. Every
// constructor checks its own alignment, every move and destroy the state of what it touches.
template <std::size_t N, std::size_t A>
class alignas(A) tracked {
  static_assert(N >= 3);
  static constexpr unsigned char alive = 0xA5;
  static constexpr unsigned char moved = 0x6B;  // moved from: alive, no value
  static constexpr unsigned char dead = 0xD1;

 public:
  explicit tracked(std::uint64_t v) {
    check_alignment();
    b_[0] = alive;
    encode(b_ + 1, N - 1, v);
    live_tracked.fetch_add(1, std::memory_order_relaxed);
  }
  tracked(tracked&& other) noexcept {
    check_alignment();
    if (other.b_[0] != alive && other.b_[0] != moved) violation("move from a destroyed object");
    std::memcpy(b_, other.b_, N);
    other.b_[0] = moved;
    std::memset(other.b_ + 1, 0, N - 1);
    live_tracked.fetch_add(1, std::memory_order_relaxed);
  }
  tracked& operator=(tracked&& other) noexcept {
    if (this != &other) {
      if (other.b_[0] != alive && other.b_[0] != moved) violation("move from a destroyed object");
      std::memcpy(b_, other.b_, N);
      other.b_[0] = moved;
      std::memset(other.b_ + 1, 0, N - 1);
    }
    return *this;
  }
  tracked(const tracked&) = delete;
  tracked& operator=(const tracked&) = delete;
  ~tracked() {
    if (b_[0] != alive && b_[0] != moved) violation("destroyed twice, or never constructed");
    b_[0] = dead;
    live_tracked.fetch_sub(1, std::memory_order_relaxed);
  }

  std::optional<std::uint64_t> value() const {
    if (b_[0] != alive) return std::nullopt;
    return decode(b_ + 1, N - 1);
  }

 private:
  void check_alignment() const {
    if (reinterpret_cast<std::uintptr_t>(this) % A != 0) violation("misaligned object");
  }
  unsigned char b_[N];
};

// make(v): a value holding v; value(x): what x holds, if intact; bytes: how much of v it holds.
template <class T>
struct codec;

template <std::size_t N, std::size_t A>
struct codec<raw<N, A>> {
  static constexpr std::size_t bytes = N;
  static std::string name() { return "raw<" + std::to_string(N) + "," + std::to_string(A) + ">"; }
  static raw<N, A> make(std::uint64_t v) {
    raw<N, A> r;
    encode(r.b, N, v);
    return r;
  }
  static std::optional<std::uint64_t> value(const raw<N, A>& r) { return decode(r.b, N); }
};

template <std::size_t N, std::size_t A>
struct codec<tracked<N, A>> {
  static constexpr std::size_t bytes = N - 1;
  static std::string name() {
    return "tracked<" + std::to_string(N) + "," + std::to_string(A) + ">";
  }
  static tracked<N, A> make(std::uint64_t v) { return tracked<N, A>(v); }
  static std::optional<std::uint64_t> value(const tracked<N, A>& t) { return t.value(); }
};

template <>
struct codec<std::string> {
  static constexpr std::size_t bytes = 8;
  static constexpr const char* prefix = "a string long enough to live on the heap: ";
  static std::string name() { return "std::string"; }
  static std::string make(std::uint64_t v) { return prefix + std::to_string(v); }
  static std::optional<std::uint64_t> value(const std::string& s) {
    const std::size_t n = std::strlen(prefix);
    if (s.size() <= n || s.compare(0, n, prefix) != 0) return std::nullopt;
    return std::stoull(s.substr(n));
  }
};

// v as a T holds it: truncated to T's bytes.
template <class T>
constexpr std::uint64_t reduce(std::uint64_t v) {
  constexpr std::size_t b = codec<T>::bytes;
  if constexpr (b >= 8) {
    return v;
  } else {
    return v & ((std::uint64_t{1} << (8 * b)) - 1);
  }
}
// How many distinct values T holds (0: 2^64).
template <class T>
constexpr std::uint64_t domain() {
  constexpr std::size_t b = codec<T>::bytes;
  if constexpr (b >= 8) {
    return 0;
  } else {
    return std::uint64_t{1} << (8 * b);
  }
}

template <class T>
bool holds(const T& x, std::uint64_t v) {
  const std::optional<std::uint64_t> got = codec<T>::value(x);
  return got.has_value() && *got == reduce<T>(v);
}
template <class T>
bool holds(const std::optional<T>& x, std::uint64_t v) {
  return x.has_value() && holds(*x, v);
}
template <class T>
std::string describe(const std::optional<T>& x) {
  if (!x) return "nothing";
  const std::optional<std::uint64_t> v = codec<T>::value(*x);
  return v ? std::to_string(*v) : std::string("a torn or dead value");
}

template <class... T>
struct type_list {};

using all_types =
    type_list<raw<1, 1>, raw<3, 1>, raw<4, 4>, raw<5, 1>, raw<8, 8>, raw<12, 4>, raw<16, 8>,
              raw<16, 16>, raw<24, 8>, raw<32, 32>, raw<64, 64>, raw<96, 32>, raw<192, 64>,
              tracked<3, 1>, tracked<8, 8>, tracked<16, 8>, tracked<24, 8>, tracked<32, 32>,
              tracked<64, 64>, tracked<96, 32>, std::string>;
// A few of each kind, for the heavier tests.
using some_types = type_list<raw<1, 1>, raw<3, 1>, raw<24, 8>, raw<64, 64>, tracked<3, 1>,
                             tracked<24, 8>, tracked<96, 32>, std::string>;

template <class... T, class F>
void for_each_type(type_list<T...>, F&& f) {
  (f(std::type_identity<T>{}), ...);
}

using goro_test::await;
using goro_test::rng;

// Runs body(rt) on a fiber of a fresh runtime and waits for it.
template <class F>
void on_runtime(const goro::options& opts, const std::string& what, F&& body) {
  goro::runtime rt{opts};
  goro::wait_group done;
  done.add(1);
  rt.go([&] {
    body(rt);
    done.done();
  });
  await(done, 120s, what);
}

constexpr std::size_t capacities[] = {1, 2, 3, 7, 8, 128, 129};

// ---- the buffer against a model --------------------------------------------------------------

// Random sends and receives, plain and try, on one fiber, alternately filling the channel up and
// draining it, so that the head goes round many times; every value, status, len and cap checked
// against a deque. Then, if `close`, a close with values buffered and part of them drained; then
// the channel is dropped with the rest still buffered.
template <class T>
void check_against_model(std::size_t cap, std::uint64_t seed, bool close) {
  const std::string ctx = " -- " + codec<T>::name() + ", capacity " + std::to_string(cap);
  chan<T> c(cap);
  std::deque<std::uint64_t> model;
  rng r(seed);
  std::uint64_t next = 1;
  bool filling = true;
  const std::size_t steps = scaled(sanitized_size(cap * 12 + 200));
  for (std::size_t step = 0; step < steps; ++step) {
    if (model.size() == cap) {
      filling = false;
    } else if (model.empty()) {
      filling = true;
    }
    if (r.below(8) < (filling ? 6U : 2U)) {
      T v = codec<T>::make(next);
      if (model.size() < cap && r.below(2) == 0) {
        c.send(std::move(v));  // room: does not block
        model.push_back(next++);
      } else {
        const chan_status st = c.try_send(std::move(v));
        if (model.size() < cap) {
          ASSERT_EQ(st, chan_status::ok) << "step " << step << ctx;
          model.push_back(next++);
        } else {
          ASSERT_EQ(st, chan_status::full) << "step " << step << ctx;
          ASSERT_TRUE(holds(v, next)) << "a refused try_send moved its value, step " << step << ctx;
        }
      }
    } else if (!model.empty() && r.below(2) == 0) {
      std::optional<T> v = c.recv();  // a value buffered: does not block
      ASSERT_TRUE(holds(v, model.front()))
          << "step " << step << ": got " << describe(v) << ", want " << model.front() << ctx;
      model.pop_front();
    } else {
      goro::recv_result<T> v = c.try_recv();
      if (model.empty()) {
        ASSERT_EQ(v.status, chan_status::empty) << "step " << step << ctx;
        ASSERT_FALSE(v.value.has_value()) << ctx;
      } else {
        ASSERT_EQ(v.status, chan_status::ok) << "step " << step << ctx;
        ASSERT_TRUE(holds(v.value, model.front()))
            << "step " << step << ": got " << describe(v.value) << ", want " << model.front()
            << ctx;
        model.pop_front();
      }
    }
    ASSERT_EQ(c.size(), model.size()) << "step " << step << ctx;
    ASSERT_EQ(c.capacity(), cap) << ctx;
  }
  if (close) {
    c.close();
    EXPECT_EQ(c.size(), model.size()) << "close dropped buffered values" << ctx;
    T v = codec<T>::make(next);
    EXPECT_EQ(c.try_send(std::move(v)), chan_status::closed) << ctx;
    EXPECT_TRUE(holds(v, next)) << ctx;
    for (std::size_t k = model.size() / 2; k > 0; --k) {
      std::optional<T> got = c.recv();
      ASSERT_TRUE(holds(got, model.front()))
          << "after close: got " << describe(got) << ", want " << model.front() << ctx;
      model.pop_front();
    }
    EXPECT_EQ(c.size(), model.size()) << ctx;
    if (model.empty()) {
      EXPECT_FALSE(c.recv().has_value()) << ctx;
      EXPECT_EQ(c.try_recv().status, chan_status::closed) << ctx;
    }
  }
  // c goes with model.size() values buffered, the head anywhere.
}

TEST_P(ChanBufferAdversarialTest, EveryLayoutAndCapacityAgainstAModel) {
  const long live_before = live_tracked.load();
  const long violations_before = violations.load();
  on_runtime(opts(), "the model check", [&](goro::runtime&) {
    std::uint64_t seed = 1;
    for_each_type(all_types{}, [&]<class T>(std::type_identity<T>) {
      for (std::size_t cap : capacities) {
        check_against_model<T>(cap, seed++, false);
        check_against_model<T>(cap, seed++, true);
      }
      // Unbuffered: nothing to buffer, len and cap 0.
      chan<T> c;
      T v = codec<T>::make(7);
      EXPECT_EQ(c.try_send(std::move(v)), chan_status::full);
      EXPECT_TRUE(holds(v, 7));
      EXPECT_EQ(c.try_recv().status, chan_status::empty);
      EXPECT_EQ(c.size(), 0U);
      EXPECT_EQ(c.capacity(), 0U);
    });
  });
  EXPECT_EQ(live_tracked.load(), live_before) << "values never destroyed, or destroyed twice";
  EXPECT_EQ(violations.load(), violations_before);
}

// ---- destruction with values buffered, at every head offset ----------------------------------

template <class T>
void drop_with_values_buffered(std::size_t cap) {
  const std::string ctx = " -- " + codec<T>::name() + ", capacity " + std::to_string(cap);
  std::vector<std::size_t> heads;
  for (std::size_t h = 0; h < cap; ++h) {
    if (cap <= 8 || h < 3 || h + 3 > cap || h == cap / 2) heads.push_back(h);
  }
  for (std::size_t h : heads) {
    std::vector<std::size_t> counts = {0, 1, cap / 2, cap - 1, cap};
    std::sort(counts.begin(), counts.end());
    counts.erase(std::unique(counts.begin(), counts.end()), counts.end());
    for (std::size_t n : counts) {
      for (int close = 0; close < 2; ++close) {
        chan<T> c(cap);
        for (std::size_t i = 0; i < h; ++i) {  // moves the head to h
          c.send(codec<T>::make(i));
          ASSERT_TRUE(holds(c.recv(), i)) << ctx;
        }
        for (std::size_t i = 0; i < n; ++i) c.send(codec<T>::make(1000 + i));
        ASSERT_EQ(c.size(), n) << ctx;
        if (close != 0) c.close();
        if (n > 0 && close != 0) {  // one out after the close: the head moves once more
          ASSERT_TRUE(holds(c.recv(), 1000)) << ctx;
          ASSERT_EQ(c.size(), n - 1) << ctx;
        }
      }
    }
  }
}

TEST_P(ChanBufferAdversarialTest, DroppedWithValuesBufferedAtEveryHeadOffset) {
  const long live_before = live_tracked.load();
  const long violations_before = violations.load();
  on_runtime(opts(), "the drops", [&](goro::runtime&) {
    for_each_type(all_types{}, [&]<class T>(std::type_identity<T>) {
      for (std::size_t cap :
           {std::size_t{1}, std::size_t{2}, std::size_t{3}, std::size_t{7}, std::size_t{128}}) {
        drop_with_values_buffered<T>(cap);
      }
    });
  });
  EXPECT_EQ(live_tracked.load(), live_before) << "values never destroyed, or destroyed twice";
  EXPECT_EQ(violations.load(), violations_before);
}

// ---- a full buffer with senders waiting ------------------------------------------------------

// One sender, so the order is total: every value must come out in the order sent. The receiver
// waits until the buffer is full before each burst, so that the sender is mostly parked on a
// full buffer and each receive takes the front and moves the sender's value to the back. Both
// sides vary their form: plain, timed, try, select.
template <class T>
void one_sender_through_a_full_buffer(goro::runtime& rt, std::size_t cap, std::uint64_t seed) {
  const std::string ctx = " -- " + codec<T>::name() + ", capacity " + std::to_string(cap);
  const std::uint64_t total = scaled(sanitized_size(cap * 8 + 60));
  chan<T> c(cap);
  chan<T> never;  // a second case for the selects, never ready
  goro::wait_group done;
  done.add(1);
  rt.go([&] {
    rng r(seed);
    for (std::uint64_t v = 0; v < total; ++v) {
      switch (r.below(4)) {
        case 0: c.send(codec<T>::make(v)); break;
        case 1: EXPECT_EQ(c.send_for(codec<T>::make(v), 60s), chan_status::ok) << ctx; break;
        case 2: {
          T x = codec<T>::make(v);
          while (c.try_send(std::move(x)) != chan_status::ok) goro::this_fiber::yield();
          break;
        }
        default: {
          T x = codec<T>::make(v);
          EXPECT_EQ(goro::select(on_send(c, std::move(x)), on_recv(never)), 0U) << ctx;
        }
      }
    }
    done.done();
  });
  rng r(seed + 1);
  std::uint64_t want = 0;
  int failures = 0;
  while (want < total) {
    // Let the sender fill the buffer and park (a few yields: on several workers it may not).
    for (int i = 0; i < 64 && c.size() < std::min<std::uint64_t>(cap, total - want); ++i) {
      goro::this_fiber::yield();
    }
    const std::uint64_t burst = 1 + r.below(static_cast<std::uint32_t>(cap + 1));
    for (std::uint64_t k = 0; k < burst && want < total; ++k, ++want) {
      std::optional<T> v;
      switch (r.below(4)) {
        case 0: v = c.recv(); break;
        case 1: {
          goro::recv_result<T> x = c.recv_for(60s);
          EXPECT_EQ(x.status, chan_status::ok) << ctx;
          v = std::move(x.value);
          break;
        }
        case 2: {
          goro::recv_result<T> x = c.try_recv();
          while (x.status == chan_status::empty) {
            goro::this_fiber::yield();
            x = c.try_recv();
          }
          v = std::move(x.value);
          break;
        }
        default:
          EXPECT_EQ(goro::select(on_recv(never),
                                 on_recv(c, [&](std::optional<T> x) { v = std::move(x); })),
                    1U)
              << ctx;
      }
      // Not ASSERT: the sender uses c, so this frame must not return before it is done.
      if (!holds(v, want) && ++failures <= 5) {
        ADD_FAILURE() << "got " << describe(v) << ", want " << reduce<T>(want) << ctx;
      }
    }
  }
  await(done, 60s, "the sender");
  EXPECT_EQ(failures, 0) << ctx;
  EXPECT_EQ(c.size(), 0U) << ctx;
}

TEST_P(ChanBufferAdversarialTest, OneSenderThroughAFullBufferKeepsOrder) {
  const long live_before = live_tracked.load();
  const long violations_before = violations.load();
  on_runtime(opts(), "the receiver", [&](goro::runtime& rt) {
    std::uint64_t seed = 100;
    for_each_type(some_types{}, [&]<class T>(std::type_identity<T>) {
      for (std::size_t cap :
           {std::size_t{1}, std::size_t{2}, std::size_t{3}, std::size_t{7}, std::size_t{128}}) {
        one_sender_through_a_full_buffer<T>(rt, cap, seed++);
      }
    });
  });
  EXPECT_EQ(live_tracked.load(), live_before);
  EXPECT_EQ(violations.load(), violations_before);
}

// What a test on a full buffer with its head at h names in its failures.
template <class T>
std::string head_context(std::size_t cap, std::size_t h) {
  return " -- " + codec<T>::name() + ", capacity " + std::to_string(cap) + ", head " +
         std::to_string(h);
}

// Fills the empty channel c with 0..cap-1, its head first moved to h (one send and receive per
// step), so that the buffer wraps where the test wants it.
template <class T>
void fill_with_head_at(chan<T>& c, std::size_t h, const std::string& ctx) {
  for (std::size_t i = 0; i < h; ++i) {
    c.send(codec<T>::make(999));
    ASSERT_TRUE(holds(c.recv(), 999)) << ctx;
  }
  for (std::size_t i = 0; i < c.capacity(); ++i) c.send(codec<T>::make(i));
}

// On one worker the order is fixed: the buffer holds 0..cap-1 (with its head moved to h first),
// and senders park one after another with cap, cap+1, ...: plain sends and selects. Each receive
// must then give the next value in that order, the front coming out and the first waiting
// sender's value going to the back.
template <class T>
void waiting_senders_in_order(goro::runtime& rt, std::size_t cap, std::size_t h) {
  const std::string ctx = head_context<T>(cap, h);
  constexpr std::size_t senders = 5;
  chan<T> c(cap);
  chan<T> never;
  fill_with_head_at(c, h, ctx);
  if (::testing::Test::HasFatalFailure()) return;
  goro::wait_group done;
  done.add(senders);
  for (std::size_t s = 0; s < senders; ++s) {
    rt.go([&, s] {
      if (s % 2 == 0) {
        c.send(codec<T>::make(cap + s));
      } else {
        T v = codec<T>::make(cap + s);
        EXPECT_EQ(goro::select(on_recv(never), on_send(c, std::move(v))), 1U) << ctx;
      }
      done.done();
    });
    goro::this_fiber::yield();  // on one worker: it runs, and parks on the full buffer
  }
  // Not ASSERT: the senders use c, so this frame must not return before they are done.
  for (std::size_t i = 0; i < cap + senders; ++i) {
    std::optional<T> v = c.recv();
    EXPECT_TRUE(holds(v, i)) << "receive " << i << " got " << describe(v) << ctx;
    if (i + 1 < cap + senders) {
      EXPECT_EQ(c.size(), std::min(cap, cap + senders - i - 1)) << "after receive " << i << ctx;
    }
  }
  await(done, 60s, "the senders");
  EXPECT_EQ(c.size(), 0U) << ctx;
}

TEST_P(ChanBufferAdversarialTest, WaitingSendersGoToTheBackInOrder) {
  if (workers() != 1) GTEST_SKIP() << "the order of parking is fixed on one worker only";
  const long live_before = live_tracked.load();
  const long violations_before = violations.load();
  on_runtime(opts(), "the receiver", [&](goro::runtime& rt) {
    for_each_type(all_types{}, [&]<class T>(std::type_identity<T>) {
      for (std::size_t cap : {std::size_t{1}, std::size_t{2}, std::size_t{3}, std::size_t{7}}) {
        for (std::size_t h = 0; h < cap; ++h) waiting_senders_in_order<T>(rt, cap, h);
      }
      waiting_senders_in_order<T>(rt, 128, 127);
    });
  });
  EXPECT_EQ(live_tracked.load(), live_before);
  EXPECT_EQ(violations.load(), violations_before);
}

// Several senders and receivers on a small full buffer: each value received exactly once, and
// each receiver sees each sender's values in the order sent.
template <class T>
void many_senders_many_receivers(goro::runtime& rt, std::size_t cap, std::uint64_t seed) {
  const std::string ctx = " -- " + codec<T>::name() + ", capacity " + std::to_string(cap);
  constexpr std::size_t senders = 4;
  constexpr std::size_t receivers = 3;
  // Values sender * per + seq, all distinct within T's bytes.
  std::size_t per = scaled(sanitized_size(120));
  if (domain<T>() != 0) per = std::min<std::size_t>(per, (domain<T>() - 1) / senders);
  chan<T> c(cap);
  chan<T> never;
  std::vector<std::atomic<int>> seen(senders * per);
  std::atomic<int> bad{0};
  goro::wait_group senders_done;
  goro::wait_group receivers_done;
  senders_done.add(senders);
  receivers_done.add(receivers);
  for (std::size_t s = 0; s < senders; ++s) {
    rt.go([&, s] {
      rng r(seed * 31 + s);
      for (std::size_t i = 0; i < per; ++i) {
        T v = codec<T>::make(s * per + i);
        if (r.below(3) == 0) {
          EXPECT_EQ(goro::select(on_send(c, std::move(v)), on_recv(never)), 0U) << ctx;
        } else {
          c.send(std::move(v));
        }
      }
      senders_done.done();
    });
  }
  for (std::size_t q = 0; q < receivers; ++q) {
    rt.go([&, q] {
      rng r(seed * 17 + q);
      std::vector<std::int64_t> last(senders, -1);
      for (;;) {
        std::optional<T> v;
        if (r.below(3) == 0) {
          goro::select(on_recv(c, [&](std::optional<T> x) { v = std::move(x); }), on_recv(never));
        } else {
          v = c.recv();
        }
        if (!v) break;  // closed and drained
        const std::optional<std::uint64_t> x = codec<T>::value(*v);
        if (!x || *x >= senders * per) {
          bad.fetch_add(1);
          continue;
        }
        seen[*x].fetch_add(1);
        const std::size_t s = *x / per;
        const auto seq = static_cast<std::int64_t>(*x % per);
        if (seq <= last[s]) bad.fetch_add(1);
        last[s] = seq;
        if (r.below(4) == 0) goro::this_fiber::yield();  // let the buffer fill up
      }
      receivers_done.done();
    });
  }
  await(senders_done, 60s, "the senders");
  c.close();
  await(receivers_done, 60s, "the receivers");
  EXPECT_EQ(bad.load(), 0) << "values torn, or out of order per sender" << ctx;
  for (std::size_t v = 0; v < seen.size(); ++v) {
    ASSERT_EQ(seen[v].load(), 1) << "value " << v << ctx;
  }
}

TEST_P(ChanBufferAdversarialTest, ManySendersOnAFullBufferExactlyOnceInOrderPerSender) {
  const long live_before = live_tracked.load();
  const long violations_before = violations.load();
  on_runtime(opts(), "the test", [&](goro::runtime& rt) {
    std::uint64_t seed = 7;
    for_each_type(some_types{}, [&]<class T>(std::type_identity<T>) {
      for (std::size_t cap : {std::size_t{1}, std::size_t{2}, std::size_t{3}, std::size_t{7}}) {
        many_senders_many_receivers<T>(rt, cap, seed++);
      }
    });
  });
  EXPECT_EQ(live_tracked.load(), live_before);
  EXPECT_EQ(violations.load(), violations_before);
}

// Close with the buffer full, its head anywhere, and senders parked on it: each parked send
// throws and keeps its value (destroyed once, by its owner), the buffered values are all
// received in order, then the close.
template <class T>
void close_full_with_senders_waiting(goro::runtime& rt, std::size_t cap, std::size_t h) {
  const std::string ctx = head_context<T>(cap, h);
  constexpr std::size_t senders = 3;
  chan<T> c(cap);
  chan<T> never;
  fill_with_head_at(c, h, ctx);
  if (::testing::Test::HasFatalFailure()) return;
  std::atomic<int> threw{0};
  goro::wait_group done;
  done.add(senders);
  for (std::size_t s = 0; s < senders; ++s) {
    rt.go([&, s] {
      T v = codec<T>::make(500 + s);
      try {
        if (s == 1) {
          goro::select(on_send(c, std::move(v)), on_recv(never));
        } else {
          c.send(std::move(v));
        }
      } catch (const goro::closed_channel_error&) {
        threw.fetch_add(1);
        EXPECT_TRUE(holds(v, 500 + s)) << "a send that threw gave its value away" << ctx;
      }
      done.done();
    });
    goro::this_fiber::yield();
  }
  c.close();
  await(done, 60s, "the senders");
  EXPECT_EQ(threw.load(), static_cast<int>(senders)) << ctx;
  EXPECT_EQ(c.size(), cap) << ctx;
  for (std::size_t i = 0; i < cap; ++i) {
    std::optional<T> v = c.recv();
    ASSERT_TRUE(holds(v, i)) << "receive " << i << " got " << describe(v) << ctx;
  }
  EXPECT_FALSE(c.recv().has_value()) << ctx;
}

TEST_P(ChanBufferAdversarialTest, CloseAFullBufferWithSendersWaiting) {
  const long live_before = live_tracked.load();
  const long violations_before = violations.load();
  on_runtime(opts(), "the closer", [&](goro::runtime& rt) {
    for_each_type(some_types{}, [&]<class T>(std::type_identity<T>) {
      for (std::size_t cap : {std::size_t{1}, std::size_t{2}, std::size_t{3}, std::size_t{7}}) {
        for (std::size_t h : {std::size_t{0}, cap / 2, cap - 1}) {
          close_full_with_senders_waiting<T>(rt, cap, h);
        }
      }
    });
  });
  EXPECT_EQ(live_tracked.load(), live_before);
  EXPECT_EQ(violations.load(), violations_before);
}

// ---- selects of every size -------------------------------------------------------------------

// Case i of a select here is a send if i % 3 == 1, else a receive; its channel is the nil one
// if i % 11 == 5, else chosen by the test. Send case i sends 100 + i; channel j buffers values
// 10 + 4j + t (within one byte: the tests use at most 14 channels of capacity up to 3 and 40
// cases).
constexpr bool is_send_case(std::size_t i) { return i % 3 == 1; }
constexpr bool is_nil_case(std::size_t i) { return i % 11 == 5; }
constexpr std::uint64_t send_value(std::size_t i) { return 100 + i; }
constexpr std::uint64_t buffered_value(std::size_t j, std::size_t t) { return 10 + 4 * j + t; }

template <class T>
struct select_bench {
  explicit select_bench(std::size_t n) : chan_of(n, -1), sent(n), got(n), called(n, false) {}
  std::vector<int> chan_of;            // per case: its channel's index, -1 for the nil channel
  std::vector<std::optional<T>> sent;  // per send case: the value a compile-time select refers to
  std::vector<std::optional<T>> got;   // per receive case: what its handler got
  std::vector<bool> called;            // per case: whether its handler ran
  std::vector<chan<T>> chans;
  chan<T> nil{nullptr};

  const chan<T>& channel(std::size_t i) const {
    return chan_of[i] < 0 ? nil : chans[static_cast<std::size_t>(chan_of[i])];
  }
  void reset() {
    for (std::size_t i = 0; i < sent.size(); ++i) {
      sent[i].reset();
      if (is_send_case(i)) sent[i].emplace(codec<T>::make(send_value(i)));
      got[i].reset();
      called[i] = false;
    }
  }
};

// A compile-time select of N cases, and `otherwise` if Default.
template <class T, bool Default, std::size_t... I>
std::size_t static_select(select_bench<T>& b, std::index_sequence<I...>) {
  auto make_case = [&b]<std::size_t K>(std::integral_constant<std::size_t, K>) {
    if constexpr (is_send_case(K)) {
      return on_send(b.channel(K), std::move(*b.sent[K]), [&b] { b.called[K] = true; });
    } else {
      return on_recv(b.channel(K), [&b](std::optional<T> v) {
        b.called[K] = true;
        b.got[K] = std::move(v);
      });
    }
  };
  if constexpr (Default) {
    return goro::select(make_case(std::integral_constant<std::size_t, I>{})...,
                        otherwise([&b] { b.called.back() = true; }));
  } else {
    return goro::select(make_case(std::integral_constant<std::size_t, I>{})...);
  }
}

// The same select at run time (std::span<select_case>): each send case owns its value.
template <class T>
std::size_t dynamic_select(select_bench<T>& b, std::size_t n, bool with_default) {
  std::vector<goro::select_case> cases;
  for (std::size_t i = 0; i < n; ++i) {
    if (is_send_case(i)) {
      cases.emplace_back(
          on_send(b.channel(i), codec<T>::make(send_value(i)), [&b, i] { b.called[i] = true; }));
    } else {
      cases.emplace_back(on_recv(b.channel(i), [&b, i](std::optional<T> v) {
        b.called[i] = true;
        b.got[i] = std::move(v);
      }));
    }
  }
  if (with_default) cases.emplace_back(otherwise([&b] { b.called.back() = true; }));
  return goro::select(std::span<goro::select_case>(cases));
}

// Runs the select of N cases, at run time (std::span<select_case>) if `dynamic`, with an
// `otherwise` case if `with_default`. b's vectors have N + 1 entries (the last for the default).
// The tests below take it by pointer, so that only the selects, not the checks around them, are
// compiled once per N (inlined, the checks made this file 3 minutes of every build's compiling).
template <class T, std::size_t N>
[[gnu::noinline]] std::size_t run_select(select_bench<T>& b, bool dynamic, bool with_default) {
  if (dynamic) return dynamic_select(b, N, with_default);
  if (with_default) return static_select<T, true>(b, std::make_index_sequence<N>{});
  return static_select<T, false>(b, std::make_index_sequence<N>{});
}

template <class T>
using select_runner = std::size_t (*)(select_bench<T>&, bool dynamic, bool with_default);

// Non-blocking selects on channels of capacity 1, each full or empty, with duplicates, nil
// channels and both kinds of case on one channel: the case chosen is ready, only it happened
// (its handler ran, its value moved; every other channel, value and handler untouched), and
// over many selects on a fixed state every ready case is chosen. run is run_select<T, n>.
template <class T>
void select_picks_a_ready_case(std::size_t n, select_runner<T> run, std::uint64_t seed) {
  const std::string ctx = " -- " + codec<T>::name() + ", " + std::to_string(n) + " cases";
  const std::size_t m = std::max<std::size_t>(1, n / 3);
  rng r(seed);
  for (int state = 0; state < 4; ++state) {
    select_bench<T> b(n + 1);
    for (std::size_t j = 0; j < m; ++j) b.chans.emplace_back(1);
    for (std::size_t i = 0; i < n; ++i) {
      b.chan_of[i] =
          is_nil_case(i) ? -1 : static_cast<int>((i * 7 + static_cast<std::size_t>(state)) % m);
    }
    std::vector<bool> full(m);
    for (std::size_t j = 0; j < m; ++j) {
      full[j] = r.below(2) == 0;
      if (full[j]) b.chans[j].send(codec<T>::make(buffered_value(j, 0)));
    }
    std::vector<std::size_t> ready;
    for (std::size_t i = 0; i < n; ++i) {
      if (b.chan_of[i] < 0) continue;
      if (is_send_case(i) != full[static_cast<std::size_t>(b.chan_of[i])]) ready.push_back(i);
    }
    std::vector<int> chosen(n + 1, 0);
    const std::size_t trials = 20 * ready.size() + 4;
    for (std::size_t trial = 0; trial < trials; ++trial) {
      b.reset();
      const bool dynamic = trial % 2 == 1;
      const bool with_default = ready.empty() || trial % 4 < 2;
      const std::size_t k = run(b, dynamic, with_default);
      ASSERT_LE(k, n) << ctx;
      ++chosen[k];
      if (ready.empty()) {
        ASSERT_EQ(k, n) << "a select with no case ready chose one" << ctx;
      } else {
        ASSERT_TRUE(std::find(ready.begin(), ready.end(), k) != ready.end())
            << "chose case " << k << ", which is not ready" << ctx;
      }
      for (std::size_t i = 0; i <= n; ++i) {
        ASSERT_EQ(b.called[i], i == k)
            << "case " << i << "'s handler, case " << k << " chosen" << ctx;
      }
      for (std::size_t i = 0; i < n; ++i) {
        if (i != k && is_send_case(i) && !dynamic) {
          ASSERT_TRUE(holds(b.sent[i], send_value(i)))
              << "case " << i << "'s value, not chosen" << ctx;
        }
      }
      // The chosen case's effect, undone; every other channel as it was.
      if (k < n) {
        const auto j = static_cast<std::size_t>(b.chan_of[k]);
        if (is_send_case(k)) {
          ASSERT_EQ(b.chans[j].size(), 1U) << ctx;
          goro::recv_result<T> v = b.chans[j].try_recv();
          ASSERT_TRUE(holds(v.value, send_value(k))) << "got " << describe(v.value) << ctx;
        } else {
          ASSERT_TRUE(holds(b.got[k], buffered_value(j, 0))) << "got " << describe(b.got[k]) << ctx;
          ASSERT_EQ(b.chans[j].size(), 0U) << ctx;
          b.chans[j].send(codec<T>::make(buffered_value(j, 0)));
        }
      }
      for (std::size_t j = 0; j < m; ++j) ASSERT_EQ(b.chans[j].size(), full[j] ? 1U : 0U) << ctx;
    }
    for (std::size_t i : ready)
      EXPECT_GT(chosen[i], 0) << "ready case " << i << " never chosen" << ctx;
  }
}

template <class T>
void select_picks_a_ready_case_every_size(std::uint64_t seed) {
  select_picks_a_ready_case<T>(1, &run_select<T, 1>, seed);
  select_picks_a_ready_case<T>(7, &run_select<T, 7>, seed + 1);
  select_picks_a_ready_case<T>(8, &run_select<T, 8>, seed + 2);
  select_picks_a_ready_case<T>(9, &run_select<T, 9>, seed + 3);
  select_picks_a_ready_case<T>(16, &run_select<T, 16>, seed + 4);
  select_picks_a_ready_case<T>(17, &run_select<T, 17>, seed + 5);
  select_picks_a_ready_case<T>(40, &run_select<T, 40>, seed + 6);
}

TEST_P(ChanBufferAdversarialTest, SelectOfEverySizePicksOnlyAReadyCase) {
  const long live_before = live_tracked.load();
  const long violations_before = violations.load();
  on_runtime(opts(), "the selects", [&](goro::runtime&) {
    select_picks_a_ready_case_every_size<raw<3, 1>>(1);
    select_picks_a_ready_case_every_size<raw<64, 64>>(2);
    select_picks_a_ready_case_every_size<tracked<24, 8>>(3);
    select_picks_a_ready_case_every_size<tracked<96, 32>>(4);
    select_picks_a_ready_case_every_size<std::string>(5);
  });
  EXPECT_EQ(live_tracked.load(), live_before);
  EXPECT_EQ(violations.load(), violations_before);
}

// A select that parks (no case ready) on n cases, woken by a partner's operation on one
// channel. Unbuffered: any case, both kinds on one channel. Buffered (capacity cap, each channel
// with its head moved and then full or empty): receive cases only on empty channels and send
// cases only on full ones; a receive from a full one takes its front and moves the parked
// select's value to its back, where it must come out last, after the values buffered before.
// run is run_select<T, n>.
template <class T>
void parked_select_woken_by_one_channel(goro::runtime& rt, std::size_t n, select_runner<T> run,
                                        std::size_t cap, std::uint64_t seed) {
  const std::string ctx = " -- " + codec<T>::name() + ", " + std::to_string(n) +
                          " cases, capacity " + std::to_string(cap);
  rng r(seed);
  const std::size_t rounds = scaled(sanitized_size(24));
  for (std::size_t round = 0; round < rounds; ++round) {
    const bool dynamic = round % 2 == 1;
    select_bench<T> b(n + 1);
    std::size_t m = std::max<std::size_t>(2, n / 3);
    if (m % 2 == 1) ++m;
    for (std::size_t j = 0; j < m; ++j) {
      b.chans.emplace_back(cap);
      if (cap == 0) continue;
      const std::size_t h = r.below(static_cast<std::uint32_t>(cap));
      for (std::size_t t = 0; t < h; ++t) {  // moves the head
        b.chans[j].send(codec<T>::make(250));
        (void)b.chans[j].recv();
      }
      if (j % 2 == 1) {  // full
        for (std::size_t t = 0; t < cap; ++t) b.chans[j].send(codec<T>::make(buffered_value(j, t)));
      }
    }
    for (std::size_t i = 0; i < n; ++i) {
      if (is_nil_case(i)) continue;
      std::size_t j = (i * 5 + round) % m;
      // Buffered: receive cases on the even (empty) channels, send cases on the odd (full).
      if (cap > 0 && (j % 2 == 1) != is_send_case(i)) j = (j + 1) % m;
      b.chan_of[i] = static_cast<int>(j);
    }
    // The channel the partner acts on, one that some case uses.
    std::size_t pick = r.below(static_cast<std::uint32_t>(n));
    while (b.chan_of[pick] < 0) pick = (pick + 1) % n;
    const auto j = static_cast<std::size_t>(b.chan_of[pick]);
    // Unbuffered: the partner sends if a receive case uses j, else receives.
    bool partner_sends = cap > 0 ? j % 2 == 0 : !is_send_case(pick);
    b.reset();
    std::optional<T> partner_got;
    std::atomic<bool> selecting{false};
    goro::wait_group done;
    done.add(1);
    rt.go([&] {
      for (int i = 0; i < 50 && !selecting.load(); ++i) goro::this_fiber::yield();
      for (int i = 0; i < 3; ++i) goro::this_fiber::yield();  // let it park
      if (partner_sends) {
        b.chans[j].send(codec<T>::make(200));
      } else {
        partner_got = b.chans[j].recv();
      }
      done.done();
    });
    selecting.store(true);
    const std::size_t k = run(b, dynamic, false);
    await(done, 60s, "the partner");
    ASSERT_LT(k, n) << ctx;
    ASSERT_EQ(b.chan_of[k], static_cast<int>(j))
        << "case " << k << " chosen, partner on " << j << ctx;
    ASSERT_EQ(is_send_case(k), !partner_sends) << "case " << k << ctx;
    for (std::size_t i = 0; i <= n; ++i) ASSERT_EQ(b.called[i], i == k) << "case " << i << ctx;
    if (partner_sends) {
      ASSERT_TRUE(holds(b.got[k], 200)) << "got " << describe(b.got[k]) << ctx;
    } else if (cap == 0) {
      ASSERT_TRUE(holds(partner_got, send_value(k))) << "got " << describe(partner_got) << ctx;
    } else {
      ASSERT_TRUE(holds(partner_got, buffered_value(j, 0)))
          << "got " << describe(partner_got) << ctx;
      ASSERT_EQ(b.chans[j].size(), cap) << ctx;
      for (std::size_t t = 1; t < cap; ++t) {
        goro::recv_result<T> v = b.chans[j].try_recv();
        ASSERT_TRUE(holds(v.value, buffered_value(j, t)))
            << "buffered value " << t << ": got " << describe(v.value) << ctx;
      }
      goro::recv_result<T> v = b.chans[j].try_recv();
      ASSERT_TRUE(holds(v.value, send_value(k)))
          << "the select's value, at the back: got " << describe(v.value) << ctx;
    }
    if (!dynamic) {
      for (std::size_t i = 0; i < n; ++i) {
        if (i != k && is_send_case(i)) {
          ASSERT_TRUE(holds(b.sent[i], send_value(i)))
              << "case " << i << "'s value, not chosen" << ctx;
        }
      }
    }
    for (std::size_t jj = 0; jj < m; ++jj) {
      if (jj == j) continue;
      ASSERT_EQ(b.chans[jj].size(), cap > 0 && jj % 2 == 1 ? cap : 0U) << "channel " << jj << ctx;
    }
  }
}

template <class T>
void parked_select_every_size(goro::runtime& rt, std::size_t cap, std::uint64_t seed) {
  parked_select_woken_by_one_channel<T>(rt, 1, &run_select<T, 1>, cap, seed);
  parked_select_woken_by_one_channel<T>(rt, 8, &run_select<T, 8>, cap, seed + 1);
  parked_select_woken_by_one_channel<T>(rt, 9, &run_select<T, 9>, cap, seed + 2);
  parked_select_woken_by_one_channel<T>(rt, 16, &run_select<T, 16>, cap, seed + 3);
  parked_select_woken_by_one_channel<T>(rt, 17, &run_select<T, 17>, cap, seed + 4);
  parked_select_woken_by_one_channel<T>(rt, 40, &run_select<T, 40>, cap, seed + 5);
}

TEST_P(ChanBufferAdversarialTest, ParkedSelectOfEverySizeWokenByOneChannel) {
  const long live_before = live_tracked.load();
  const long violations_before = violations.load();
  on_runtime(opts(), "the parked selects", [&](goro::runtime& rt) {
    std::uint64_t seed = 11;
    for (std::size_t cap : {std::size_t{0}, std::size_t{1}, std::size_t{2}, std::size_t{3}}) {
      parked_select_every_size<raw<3, 1>>(rt, cap, seed += 10);
      parked_select_every_size<raw<64, 64>>(rt, cap, seed += 10);
      parked_select_every_size<tracked<24, 8>>(rt, cap, seed += 10);
      parked_select_every_size<tracked<96, 32>>(rt, cap, seed += 10);
      parked_select_every_size<std::string>(rt, cap, seed += 10);
    }
  });
  EXPECT_EQ(live_tracked.load(), live_before);
  EXPECT_EQ(violations.load(), violations_before);
}

// Many selects at once, of 8, 9, 17 and 40 cases, compile-time and run-time, on shared channels
// (capacities 0, 1, 2, 3, 7) with duplicates and nil channels; half the fibers always have a
// ready case (a send and a receive on one buffered channel), the others may park, and a `quit`
// channel, closed at the end, lets those go. Every value sent is received exactly once, by a
// select or by the final drain.
using flow_value = tracked<24, 8>;
constexpr std::size_t flow_chans = 5;

struct flow_fiber {
  std::vector<std::uint64_t> sent;
  std::vector<std::uint64_t> received;
  std::size_t selects = 0;
};

template <std::size_t N>
struct flow_select {
  // Case 0 receives from quit; case i > 0: nil, or channel (i * 3 + offset) % flow_chans, or,
  // for an always-ready fiber, both kinds on `ready_on` at cases 1 and 2.
  static bool run(std::size_t f, bool always_ready, bool dynamic, std::uint64_t& next_id,
                  const std::vector<chan<flow_value>>& chans, const chan<flow_value>& quit,
                  flow_fiber& me) {
    const chan<flow_value> nil{nullptr};
    std::array<const chan<flow_value>*, N> ch{};
    for (std::size_t i = 0; i < N; ++i) {
      ch[i] = is_nil_case(i) ? &nil : &chans[(i * 3 + f) % flow_chans];
    }
    ch[0] = &quit;
    if (always_ready && N > 2) ch[1] = ch[2] = &chans[1 + f % (flow_chans - 1)];  // buffered
    std::array<std::uint64_t, N> ids{};
    for (std::size_t i = 0; i < N; ++i) ids[i] = next_id++;
    std::optional<std::size_t> chosen;
    std::optional<flow_value> got;
    bool quit_seen = false;
    auto on_got = [&](std::size_t i, std::optional<flow_value> v) {
      chosen = i;
      if (i == 0) {
        quit_seen = true;
      } else {
        got = std::move(v);
      }
    };
    if (dynamic) {
      std::vector<goro::select_case> cases;
      for (std::size_t i = 0; i < N; ++i) {
        if (is_send_case(i)) {
          cases.emplace_back(on_send(*ch[i], flow_value(ids[i]), [&, i] { chosen = i; }));
        } else {
          cases.emplace_back(
              on_recv(*ch[i], [&, i](std::optional<flow_value> v) { on_got(i, std::move(v)); }));
        }
      }
      goro::select(std::span<goro::select_case>(cases));
    } else {
      std::array<std::optional<flow_value>, N> values;
      for (std::size_t i = 0; i < N; ++i) {
        if (is_send_case(i)) values[i].emplace(ids[i]);
      }
      auto make_case = [&]<std::size_t K>(std::integral_constant<std::size_t, K>) {
        if constexpr (is_send_case(K)) {
          return on_send(*ch[K], std::move(*values[K]), [&] { chosen = K; });
        } else {
          return on_recv(*ch[K], [&](std::optional<flow_value> v) { on_got(K, std::move(v)); });
        }
      };
      [&]<std::size_t... I>(std::index_sequence<I...>) {
        goro::select(make_case(std::integral_constant<std::size_t, I>{})...);
      }
      (std::make_index_sequence<N>{});
      for (std::size_t i = 0; i < N; ++i) {
        if (is_send_case(i) && (!chosen || i != *chosen) && !holds(values[i], ids[i])) {
          violation("a send case not chosen lost its value");
        }
      }
    }
    if (!chosen) {
      violation("no handler ran");
      return false;
    }
    if (quit_seen) return false;
    if (is_send_case(*chosen)) {
      me.sent.push_back(ids[*chosen]);
    } else {
      const std::optional<std::uint64_t> v = got ? codec<flow_value>::value(*got) : std::nullopt;
      if (!v) {
        violation("a receive case got no value, or a torn one");
      } else {
        me.received.push_back(*v);
      }
    }
    ++me.selects;
    return true;
  }
};

TEST_P(ChanBufferAdversarialTest, ManySelectsAtOnceConserveValues) {
  const long live_before = live_tracked.load();
  const long violations_before = violations.load();
  const std::size_t per_fiber = scaled(sanitized_size(300));
  constexpr std::size_t fibers = 8;
  std::vector<flow_fiber> result(fibers);
  {
    goro::runtime rt{opts()};
    std::vector<chan<flow_value>> chans;
    for (std::size_t cap :
         {std::size_t{0}, std::size_t{1}, std::size_t{2}, std::size_t{3}, std::size_t{7}}) {
      chans.emplace_back(cap);
    }
    chan<flow_value> quit;
    goro::wait_group ready_done;
    goro::wait_group all_done;
    ready_done.add(fibers / 2);
    all_done.add(fibers);
    for (std::size_t f = 0; f < fibers; ++f) {
      rt.go([&, f] {
        const bool always_ready = f % 2 == 0;
        std::uint64_t next_id = (std::uint64_t{f} + 1) << 32;
        flow_fiber& me = result[f];
        for (std::size_t s = 0; always_ready ? s < per_fiber : true; ++s) {
          bool go_on = false;
          switch ((s + f) % 5) {
            case 0:
              go_on = flow_select<8>::run(f, always_ready, false, next_id, chans, quit, me);
              break;
            case 1:
              go_on = flow_select<9>::run(f, always_ready, false, next_id, chans, quit, me);
              break;
            case 2:
              go_on = flow_select<17>::run(f, always_ready, false, next_id, chans, quit, me);
              break;
            case 3:
              go_on = flow_select<17>::run(f, always_ready, true, next_id, chans, quit, me);
              break;
            default: go_on = flow_select<40>::run(f, always_ready, true, next_id, chans, quit, me);
          }
          if (!go_on) break;
          goro::this_fiber::yield();
        }
        if (always_ready) ready_done.done();
        all_done.done();
      });
    }
    await(ready_done, 60s, "the always-ready fibers");
    quit.close();
    await(all_done, 60s, "the fibers that may park");
    // What the channels still hold.
    for (chan<flow_value>& c : chans) {
      for (goro::recv_result<flow_value> v = c.try_recv(); v; v = c.try_recv()) {
        const std::optional<std::uint64_t> x = codec<flow_value>::value(*v.value);
        ASSERT_TRUE(x.has_value());
        result[0].received.push_back(*x);
      }
    }
  }
  std::vector<std::uint64_t> sent;
  std::vector<std::uint64_t> received;
  for (const flow_fiber& f : result) {
    sent.insert(sent.end(), f.sent.begin(), f.sent.end());
    received.insert(received.end(), f.received.begin(), f.received.end());
  }
  std::sort(sent.begin(), sent.end());
  std::sort(received.begin(), received.end());
  EXPECT_EQ(sent.size(), received.size());
  EXPECT_TRUE(sent == received) << "values lost or duplicated";
  EXPECT_GT(sent.size(), per_fiber);
  EXPECT_EQ(live_tracked.load(), live_before);
  EXPECT_EQ(violations.load(), violations_before);
}

INSTANTIATE_TEST_SUITE_P(Workers, ChanBufferAdversarialTest, goro_test::worker_counts(),
                         goro_test::worker_count_name);

}  // namespace
