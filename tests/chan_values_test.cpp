// SPDX-License-Identifier: Apache-2.0
// Tests of what goro::chan<T> does with the values themselves (goro/chan.hpp): a capacity
// whose buffer cannot exist throws std::length_error for every element size, before anything is
// built; every send form leaves the caller's object intact unless the send happened (cancelled,
// timed out, full, closed, nil); a T whose move constructor throws as a received value is moved
// out to the caller is destroyed exactly once on every receive path (recv, recv_for, try_recv,
// recv(stop_token), select's receive case, range-for) and the channel stays consistent; and
// range-for over move-only
// and copyable-but-not-assignable element types.
#include <array>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <iterator>
#include <limits>
#include <memory>
#include <optional>
#include <ranges>
#include <span>
#include <stdexcept>
#include <stop_token>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

#include "goro/goro.hpp"

namespace {

using namespace std::chrono_literals;
using goro::chan;
using goro::chan_status;

// ---- capacity ----------------------------------------------------------------------------

template <std::size_t N>
struct bytes {
  std::array<unsigned char, N> b;
};

// Every capacity past the limit for T throws std::length_error naming the operation.
template <class T>
void expect_capacity_out_of_range() {
  const std::size_t max = goro::detail::max_chan_capacity(sizeof(T));
  const std::size_t limit = static_cast<std::size_t>(PTRDIFF_MAX);
  std::vector<std::size_t> too_big = {
      max + 1,
      limit / sizeof(T),      // the buffer alone fits, the channel's own bytes on top do not
      limit / sizeof(T) + 1,  // the buffer alone is too big
      std::numeric_limits<std::size_t>::max(),
      std::numeric_limits<std::size_t>::max() / sizeof(T) + 1,  // the product wraps
  };
  for (std::size_t cap : too_big) {
    if (cap <= max) continue;  // wrapped to 0 (char), or the same as max (no header case)
    SCOPED_TRACE(cap);
    try {
      chan<T> ch(cap);
      ADD_FAILURE() << "no std::length_error; capacity() = " << ch.capacity();
    } catch (const std::length_error& e) {
      EXPECT_NE(std::string(e.what()).find("goro::chan: capacity out of range"), std::string::npos)
          << e.what();
    }
  }
  // A signed capacity past the limit too (where the type can hold one).
  if (max < static_cast<std::size_t>(std::numeric_limits<long long>::max())) {
    EXPECT_THROW(chan<T>{static_cast<long long>(max) + 1}, std::length_error);
  }
  EXPECT_THROW(chan<T>{std::numeric_limits<long long>::max()}, std::length_error);
  EXPECT_THROW(chan<T>{std::numeric_limits<unsigned long long>::max()}, std::length_error);
}

// Counts constructions (by any constructor) and destructions.
struct census {
  static inline std::atomic<int> made{0};
  static inline std::atomic<int> destroyed{0};
  int v = 0;
  explicit census(int x) : v(x) { made.fetch_add(1); }
  census(census&& other) noexcept : v(other.v) { made.fetch_add(1); }
  ~census() { destroyed.fetch_add(1); }
};

TEST(ChanCapacityTest, OverflowingCapacityThrowsLengthErrorForEveryElementSize) {
  census::made = 0;
  census::destroyed = 0;
  // Go's makechan panics on this one: (1 << 61) + 1 eight-byte values wrap to 8 bytes.
  try {
    chan<std::uint64_t> ch((1LL << 61) + 1);
    ADD_FAILURE() << "no std::length_error; capacity() = " << ch.capacity();
  } catch (const std::length_error& e) {
    EXPECT_NE(std::string(e.what()).find("capacity out of range"), std::string::npos) << e.what();
  }
  // Where the buffer alone would fit but the channel's own bytes on top would not.
  static_assert(goro::detail::max_chan_capacity(1) < static_cast<std::size_t>(PTRDIFF_MAX));
  EXPECT_THROW(chan<char>(static_cast<std::size_t>(PTRDIFF_MAX)), std::length_error);
  expect_capacity_out_of_range<char>();
  expect_capacity_out_of_range<std::uint16_t>();
  expect_capacity_out_of_range<std::uint64_t>();
  expect_capacity_out_of_range<bytes<3>>();
  expect_capacity_out_of_range<bytes<24>>();
  expect_capacity_out_of_range<bytes<4096>>();
  expect_capacity_out_of_range<std::string>();
  expect_capacity_out_of_range<census>();
  EXPECT_EQ(census::made.load(), 0) << "a rejected channel constructed an element";
  EXPECT_EQ(census::destroyed.load(), 0);
}

TEST(ChanCapacityTest, NegativeCapacityThrowsInvalidArgument) {
  EXPECT_THROW(chan<int>(-1), std::invalid_argument);
  EXPECT_THROW(chan<bytes<4096>>{std::numeric_limits<long long>::min()}, std::invalid_argument);
  EXPECT_THROW(chan<char>(static_cast<signed char>(-1)), std::invalid_argument);
}

TEST(ChanCapacityTest, CapacitiesWithinTheLimitWork) {
  chan<std::uint64_t> ch(std::uint8_t{200});
  EXPECT_EQ(ch.capacity(), 200u);
  for (std::uint64_t i = 0; i < 200; ++i) ASSERT_EQ(ch.try_send(std::uint64_t{i}), chan_status::ok);
  EXPECT_EQ(ch.try_send(std::uint64_t{200}), chan_status::full);
  for (std::uint64_t i = 0; i < 200; ++i) ASSERT_EQ(ch.recv(), std::optional<std::uint64_t>(i));
  EXPECT_EQ(chan<bytes<4096>>(std::size_t{3}).capacity(), 3u);
}

// ---- sends that do not happen keep the value ---------------------------------------------

using ptr = std::unique_ptr<int>;

// The caller's object after a send that did not happen: as it was.
void expect_kept(const ptr& p, int v, const char* what) {
  ASSERT_NE(p, nullptr) << what << " moved from a value it did not send";
  EXPECT_EQ(*p, v) << what;
}

TEST(ChanSendKeepsValueTest, CancelledSendKeepsTheValue) {
  std::stop_source stopped;
  stopped.request_stop();
  for (int cap : {0, 1}) {
    SCOPED_TRACE(cap);
    chan<ptr> ch(cap);
    if (cap == 1) {
      ASSERT_EQ(ch.try_send(std::make_unique<int>(0)), chan_status::ok);  // now full
    }
    ptr p = std::make_unique<int>(7);
    EXPECT_EQ(ch.send(std::move(p), stopped.get_token()), chan_status::cancelled);
    expect_kept(p, 7, "send(v, stop_token) cancelled at once");

    // Cancelled while blocked, from another thread.
    std::stop_source later;
    std::thread canceller([&] {
      std::this_thread::sleep_for(5ms);  // lets the send block first (either order is correct)
      later.request_stop();
    });
    EXPECT_EQ(ch.send(std::move(p), later.get_token()), chan_status::cancelled);
    canceller.join();
    expect_kept(p, 7, "send(v, stop_token) cancelled while blocked");

    chan<ptr> nil{nullptr};
    EXPECT_EQ(nil.send(std::move(p), stopped.get_token()), chan_status::cancelled);
    expect_kept(p, 7, "send(v, stop_token) on a nil channel");
  }
}

TEST(ChanSendKeepsValueTest, SendToAClosedChannelKeepsTheValue) {
  std::stop_source never;
  for (int cap : {0, 1}) {
    SCOPED_TRACE(cap);
    chan<ptr> ch(cap);
    ch.close();
    ptr p = std::make_unique<int>(8);
    EXPECT_THROW(ch.send(std::move(p)), goro::closed_channel_error);
    expect_kept(p, 8, "send(v) on a closed channel");
    EXPECT_THROW((void)ch.send(std::move(p), never.get_token()), goro::closed_channel_error);
    expect_kept(p, 8, "send(v, stop_token) on a closed channel");
    EXPECT_THROW((void)ch.send_for(std::move(p), 1h), goro::closed_channel_error);
    expect_kept(p, 8, "send_for on a closed channel");
    EXPECT_THROW((void)ch.send_until(std::move(p), std::chrono::steady_clock::now() + 1h),
                 goro::closed_channel_error);
    expect_kept(p, 8, "send_until on a closed channel");
    EXPECT_EQ(ch.try_send(std::move(p)), chan_status::closed);
    expect_kept(p, 8, "try_send on a closed channel");
  }
}

TEST(ChanSendKeepsValueTest, SendClosedWhileBlockedKeepsTheValue) {
  for (int cap : {0, 1}) {
    SCOPED_TRACE(cap);
    chan<ptr> ch(cap);
    if (cap == 1) {
      ASSERT_EQ(ch.try_send(std::make_unique<int>(0)), chan_status::ok);  // now full
    }
    std::thread closer([ch] {
      std::this_thread::sleep_for(5ms);  // lets the send block first (either order is correct)
      ch.close();
    });
    ptr p = std::make_unique<int>(9);
    EXPECT_THROW(ch.send(std::move(p)), goro::closed_channel_error);
    closer.join();
    expect_kept(p, 9, "send(v) closed while blocked");
  }
}

TEST(ChanSendKeepsValueTest, TimedOutAndFullSendsKeepTheValue) {
  for (int cap : {0, 1}) {
    SCOPED_TRACE(cap);
    chan<ptr> ch(cap);
    if (cap == 1) {
      ASSERT_EQ(ch.try_send(std::make_unique<int>(0)), chan_status::ok);  // now full
    }
    ptr p = std::make_unique<int>(10);
    EXPECT_EQ(ch.try_send(std::move(p)), chan_status::full);
    expect_kept(p, 10, "try_send on a full channel");
    EXPECT_EQ(ch.send_for(std::move(p), 1ms), chan_status::timeout);
    expect_kept(p, 10, "send_for timed out");
    EXPECT_EQ(ch.send_until(std::move(p), std::chrono::steady_clock::now() + 1ms),
              chan_status::timeout);
    expect_kept(p, 10, "send_until timed out");
    chan<ptr> nil{nullptr};
    EXPECT_EQ(nil.send_for(std::move(p), 1ms), chan_status::timeout);
    expect_kept(p, 10, "send_for on a nil channel");
  }
}

TEST(ChanSendKeepsValueTest, PerformedSendsMoveAndCopyFormsNeverChangeTheCaller) {
  chan<ptr> ch(4);
  ptr p = std::make_unique<int>(1);
  ch.send(std::move(p));
  EXPECT_EQ(p, nullptr);  // sent: moved from
  p = std::make_unique<int>(2);
  std::stop_source never;
  EXPECT_EQ(ch.send(std::move(p), never.get_token()), chan_status::ok);
  EXPECT_EQ(p, nullptr);
  EXPECT_EQ(*ch.recv().value(), 1);
  EXPECT_EQ(*ch.recv().value(), 2);

  // The const T& forms send a copy: the caller's object is never changed, sent or not.
  chan<std::string> strings(1);
  const std::string s = "kept";
  std::string t = "also kept";
  strings.send(s);
  EXPECT_EQ(s, "kept");
  std::stop_source stopped;
  stopped.request_stop();
  EXPECT_EQ(strings.send(t, stopped.get_token()), chan_status::cancelled);  // full
  EXPECT_EQ(t, "also kept");
  EXPECT_EQ(strings.recv(), std::optional<std::string>("kept"));
  EXPECT_EQ(strings.send(t, never.get_token()), chan_status::ok);
  EXPECT_EQ(t, "also kept");
  EXPECT_EQ(strings.recv(), std::optional<std::string>("also kept"));
  strings.close();
  EXPECT_THROW(strings.send(t), goro::closed_channel_error);
  EXPECT_EQ(t, "also kept");
}

// ---- a move constructor that throws on receive ----------------------------------------------

// Counts every construction and destruction, and throws from the move that takes it past its
// allowance: a value made with hops = k survives k moves, and moving from the k-th copy
// throws. The channel moves a value internally (those moves must not throw: they happen under
// its lock): caller -> buffer -> the receive's slot for a buffered channel, caller -> the
// receive's slot for a hand-off; the move after those is the one out to the caller.
struct fragile {
  static inline std::atomic<int> made{0};
  static inline std::atomic<int> destroyed{0};
  static inline std::atomic<int> throws{0};
  int v;
  int hops;
  fragile(int value, int allowed_moves) : v(value), hops(allowed_moves) { made.fetch_add(1); }
  fragile(fragile&& other) : v(other.v), hops(other.hops - 1) {
    if (other.hops == 0) {
      throws.fetch_add(1);
      throw std::runtime_error("fragile: move");
    }
    made.fetch_add(1);
  }
  fragile(const fragile&) = delete;
  ~fragile() { destroyed.fetch_add(1); }

  static int live() { return made.load() - destroyed.load(); }
};

// The moves inside the channel before the one out to the caller (see fragile).
int inner_moves(int cap) { return cap == 0 ? 1 : 2; }

// Sends fragile(v) so that it throws as it leaves the receive's slot. For cap == 0 the send
// runs on a thread of its own, which the returned thread joins.
std::thread send_fragile(const chan<fragile>& ch, int cap, int v) {
  if (cap > 0) {
    ch.send(fragile(v, inner_moves(cap)));
    return {};
  }
  return std::thread([ch, v] { ch.send(fragile(v, inner_moves(0))); });
}

class ChanThrowingMoveTest : public ::testing::TestWithParam<int> {
 protected:
  void SetUp() override {
    fragile::made = 0;
    fragile::destroyed = 0;
    fragile::throws = 0;
  }
  // After the throwing receive: the value was consumed and destroyed once, and the channel
  // goes on as after any receive.
  void expect_consumed_and_consistent(const chan<fragile>& ch, int cap) {
    EXPECT_EQ(fragile::throws.load(), 1);
    EXPECT_EQ(fragile::live(), 0) << "made " << fragile::made << ", destroyed "
                                  << fragile::destroyed;
    EXPECT_EQ(ch.size(), 0u);
    std::thread next;
    if (cap > 0) {
      ch.send(fragile(3, 100));
    } else {
      next = std::thread([ch] { ch.send(fragile(3, 100)); });
    }
    std::optional<fragile> r = ch.recv();
    if (next.joinable()) next.join();
    ASSERT_TRUE(r.has_value());
    EXPECT_EQ(r->v, 3);
    r.reset();
    EXPECT_EQ(fragile::live(), 0);
  }
};

TEST_P(ChanThrowingMoveTest, Recv) {
  const int cap = GetParam();
  {
    chan<fragile> ch(cap);
    std::thread sender = send_fragile(ch, cap, 1);
    EXPECT_THROW((void)ch.recv(), std::runtime_error);
    if (sender.joinable()) sender.join();
    expect_consumed_and_consistent(ch, cap);
  }
  EXPECT_EQ(fragile::live(), 0);
}

TEST_P(ChanThrowingMoveTest, RecvForAndRecvWithStopToken) {
  const int cap = GetParam();
  {
    chan<fragile> ch(cap);
    std::thread sender = send_fragile(ch, cap, 1);
    EXPECT_THROW((void)ch.recv_for(1h), std::runtime_error);
    if (sender.joinable()) sender.join();
    expect_consumed_and_consistent(ch, cap);
    fragile::throws = 0;
    sender = send_fragile(ch, cap, 1);
    std::stop_source never;
    EXPECT_THROW((void)ch.recv(never.get_token()), std::runtime_error);
    if (sender.joinable()) sender.join();
    expect_consumed_and_consistent(ch, cap);
  }
  EXPECT_EQ(fragile::live(), 0);
}

TEST_P(ChanThrowingMoveTest, TryRecv) {
  const int cap = GetParam();
  {
    chan<fragile> ch(cap);
    std::thread sender = send_fragile(ch, cap, 1);
    // Unbuffered: polls until the sender has blocked (what try_recv is for); it then throws.
    bool threw = false;
    while (!threw) {
      try {
        const chan_status status = ch.try_recv().status;
        ASSERT_EQ(status, chan_status::empty);
        std::this_thread::yield();
      } catch (const std::runtime_error&) {
        threw = true;
      }
    }
    if (sender.joinable()) sender.join();
    expect_consumed_and_consistent(ch, cap);
  }
  EXPECT_EQ(fragile::live(), 0);
}

TEST_P(ChanThrowingMoveTest, SelectRecv) {
  const int cap = GetParam();
  {
    chan<fragile> ch(cap);
    chan<fragile> never;
    std::thread sender = send_fragile(ch, cap, 1);
    bool handled = false;
    EXPECT_THROW(goro::select(goro::on_recv(never),
                              goro::on_recv(ch, [&](std::optional<fragile>) { handled = true; })),
                 std::runtime_error);
    if (sender.joinable()) sender.join();
    EXPECT_FALSE(handled);
    expect_consumed_and_consistent(ch, cap);

    // The run-time form.
    fragile::throws = 0;
    sender = send_fragile(ch, cap, 1);
    std::vector<goro::select_case> cases;
    cases.push_back(goro::on_recv(never));
    cases.push_back(goro::on_recv(ch, [&](std::optional<fragile>) { handled = true; }));
    EXPECT_THROW(goro::select(std::span(cases)), std::runtime_error);
    if (sender.joinable()) sender.join();
    EXPECT_FALSE(handled);
    expect_consumed_and_consistent(ch, cap);
  }
  EXPECT_EQ(fragile::live(), 0);
}

// Range-for moves each value out of the receive's slot into the iterator (extra = 0), and the
// loop moves it from there into its variable (extra = 1). Either move may throw; the value is
// destroyed once either way, and the loop has not run.
void range_for_throwing_at(int cap, int extra) {
  SCOPED_TRACE(extra);
  fragile::made = 0;
  fragile::destroyed = 0;
  fragile::throws = 0;
  {
    chan<fragile> ch(cap);
    std::thread sender;
    if (cap > 0) {
      ch.send(fragile(1, inner_moves(cap) + extra));
      ch.close();
    } else {
      sender = std::thread([ch, extra] {
        ch.send(fragile(1, inner_moves(0) + extra));
        ch.close();
      });
    }
    int seen = 0;
    try {
      for (fragile f : ch) {
        ++seen;
        (void)f;
      }
      ADD_FAILURE() << "no exception from the loop";
    } catch (const std::runtime_error&) {
    }
    if (sender.joinable()) sender.join();
    EXPECT_EQ(seen, 0);
    EXPECT_EQ(fragile::throws.load(), 1);
    EXPECT_EQ(fragile::live(), 0) << "made " << fragile::made << ", destroyed "
                                  << fragile::destroyed;
    EXPECT_EQ(ch.recv(), std::nullopt);  // consumed: the channel is closed and drained
  }
  EXPECT_EQ(fragile::live(), 0);
}

TEST_P(ChanThrowingMoveTest, RangeFor) {
  range_for_throwing_at(GetParam(), 0);
  range_for_throwing_at(GetParam(), 1);
}

std::string capacity_name(const ::testing::TestParamInfo<int>& param) {
  return "cap_" + std::to_string(param.param);
}
INSTANTIATE_TEST_SUITE_P(Capacity, ChanThrowingMoveTest, ::testing::Values(0, 1, 3), capacity_name);

// A move that throws inside the channel (into the buffer, or in a hand-off, under the lock) can
// be neither finished nor undone: goro's fatal error names the exception, in goro's format, not
// the C++ runtime's bare std::terminate message.
TEST(ChanThrowingMoveDeathTest, AMoveThatThrowsInsideTheChannelIsFatalAndSaysWhy) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  const char* const expected =
      "goro: fatal error: a channel element's move constructor threw inside the channel: "
      "fragile: move";
  EXPECT_DEATH(
      {
        chan<fragile> ch(1);
        ch.send(fragile(1, 0));  // its first move is into the buffer
      },
      expected);
  EXPECT_DEATH(
      {
        chan<fragile> ch;
        std::thread receiver([ch] { (void)ch.recv(); });
        ch.send(fragile(1, 0));  // its first move is the hand-off, by whichever side comes second
        receiver.join();
      },
      expected);
}

// ---- range-for over element types that recv() handles ----------------------------------------

// Copyable, not assignable (a const member), not default-constructible.
struct message {
  const int id;
  std::string text;
};

static_assert(std::input_iterator<chan<int>::iterator>);
static_assert(std::ranges::input_range<chan<std::unique_ptr<int>>>);

TEST(ChanRangeForTest, MoveOnlyElementsByValue) {
  chan<std::unique_ptr<int>> ch(4);
  for (int i = 0; i < 4; ++i) ch.send(std::make_unique<int>(i));
  ch.close();
  std::vector<int> got;
  for (std::unique_ptr<int> v : ch) {
    ASSERT_NE(v, nullptr);
    got.push_back(*v);
  }
  EXPECT_EQ(got, (std::vector<int>{0, 1, 2, 3}));
}

TEST(ChanRangeForTest, CopyableButNotAssignableElements) {
  static_assert(!std::is_copy_assignable_v<message> && !std::is_move_assignable_v<message>);
  chan<message> ch(3);
  ch.send(message{1, "one"});
  const message two{2, "two"};
  ch.send(two);
  ch.send(message{3, "three"});
  ch.close();
  std::vector<std::string> got;
  for (message m : ch) got.push_back(std::to_string(m.id) + m.text);
  EXPECT_EQ(got, (std::vector<std::string>{"1one", "2two", "3three"}));
}

TEST(ChanRangeForTest, ReferenceLoopVariablesBindWithoutAMove) {
  census::made = 0;
  census::destroyed = 0;
  {
    chan<census> ch(2);
    ch.send(census(1));
    ch.send(census(2));
    ch.close();
    int sum = 0;
    const int before = census::made.load();
    for (auto&& c : ch) sum += c.v;
    EXPECT_EQ(sum, 3);
    const int by_reference = census::made.load() - before;

    chan<census> again(2);
    again.send(census(1));
    again.send(census(2));
    again.close();
    const int before_by_value = census::made.load();
    for (census c : again) sum += c.v;
    EXPECT_EQ(sum, 6);
    EXPECT_EQ(census::made.load() - before_by_value, by_reference + 2)
        << "a by-value loop variable costs one copy or move per value; a reference none";
  }
  EXPECT_EQ(census::made.load(), census::destroyed.load());
  chan<std::string> strings(1);
  strings.send("x");
  strings.close();
  for (const std::string& s : strings) EXPECT_EQ(s, "x");
}

TEST(ChanRangeForTest, LvalueReferenceLoopVariablesBindToCopyableElements) {
  chan<std::string> ch(3);
  for (const char* s : {"a", "b", "c"}) ch.send(s);
  ch.close();
  std::string joined;
  for (auto& s : ch) {
    s += "!";  // the iterator's own value, which the loop may change in place
    joined += s;
  }
  EXPECT_EQ(joined, "a!b!c!");
}

TEST(ChanRangeForTest, ThreadsFeedingARangeLoop) {
  chan<std::unique_ptr<int>> ch;  // unbuffered: every value a hand-off
  std::thread producer([ch] {
    for (int i = 0; i < 100; ++i) ch.send(std::make_unique<int>(i));
    ch.close();
  });
  int next = 0;
  for (std::unique_ptr<int> v : ch) {
    ASSERT_NE(v, nullptr);
    EXPECT_EQ(*v, next++);
  }
  producer.join();
  EXPECT_EQ(next, 100);
}

}  // namespace
