// SPDX-License-Identifier: Apache-2.0
// Tests of goro::chan<T> (goro/chan.hpp), Go's runtime/chan_test.go written again as behaviour:
// for every capacity 0..20 that receives on an empty channel and sends on a full one block,
// that close keeps buffered values receivable and then gives std::nullopt, FIFO order, size()
// and capacity(); multi-producer/multi-consumer runs checked by counts, checksums and an
// exactly-once bitmap (4x4, and Go's 23 range-loop consumers); close racing with senders and
// receivers; the nil channel; move-only and non-default-constructible payloads; plain threads
// and fibers mixed; try_*, timed and cancellable operations, including "nothing is lost" when
// a thousand blocked receivers or senders are cancelled mid-stream; and the happens-before
// edges from send to receive and from close to the receive that observes it. Concurrency
// tests run once per worker count (1, 2, 4, 8).
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <stdexcept>
#include <stop_token>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "goro/goro.hpp"
#include "test_support.hpp"

namespace {

using goro_test::blocked_for;
using goro_test::run_fibers;
using namespace std::chrono_literals;
using goro::chan;
using goro::chan_status;
using goro_test::scaled;

// Counts its live instances; not default-constructible, move-only.
struct counted {
  static inline std::atomic<int> live{0};
  int v;
  explicit counted(int x) : v(x) { live.fetch_add(1); }
  counted(counted&& other) noexcept : v(other.v) { live.fetch_add(1); }
  counted(const counted&) = delete;
  counted& operator=(const counted&) = delete;
  ~counted() { live.fetch_sub(1); }
};

// The values Go's TestMultiConsumer feeds its workers.
constexpr int primes[] = {2, 3, 7, 11, 13, 17, 19, 23, 27, 31};

// Copyable but with no default constructor.
struct no_default {
  no_default() = delete;
  explicit no_default(int x, std::string s) : v(x), text(std::move(s)) {}
  int v;
  std::string text;
};

template <class F>
void expect_closed_channel_error(F&& f, const char* operation) {
  try {
    f();
    ADD_FAILURE() << "no closed_channel_error from " << operation;
  } catch (const std::logic_error& e) {  // closed_channel_error derives from std::logic_error
    EXPECT_NE(dynamic_cast<const goro::closed_channel_error*>(&e), nullptr) << e.what();
    EXPECT_NE(std::string(e.what()).find(operation), std::string::npos) << e.what();
  }
}

// ---- single-threaded semantics -----------------------------------------------------------

TEST(ChanBasicsTest, SizeAndCapacityForCapacities0To20) {
  for (int cap = 0; cap <= 20; ++cap) {
    SCOPED_TRACE(cap);
    chan<int> ch(cap);
    EXPECT_EQ(ch.capacity(), static_cast<std::size_t>(cap));
    EXPECT_EQ(ch.size(), 0u);
    for (int i = 0; i < cap; ++i) {
      ASSERT_EQ(ch.try_send(i), chan_status::ok);
      EXPECT_EQ(ch.size(), static_cast<std::size_t>(i + 1));
    }
    EXPECT_EQ(ch.try_send(-1), chan_status::full);
    EXPECT_EQ(ch.size(), static_cast<std::size_t>(cap));
    for (int i = 0; i < cap; ++i) {
      const auto r = ch.try_recv();
      ASSERT_EQ(r.status, chan_status::ok);
      EXPECT_EQ(r.value, std::optional<int>(i));  // FIFO
      EXPECT_EQ(ch.size(), static_cast<std::size_t>(cap - i - 1));
    }
    const auto r = ch.try_recv();
    EXPECT_EQ(r.status, chan_status::empty);
    EXPECT_FALSE(r.value.has_value());
    EXPECT_FALSE(r);
    EXPECT_EQ(ch.capacity(), static_cast<std::size_t>(cap));
  }
}

TEST(ChanBasicsTest, NonPowerOfTwoCapacityHoldsExactlyN) {
  for (int cap : {1, 3, 5, 7, 100, 1000}) {
    SCOPED_TRACE(cap);
    chan<int> ch(cap);
    for (int i = 0; i < cap; ++i) ASSERT_EQ(ch.try_send(i), chan_status::ok) << i;
    EXPECT_EQ(ch.try_send(cap), chan_status::full);
    EXPECT_EQ(ch.size(), static_cast<std::size_t>(cap));
    // Wrap the ring around a few times: after each receive there is room for exactly one.
    for (int i = 0; i < 3 * cap; ++i) {
      const auto r = ch.try_recv();
      ASSERT_EQ(r.value, std::optional<int>(i));
      ASSERT_EQ(ch.try_send(cap + i), chan_status::ok);
      ASSERT_EQ(ch.try_send(-1), chan_status::full);
    }
    for (int i = 3 * cap; i < 4 * cap; ++i) ASSERT_EQ(ch.try_recv().value, std::optional<int>(i));
    EXPECT_EQ(ch.try_recv().status, chan_status::empty);
  }
}

TEST(ChanBasicsTest, CloseKeepsBufferedValuesReceivable) {
  for (int cap = 0; cap <= 20; ++cap) {
    SCOPED_TRACE(cap);
    chan<int> ch(cap);
    for (int i = 0; i < cap; ++i) ch.send(i * 7);
    ch.close();
    EXPECT_EQ(ch.size(), static_cast<std::size_t>(cap));
    EXPECT_EQ(ch.try_send(1), chan_status::closed);
    for (int i = 0; i < cap; ++i) {
      if (i % 2 == 0) {
        EXPECT_EQ(ch.recv(), std::optional<int>(i * 7));
      } else {
        const auto r = ch.try_recv();
        EXPECT_EQ(r.status, chan_status::ok);
        EXPECT_EQ(r.value, std::optional<int>(i * 7));
      }
    }
    EXPECT_EQ(ch.size(), 0u);
    EXPECT_EQ(ch.recv(), std::nullopt);
    EXPECT_EQ(ch.recv(), std::nullopt);  // stays closed
    EXPECT_EQ(ch.try_recv().status, chan_status::closed);
    EXPECT_EQ(ch.recv_for(1h).status, chan_status::closed);
    EXPECT_EQ(ch.recv(std::stop_token{}).status, chan_status::closed);
    EXPECT_EQ(ch.capacity(), static_cast<std::size_t>(cap));
  }
}

TEST(ChanBasicsTest, RangeLoopStopsAtClose) {
  chan<int> ch(5);
  for (int i = 0; i < 5; ++i) ch.send(i);
  ch.close();
  std::vector<int> got;
  for (int v : ch) got.push_back(v);
  EXPECT_EQ(got, (std::vector<int>{0, 1, 2, 3, 4}));
}

TEST(ChanBasicsTest, TryOperationStatuses) {
  chan<int> unbuffered;
  EXPECT_EQ(unbuffered.capacity(), 0u);
  EXPECT_EQ(unbuffered.try_send(1), chan_status::full);  // no receiver waiting
  EXPECT_EQ(unbuffered.try_recv().status, chan_status::empty);
  unbuffered.close();
  EXPECT_EQ(unbuffered.try_send(1), chan_status::closed);
  EXPECT_EQ(unbuffered.try_recv().status, chan_status::closed);

  chan<int> buffered(2);
  EXPECT_EQ(buffered.try_recv().status, chan_status::empty);
  EXPECT_EQ(buffered.try_send(1), chan_status::ok);
  EXPECT_EQ(buffered.try_send(2), chan_status::ok);
  EXPECT_EQ(buffered.try_send(3), chan_status::full);
  buffered.close();
  EXPECT_EQ(buffered.try_send(4), chan_status::closed);
  EXPECT_TRUE(buffered.try_recv());
  EXPECT_TRUE(buffered.try_recv());
  EXPECT_EQ(buffered.try_recv().status, chan_status::closed);
}

TEST(ChanBasicsTest, SendOnClosedChannelThrows) {
  for (int cap : {0, 1, 3}) {
    SCOPED_TRACE(cap);
    chan<int> ch(cap);
    ch.close();
    expect_closed_channel_error([&] { ch.send(1); }, "send");
    expect_closed_channel_error([&] { (void)ch.send_for(2, 1h); }, "send");
    expect_closed_channel_error(
        [&] { (void)ch.send_until(3, std::chrono::steady_clock::now() + 1h); }, "send");
    expect_closed_channel_error([&] { (void)ch.send(4, std::stop_token{}); }, "send");
    // A value whose send threw was not delivered.
    EXPECT_EQ(ch.try_recv().status, chan_status::closed);
  }
}

TEST(ChanBasicsTest, DoubleCloseThrows) {
  for (int cap : {0, 4}) {
    chan<int> ch(cap);
    ch.close();
    expect_closed_channel_error([&] { ch.close(); }, "close");
    chan<int> copy = ch;  // another handle on the same channel
    expect_closed_channel_error([&] { copy.close(); }, "close");
  }
}

TEST(ChanBasicsTest, NilChannelNeverCompletes) {
  chan<int> nil{nullptr};
  EXPECT_FALSE(nil);
  EXPECT_EQ(nil.size(), 0u);
  EXPECT_EQ(nil.capacity(), 0u);
  EXPECT_EQ(nil, chan<int>(nullptr));
  EXPECT_FALSE(nil == chan<int>());
  EXPECT_EQ(nil.try_send(1), chan_status::full);
  EXPECT_EQ(nil.try_recv().status, chan_status::empty);

  const auto start = std::chrono::steady_clock::now();
  EXPECT_EQ(nil.recv_for(10ms).status, chan_status::timeout);
  EXPECT_EQ(nil.send_for(1, 10ms), chan_status::timeout);
  EXPECT_EQ(nil.recv_until(std::chrono::steady_clock::now() + 5ms).status, chan_status::timeout);
  EXPECT_GE(std::chrono::steady_clock::now() - start, 25ms);

  std::stop_source stopped;
  stopped.request_stop();
  EXPECT_EQ(nil.recv(stopped.get_token()).status, chan_status::cancelled);
  EXPECT_EQ(nil.send(1, stopped.get_token()), chan_status::cancelled);

  expect_closed_channel_error([&] { nil.close(); }, "close");
  EXPECT_EQ(nil.try_send(1), chan_status::full);  // still nil, not closed
}

TEST(ChanBasicsTest, NegativeCapacityThrows) {
  EXPECT_THROW(chan<int>(-1), std::invalid_argument);
  EXPECT_THROW(chan<int>(static_cast<long>(-100)), std::invalid_argument);
  EXPECT_NO_THROW(chan<int>(0u));
}

TEST(ChanBasicsTest, HandlesShareOneChannel) {
  chan<int> a(3);
  chan<int> b = a;
  chan<int> c;
  c = b;
  EXPECT_EQ(a, b);
  EXPECT_EQ(a, c);
  EXPECT_FALSE(a == chan<int>(3));
  ASSERT_EQ(a.try_send(1), chan_status::ok);
  EXPECT_EQ(b.size(), 1u);
  EXPECT_EQ(c.try_recv().value, std::optional<int>(1));
  b.close();
  EXPECT_EQ(a.try_recv().status, chan_status::closed);
}

TEST(ChanBasicsTest, MoveOnlyPayload) {
  chan<std::unique_ptr<int>> ch(2);
  ch.send(std::make_unique<int>(1));
  ASSERT_EQ(ch.try_send(std::make_unique<int>(2)), chan_status::ok);
  auto third = std::make_unique<int>(3);
  EXPECT_EQ(ch.try_send(std::move(third)), chan_status::full);
  ASSERT_NE(third, nullptr) << "a try_send that did not complete must not move from its value";
  EXPECT_EQ(*third, 3);
  EXPECT_EQ(ch.send_for(std::move(third), 1ms), chan_status::timeout);
  ASSERT_NE(third, nullptr) << "a send_for that timed out must not move from its value";
  auto a = ch.recv();
  ASSERT_TRUE(a.has_value() && *a != nullptr);
  EXPECT_EQ(**a, 1);
  auto b = ch.try_recv();
  ASSERT_TRUE(b.value.has_value() && *b.value != nullptr);
  EXPECT_EQ(**b.value, 2);
  ch.send(std::move(third));
  ch.close();
  auto c = ch.recv();
  ASSERT_TRUE(c.has_value() && *c != nullptr);
  EXPECT_EQ(**c, 3);
  EXPECT_EQ(ch.recv(), std::nullopt);
}

TEST(ChanBasicsTest, NonDefaultConstructiblePayload) {
  chan<no_default> ch(3);
  ch.send(no_default(1, "one"));
  const no_default two(2, "two");
  EXPECT_EQ(ch.try_send(two), chan_status::ok);
  EXPECT_EQ(ch.send_for(two, 1ms), chan_status::ok);
  auto r = ch.recv();
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->v, 1);
  EXPECT_EQ(r->text, "one");
  EXPECT_EQ(ch.recv()->text, "two");
  EXPECT_EQ(ch.try_recv().value->text, "two");
}

TEST(ChanBasicsTest, ValuesLeftInTheBufferAreDestroyedWithTheChannel) {
  ASSERT_EQ(counted::live.load(), 0);
  {
    chan<counted> ch(4);
    for (int i = 0; i < 3; ++i) ch.send(counted(i));
    EXPECT_EQ(counted::live.load(), 3);
    {
      auto r = ch.recv();
      ASSERT_TRUE(r.has_value());
      EXPECT_EQ(r->v, 0);
      EXPECT_EQ(counted::live.load(), 3);
    }
    EXPECT_EQ(counted::live.load(), 2);
    // Wrap the ring so the remaining values straddle its end.
    ch.send(counted(3));
    ch.send(counted(4));
    EXPECT_EQ(ch.recv()->v, 1);
    ch.send(counted(5));
    EXPECT_EQ(counted::live.load(), 4);
  }
  EXPECT_EQ(counted::live.load(), 0);
}

TEST(ChanBasicsTest, TimeoutsOnAThread) {
  using clock = std::chrono::steady_clock;
  chan<int> ch;  // unbuffered, and nobody else uses it

  auto start = clock::now();
  EXPECT_EQ(ch.send_for(1, 20ms), chan_status::timeout);
  EXPECT_GE(clock::now() - start, 20ms);
  EXPECT_EQ(ch.try_recv().status, chan_status::empty) << "a timed-out send delivered its value";

  start = clock::now();
  const auto r = ch.recv_for(20ms);
  EXPECT_EQ(r.status, chan_status::timeout);
  EXPECT_FALSE(r.value.has_value());
  EXPECT_GE(clock::now() - start, 20ms);

  const auto deadline = clock::now() + 15ms;
  EXPECT_EQ(ch.recv_until(deadline).status, chan_status::timeout);
  EXPECT_GE(clock::now(), deadline);
  EXPECT_EQ(ch.send_until(2, deadline), chan_status::timeout);  // already past

  EXPECT_EQ(ch.recv_for(0ms).status, chan_status::timeout);
  EXPECT_EQ(ch.recv_for(-5ms).status, chan_status::timeout);
  EXPECT_EQ(ch.send_for(3, 0ms), chan_status::timeout);

  chan<int> buffered(1);
  EXPECT_EQ(buffered.send_for(4, 0ms), chan_status::ok);  // room: no waiting needed
  EXPECT_EQ(buffered.send_for(5, 5ms), chan_status::timeout);
  const auto got = buffered.recv_until(clock::now() - 1s);  // ready: the deadline is moot
  EXPECT_EQ(got.status, chan_status::ok);
  EXPECT_EQ(got.value, std::optional<int>(4));
  EXPECT_EQ(buffered.try_recv().status, chan_status::empty) << "timed-out send delivered";
}

TEST(ChanBasicsTest, AlreadyRequestedStopCancelsAtOnce) {
  std::stop_source stopped;
  stopped.request_stop();
  chan<int> ch;
  const auto r = ch.recv(stopped.get_token());
  EXPECT_EQ(r.status, chan_status::cancelled);
  EXPECT_FALSE(r.value.has_value());
  EXPECT_EQ(ch.send(1, stopped.get_token()), chan_status::cancelled);
  EXPECT_EQ(ch.try_recv().status, chan_status::empty) << "a cancelled send delivered its value";
  chan<int> full(1);
  full.send(1);
  EXPECT_EQ(full.send(2, stopped.get_token()), chan_status::cancelled);
  EXPECT_EQ(full.recv(), std::optional<int>(1));
  EXPECT_EQ(full.try_recv().status, chan_status::empty);
}

TEST(ChanBasicsTest, ThreadBlockedOperationsCancelledFromAnotherThread) {
  chan<int> ch;
  {
    std::stop_source ss;
    std::thread canceller([&ss] {
      std::this_thread::sleep_for(5ms);  // lets the main thread block first (not required)
      ss.request_stop();
    });
    const auto r = ch.recv(ss.get_token());
    canceller.join();
    EXPECT_EQ(r.status, chan_status::cancelled);
  }
  {
    std::stop_source ss;
    std::thread canceller([&ss] {
      std::this_thread::sleep_for(5ms);  // lets the main thread block first (not required)
      ss.request_stop();
    });
    EXPECT_EQ(ch.send(7, ss.get_token()), chan_status::cancelled);
    canceller.join();
    EXPECT_EQ(ch.try_recv().status, chan_status::empty) << "a cancelled send delivered";
  }
}

TEST(ChanBasicsTest, ThreadToThreadWithoutFibers) {
  // No runtime: channels park plain threads.
  chan<int> ping;
  chan<int> pong;
  std::thread echo([ping, pong]() mutable {
    while (auto v = ping.recv()) pong.send(*v + 1);
    pong.close();
  });
  for (int i = 0; i < 1000; ++i) {
    ping.send(i);
    ASSERT_EQ(pong.recv(), std::optional<int>(i + 1));
  }
  ping.close();
  EXPECT_EQ(pong.recv(), std::nullopt);
  echo.join();

  // 4 x 4 threads over a small buffer.
  constexpr int per_producer = 2000;
  chan<int> ch(3);
  std::atomic<long long> sum{0};
  std::atomic<int> count{0};
  std::vector<std::thread> consumers;
  for (int c = 0; c < 4; ++c) {
    consumers.emplace_back([ch, &sum, &count]() mutable {
      for (int v : ch) {
        sum.fetch_add(v);
        count.fetch_add(1);
      }
    });
  }
  std::vector<std::thread> producers;
  for (int p = 0; p < 4; ++p) {
    producers.emplace_back([ch, p]() mutable {
      for (int i = 0; i < per_producer; ++i) ch.send(p * per_producer + i);
    });
  }
  for (auto& t : producers) t.join();
  ch.close();
  for (auto& t : consumers) t.join();
  const long long n = 4LL * per_producer;
  EXPECT_EQ(count.load(), n);
  EXPECT_EQ(sum.load(), n * (n - 1) / 2);
}

// ---- concurrency, once per worker count --------------------------------------------------

class ChanTest : public goro_test::workers_test {};

TEST_P(ChanTest, RecvOnEmptyChannelBlocksUntilASend) {
  goro::runtime rt{opts()};
  for (int cap = 0; cap <= 20; ++cap) {
    SCOPED_TRACE(cap);
    chan<int> ch(cap);
    chan<int> got(1);
    EXPECT_EQ(ch.try_recv().status, chan_status::empty);
    rt.go([ch, got]() mutable { got.send(ch.recv().value_or(-1)); });
    // Proves the fiber's receive blocks: had it completed, `got` would hold its value.
    EXPECT_EQ(got.recv_for(blocked_for).status, chan_status::timeout);
    ch.send(cap + 100);
    EXPECT_EQ(got.recv(), std::optional<int>(cap + 100));
  }
}

TEST_P(ChanTest, SendOnFullChannelBlocksUntilARecv) {
  goro::runtime rt{opts()};
  for (int cap = 0; cap <= 20; ++cap) {
    SCOPED_TRACE(cap);
    chan<int> ch(cap);
    chan<int> sent(1);
    for (int i = 0; i < cap; ++i) ch.send(i);
    EXPECT_EQ(ch.try_send(-1), chan_status::full);
    rt.go([ch, sent, cap]() mutable {
      ch.send(cap);
      sent.send(1);
    });
    // Proves the fiber's send blocks: had it completed, `sent` would hold a value.
    EXPECT_EQ(sent.recv_for(blocked_for).status, chan_status::timeout);
    EXPECT_EQ(ch.size(), static_cast<std::size_t>(cap));
    EXPECT_EQ(ch.recv(), std::optional<int>(0));  // the oldest: FIFO even with a sender queued
    EXPECT_EQ(sent.recv(), std::optional<int>(1));
    for (int i = 1; i <= cap; ++i) EXPECT_EQ(ch.recv(), std::optional<int>(i));
    EXPECT_EQ(ch.try_recv().status, chan_status::empty);
  }
}

TEST_P(ChanTest, CloseUnblocksEveryReceiver) {
  goro::runtime rt{opts()};
  for (int cap = 0; cap <= 20; ++cap) {
    SCOPED_TRACE(cap);
    chan<int> ch(cap);
    chan<int> results(8);
    for (int i = 0; i < 8; ++i) {
      rt.go([ch, results]() mutable {
        const auto v = ch.recv();
        results.send(v.has_value() ? 1 : 0);
      });
    }
    // Proves the receivers block: had one returned, `results` would hold its value.
    EXPECT_EQ(results.recv_for(blocked_for).status, chan_status::timeout);
    ch.close();
    for (int i = 0; i < 8; ++i) EXPECT_EQ(results.recv(), std::optional<int>(0));
  }
}

TEST_P(ChanTest, CloseMakesBlockedSendersThrow) {
  goro::runtime rt{opts()};
  for (int cap = 0; cap <= 20; ++cap) {
    SCOPED_TRACE(cap);
    chan<int> ch(cap);
    for (int i = 0; i < cap; ++i) ch.send(i);
    std::atomic<int> threw{0};
    goro::wait_group wg;
    wg.add(4);
    for (int s = 0; s < 4; ++s) {
      rt.go([ch, &threw, &wg]() mutable {
        try {
          ch.send(-1);
        } catch (const goro::closed_channel_error&) {
          threw.fetch_add(1);
        }
        wg.done();
      });
    }
    ch.close();
    wg.wait();
    EXPECT_EQ(threw.load(), 4);
    for (int i = 0; i < cap; ++i) EXPECT_EQ(ch.recv(), std::optional<int>(i));
    EXPECT_EQ(ch.recv(), std::nullopt) << "a value whose send threw was received";
  }
}

TEST_P(ChanTest, FifoAcrossFibers) {
  goro::runtime rt{opts()};
  for (int cap = 0; cap <= 20; ++cap) {
    SCOPED_TRACE(cap);
    chan<int> ch(cap);
    rt.go([ch]() mutable {
      for (int i = 0; i < 200; ++i) ch.send(i);
    });
    std::atomic<int> bad{0};
    run_fibers(rt, 1, [&](std::size_t) {
      for (int i = 0; i < 200; ++i) {
        if (i % 2 == 0) {
          if (ch.recv() != std::optional<int>(i)) bad.fetch_add(1);
        } else {
          const auto r = ch.recv(std::stop_token{});
          if (r.status != chan_status::ok || r.value != std::optional<int>(i)) bad.fetch_add(1);
        }
      }
    });
    EXPECT_EQ(bad.load(), 0);
  }
}

// Four producers, four consumers, every item exactly once.
TEST_P(ChanTest, FourProducersFourConsumers) {
  goro::runtime rt{opts()};
  const int per_producer = static_cast<int>(scaled(5000));
  const int total = 4 * per_producer;
  for (int cap : {0, 1, 5, 64}) {
    SCOPED_TRACE(cap);
    chan<int> ch(cap);
    std::vector<std::atomic<int>> seen(static_cast<std::size_t>(total));
    std::atomic<long long> sum{0};
    std::atomic<int> count{0};
    goro::wait_group producers;
    producers.add(4);
    goro::wait_group consumers;
    consumers.add(4);
    for (int p = 0; p < 4; ++p) {
      rt.go([ch, p, per_producer, &producers]() mutable {
        for (int i = 0; i < per_producer; ++i) ch.send(p * per_producer + i);
        producers.done();
      });
      rt.go([ch, &seen, &sum, &count, &consumers]() mutable {
        while (auto v = ch.recv()) {
          seen[static_cast<std::size_t>(*v)].fetch_add(1, std::memory_order_relaxed);
          sum.fetch_add(*v, std::memory_order_relaxed);
          count.fetch_add(1, std::memory_order_relaxed);
        }
        consumers.done();
      });
    }
    producers.wait();
    ch.close();
    consumers.wait();
    EXPECT_EQ(count.load(), total);
    EXPECT_EQ(sum.load(), static_cast<long long>(total) * (total - 1) / 2);
    int wrong = 0;
    for (auto& s : seen) wrong += s.load() != 1 ? 1 : 0;
    EXPECT_EQ(wrong, 0) << "items not received exactly once";
  }
}

// Go's TestMultiConsumer: 23 workers ranging over a work channel, forwarding to a result
// channel that a single consumer ranges over.
TEST_P(ChanTest, TwentyThreeRangeLoopConsumers) {
  constexpr int workers = 23;
  const int iterations = static_cast<int>(scaled(27183));
  goro::runtime rt{opts()};
  chan<int> work(workers * 3);
  chan<int> results(workers * 3);
  goro::wait_group workers_done;
  workers_done.add(workers);
  for (int w = 0; w < workers; ++w) {
    rt.go([work, results, w, &workers_done]() mutable {
      for (int v : work) {
        if (v == primes[w % 10]) goro::this_fiber::yield();  // disturb the FIFO-ish order
        results.send(v);
      }
      workers_done.done();
    });
  }
  std::atomic<long long> expect{0};
  rt.go([work, results, iterations, &expect, &workers_done]() mutable {
    long long e = 0;
    for (int i = 0; i < iterations; ++i) {
      const int v = primes[i % 10];
      e += v;
      work.send(v);
    }
    expect.store(e);
    work.close();
    workers_done.wait();
    results.close();
  });
  long long n = 0;
  long long s = 0;
  run_fibers(rt, 1, [&](std::size_t) {
    for (int v : results) {
      ++n;
      s += v;
    }
  });
  EXPECT_EQ(n, iterations);
  EXPECT_EQ(s, expect.load());
}

// Senders race a close: every send either delivered its value (received before the close or
// drained after it) or threw closed_channel_error, and a value whose send threw is never seen.
TEST_P(ChanTest, CloseRacesWithSenders) {
  goro::runtime rt{opts()};
  constexpr int senders = 8;
  constexpr int per_sender = 200;
  const int rounds = static_cast<int>(scaled(10));
  for (int cap : {0, 1, 4}) {
    for (int round = 0; round < rounds; ++round) {
      SCOPED_TRACE(testing::Message() << "cap " << cap << " round " << round);
      chan<int> ch(cap);
      std::vector<std::vector<int>> delivered(senders);
      std::vector<std::vector<int>> thrown(senders);
      std::vector<int> received;
      const int stop_after = (round * 97) % (senders * per_sender / 2);
      goro::wait_group wg;
      wg.add(senders + 1);
      for (int s = 0; s < senders; ++s) {
        rt.go([ch, s, &delivered, &thrown, &wg]() mutable {
          for (int i = 0; i < per_sender; ++i) {
            const int v = s * per_sender + i;
            try {
              ch.send(v);
              delivered[static_cast<std::size_t>(s)].push_back(v);
            } catch (const goro::closed_channel_error&) {
              thrown[static_cast<std::size_t>(s)].push_back(v);
              break;
            }
          }
          wg.done();
        });
      }
      rt.go([ch, stop_after, &received, &wg]() mutable {
        for (int i = 0; i < stop_after; ++i) received.push_back(*ch.recv());
        ch.close();
        wg.done();
      });
      wg.wait();
      for (int v : ch) received.push_back(v);  // drain what was buffered before the close
      std::vector<int> sent;
      for (int s = 0; s < senders; ++s) {
        const auto& d = delivered[static_cast<std::size_t>(s)];
        const auto& t = thrown[static_cast<std::size_t>(s)];
        sent.insert(sent.end(), d.begin(), d.end());
        EXPECT_TRUE(t.size() == 1 || (t.empty() && d.size() == std::size_t{per_sender}))
            << "sender " << s << " neither finished nor threw once";
      }
      std::sort(sent.begin(), sent.end());
      std::sort(received.begin(), received.end());
      EXPECT_EQ(received, sent);
    }
  }
}

// Receivers race a close after the last send: together they get every value exactly once, and
// then each sees std::nullopt.
TEST_P(ChanTest, CloseRacesWithReceivers) {
  goro::runtime rt{opts()};
  constexpr int receivers = 8;
  const int n = static_cast<int>(scaled(4000));
  for (int cap : {0, 1, 16}) {
    SCOPED_TRACE(cap);
    chan<int> ch(cap);
    std::atomic<long long> sum{0};
    std::atomic<int> count{0};
    std::atomic<int> saw_close{0};
    goro::wait_group wg;
    wg.add(receivers);
    for (int r = 0; r < receivers; ++r) {
      rt.go([ch, &sum, &count, &saw_close, &wg]() mutable {
        for (;;) {
          const auto v = ch.recv();
          if (!v) break;
          sum.fetch_add(*v);
          count.fetch_add(1);
        }
        saw_close.fetch_add(1);
        wg.done();
      });
    }
    rt.go([ch, n]() mutable {
      for (int i = 1; i <= n; ++i) ch.send(i);
      ch.close();
    });
    wg.wait();
    EXPECT_EQ(count.load(), n);
    EXPECT_EQ(sum.load(), static_cast<long long>(n) * (n + 1) / 2);
    EXPECT_EQ(saw_close.load(), receivers);
  }
}

TEST_P(ChanTest, ConcurrentClosesExactlyOneSucceeds) {
  goro::runtime rt{opts()};
  for (int round = 0; round < 50; ++round) {
    chan<int> ch(round % 3);
    std::atomic<int> ok{0};
    std::atomic<int> threw{0};
    run_fibers(rt, 4, [&](std::size_t) {
      try {
        ch.close();
        ok.fetch_add(1);
      } catch (const goro::closed_channel_error&) {
        threw.fetch_add(1);
      }
    });
    EXPECT_EQ(ok.load(), 1);
    EXPECT_EQ(threw.load(), 3);
  }
}

TEST_P(ChanTest, NilChannelBlocksFibers) {
  goro::runtime rt{opts()};
  chan<int> nil{nullptr};
  std::atomic<int> failures{0};
  std::stop_source ss;
  goro::wait_group blocked;
  blocked.add(2);
  // Two fibers block on the nil channel until cancelled.
  rt.go([nil, &ss, &failures, &blocked]() mutable {
    if (nil.recv(ss.get_token()).status != chan_status::cancelled) failures.fetch_add(1);
    blocked.done();
  });
  rt.go([nil, &ss, &failures, &blocked]() mutable {
    if (nil.send(1, ss.get_token()) != chan_status::cancelled) failures.fetch_add(1);
    blocked.done();
  });
  run_fibers(rt, 4, [&](std::size_t i) {
    switch (i) {
      case 0:
        if (nil.recv_for(5ms).status != chan_status::timeout) failures.fetch_add(1);
        break;
      case 1:
        if (nil.send_for(1, 5ms) != chan_status::timeout) failures.fetch_add(1);
        break;
      case 2:
        if (nil.try_recv().status != chan_status::empty) failures.fetch_add(1);
        if (nil.try_send(1) != chan_status::full) failures.fetch_add(1);
        break;
      default:
        try {
          nil.close();
          failures.fetch_add(1);
        } catch (const goro::closed_channel_error&) {
        }
    }
  });
  // Proves the first two fibers are still blocked after the others are done.
  EXPECT_EQ(blocked.count(), 2);
  run_fibers(rt, 1, [&](std::size_t) { ss.request_stop(); });
  blocked.wait();
  EXPECT_EQ(failures.load(), 0);
}

TEST_P(ChanTest, MoveOnlyPayloadAcrossFibers) {
  goro::runtime rt{opts()};
  const int n = static_cast<int>(scaled(2000));
  for (int cap : {0, 3}) {
    SCOPED_TRACE(cap);
    chan<std::unique_ptr<int>> ch(cap);
    rt.go([ch, n]() mutable {
      for (int i = 0; i < n; ++i) ch.send(std::make_unique<int>(i));
      ch.close();
    });
    int next = 0;
    int bad = 0;
    run_fibers(rt, 1, [&](std::size_t) {
      for (auto&& p : ch) {
        if (p == nullptr || *p != next) ++bad;
        ++next;
      }
    });
    EXPECT_EQ(next, n);
    EXPECT_EQ(bad, 0);
  }
}

TEST_P(ChanTest, NonDefaultConstructiblePayloadAcrossFibers) {
  goro::runtime rt{opts()};
  ASSERT_EQ(counted::live.load(), 0);
  for (int cap : {0, 2}) {
    chan<counted> ch(cap);
    chan<no_default> back(cap);
    rt.go([ch, back]() mutable {
      while (auto c = ch.recv()) back.send(no_default(c->v * 2, std::to_string(c->v)));
      back.close();
    });
    int bad = 0;
    run_fibers(rt, 1, [&](std::size_t) {
      for (int i = 0; i < 100; ++i) {
        ch.send(counted(i));
        const auto r = back.recv();
        if (!r || r->v != 2 * i || r->text != std::to_string(i)) ++bad;
      }
      ch.close();
      if (back.recv().has_value()) ++bad;
    });
    EXPECT_EQ(bad, 0);
  }
  EXPECT_EQ(counted::live.load(), 0);
}

TEST_P(ChanTest, ThreadSendersFiberReceivers) {
  goro::runtime rt{opts()};
  const int per_thread = static_cast<int>(scaled(2000));
  for (int cap : {0, 4}) {
    SCOPED_TRACE(cap);
    chan<int> ch(cap);
    std::atomic<long long> sum{0};
    std::atomic<int> count{0};
    goro::wait_group receivers;
    receivers.add(4);
    for (int r = 0; r < 4; ++r) {
      rt.go([ch, &sum, &count, &receivers]() mutable {
        for (int v : ch) {
          sum.fetch_add(v);
          count.fetch_add(1);
        }
        receivers.done();
      });
    }
    std::vector<std::thread> threads;
    for (int t = 0; t < 3; ++t) {
      threads.emplace_back([ch, t, per_thread]() mutable {
        for (int i = 0; i < per_thread; ++i) ch.send(t * per_thread + i);
      });
    }
    for (auto& t : threads) t.join();
    ch.close();
    receivers.wait();
    const long long n = 3LL * per_thread;
    EXPECT_EQ(count.load(), n);
    EXPECT_EQ(sum.load(), n * (n - 1) / 2);
  }
}

TEST_P(ChanTest, FiberSendersThreadReceivers) {
  goro::runtime rt{opts()};
  const int per_fiber = static_cast<int>(scaled(2000));
  for (int cap : {0, 4}) {
    SCOPED_TRACE(cap);
    chan<int> ch(cap);
    std::atomic<long long> sum{0};
    std::atomic<int> count{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < 3; ++t) {
      threads.emplace_back([ch, &sum, &count]() mutable {
        while (auto v = ch.recv()) {
          sum.fetch_add(*v);
          count.fetch_add(1);
        }
      });
    }
    goro::wait_group senders;
    senders.add(4);
    for (int f = 0; f < 4; ++f) {
      rt.go([ch, f, per_fiber, &senders]() mutable {
        for (int i = 0; i < per_fiber; ++i) ch.send(f * per_fiber + i);
        senders.done();
      });
    }
    senders.wait();
    ch.close();
    for (auto& t : threads) t.join();
    const long long n = 4LL * per_fiber;
    EXPECT_EQ(count.load(), n);
    EXPECT_EQ(sum.load(), n * (n - 1) / 2);
  }
}

TEST_P(ChanTest, TimeoutsInFibers) {
  using clock = std::chrono::steady_clock;
  goro::runtime rt{opts()};
  std::atomic<int> failures{0};
  auto check = [&failures](bool ok) {
    if (!ok) failures.fetch_add(1);
  };
  run_fibers(rt, 4, [&](std::size_t i) {
    chan<int> ch(i % 2);         // nobody else uses it
    if (i % 2 == 1) ch.send(0);  // full
    auto start = clock::now();
    check(ch.send_for(1, 10ms) == chan_status::timeout);
    check(clock::now() - start >= 10ms);
    if (i % 2 == 1) check(ch.recv() == std::optional<int>(0));
    check(ch.try_recv().status == chan_status::empty);  // the timed-out send left nothing
    start = clock::now();
    check(ch.recv_for(10ms).status == chan_status::timeout);
    check(clock::now() - start >= 10ms);
    const auto deadline = clock::now() + 5ms;
    check(ch.recv_until(deadline).status == chan_status::timeout);
    check(clock::now() >= deadline);
    check(ch.recv_until(deadline).status == chan_status::timeout);  // already past
  });
  EXPECT_EQ(failures.load(), 0);

  // A timed operation that a partner completes in time succeeds, and delivers exactly once.
  for (int cap : {0, 1}) {
    chan<int> ch(cap);
    chan<int> got(1);
    rt.go([ch, got]() mutable {
      const auto r = ch.recv_for(10s);
      got.send(r.status == chan_status::ok ? *r.value : -1);
    });
    run_fibers(rt, 1, [&](std::size_t) { check(ch.send_for(42, 10s) == chan_status::ok); });
    EXPECT_EQ(got.recv(), std::optional<int>(42));
    EXPECT_EQ(ch.try_recv().status, chan_status::empty);
  }
  EXPECT_EQ(failures.load(), 0);
}

TEST_P(ChanTest, RecvCancelledFromAnotherFiberOrThread) {
  goro::runtime rt{opts()};
  for (bool from_thread : {false, true}) {
    SCOPED_TRACE(from_thread ? "from a thread" : "from a fiber");
    chan<int> ch;
    chan<chan_status> result(1);
    std::stop_source ss;
    rt.go([ch, result, token = ss.get_token()]() mutable {
      const auto r = ch.recv(token);
      result.send(r.value.has_value() ? chan_status::ok : r.status);
    });
    // Proves the receive blocks: had it returned, `result` would hold its status.
    EXPECT_EQ(result.recv_for(blocked_for).status, chan_status::timeout);
    if (from_thread) {
      std::thread([&ss] { ss.request_stop(); }).join();
    } else {
      rt.go([ss]() mutable { ss.request_stop(); });
    }
    EXPECT_EQ(result.recv(), std::optional<chan_status>(chan_status::cancelled));
    EXPECT_EQ(ch.try_send(1), chan_status::full) << "a cancelled receiver is still queued";
  }
}

TEST_P(ChanTest, SendCancelledFromAnotherFiberOrThread) {
  goro::runtime rt{opts()};
  for (int cap : {0, 1}) {
    for (bool from_thread : {false, true}) {
      SCOPED_TRACE(testing::Message() << "cap " << cap << (from_thread ? " thread" : " fiber"));
      chan<int> ch(cap);
      if (cap == 1) ch.send(0);
      chan<chan_status> result(1);
      std::stop_source ss;
      rt.go([ch, result, token = ss.get_token()]() mutable { result.send(ch.send(1, token)); });
      // Proves the send blocks: had it returned, `result` would hold its status.
      EXPECT_EQ(result.recv_for(blocked_for).status, chan_status::timeout);
      if (from_thread) {
        std::thread([&ss] { ss.request_stop(); }).join();
      } else {
        rt.go([ss]() mutable { ss.request_stop(); });
      }
      EXPECT_EQ(result.recv(), std::optional<chan_status>(chan_status::cancelled));
      if (cap == 1) {
        EXPECT_EQ(ch.recv(), std::optional<int>(0));
      }
      EXPECT_EQ(ch.try_recv().status, chan_status::empty) << "a cancelled send delivered";
    }
  }
}

// A thousand receivers block (fewer under TSan: fiber_count); a sender streams as many values
// while the receivers are cancelled part-way. Every value a send completed is either received or
// still in the channel.
TEST_P(ChanTest, CancelledReceiversLoseNothing) {
  constexpr int receivers = static_cast<int>(goro_test::fiber_count(1000));
  constexpr int values = receivers;
  goro::runtime rt{opts()};
  for (int cap : {0, 8}) {
    for (bool from_thread : {false, true}) {
      SCOPED_TRACE(testing::Message() << "cap " << cap << (from_thread ? " thread" : " fiber"));
      chan<int> ch(cap);
      chan<int> halfway(1);
      std::stop_source recv_stop;
      std::stop_source send_stop;
      std::vector<std::atomic<int>> got(values);
      std::atomic<int> received{0};
      std::atomic<int> cancelled{0};
      goro::wait_group receivers_done;
      receivers_done.add(receivers);
      for (int r = 0; r < receivers; ++r) {
        rt.go([ch, token = recv_stop.get_token(), &got, &received, &cancelled,
               &receivers_done]() mutable {
          const auto res = ch.recv(token);
          if (res.status == chan_status::ok) {
            got[static_cast<std::size_t>(*res.value)].fetch_add(1);
            received.fetch_add(1);
          } else if (res.status == chan_status::cancelled) {
            cancelled.fetch_add(1);
          }
          receivers_done.done();
        });
      }
      std::vector<int> sent;
      goro::wait_group sender_done;
      sender_done.add(1);
      rt.go([ch, halfway, token = send_stop.get_token(), &sent, &sender_done]() mutable {
        for (int v = 0; v < values; ++v) {
          const chan_status st = ch.send(v, token);
          if (st == chan_status::cancelled) break;
          sent.push_back(v);
          if (v == values / 2) (void)halfway.try_send(v);
          if (v % 8 == 0) goro::this_fiber::yield();  // let the cancellation in mid-stream
        }
        sender_done.done();
      });
      // The canceller always gets its signal: the sender passes the halfway mark before any
      // receiver can be cancelled, and it is not itself cancelled until they are all done.
      goro::wait_group canceller_done;
      canceller_done.add(1);
      auto cancel = [halfway, &recv_stop, &canceller_done]() mutable {
        (void)halfway.recv();
        recv_stop.request_stop();
        canceller_done.done();
      };
      std::thread canceller_thread;
      if (from_thread) {
        canceller_thread = std::thread(cancel);
      } else {
        rt.go(cancel);
      }
      receivers_done.wait();
      send_stop.request_stop();  // the sender may now be blocked with no receiver left
      sender_done.wait();
      canceller_done.wait();
      if (canceller_thread.joinable()) canceller_thread.join();
      int drained = 0;
      while (auto r = ch.try_recv()) {
        got[static_cast<std::size_t>(*r.value)].fetch_add(1);
        ++drained;
      }
      EXPECT_EQ(received.load() + cancelled.load(), receivers);
      EXPECT_EQ(received.load() + drained, static_cast<int>(sent.size()));
      int wrong = 0;
      std::vector<bool> was_sent(values, false);
      for (int v : sent) was_sent[static_cast<std::size_t>(v)] = true;
      for (int v = 0; v < values; ++v) {
        wrong += got[static_cast<std::size_t>(v)].load() !=
                 (was_sent[static_cast<std::size_t>(v)] ? 1 : 0);
      }
      EXPECT_EQ(wrong, 0) << "values lost, duplicated or conjured";
    }
  }
}

// A thousand senders block (fewer under TSan: fiber_count); receivers take some values while the
// senders are cancelled part-way. A value is received exactly when its send reported ok.
TEST_P(ChanTest, CancelledSendersDeliverNothing) {
  constexpr int senders = static_cast<int>(goro_test::fiber_count(1000));
  goro::runtime rt{opts()};
  for (int cap : {0, 8}) {
    for (bool from_thread : {false, true}) {
      SCOPED_TRACE(testing::Message() << "cap " << cap << (from_thread ? " thread" : " fiber"));
      chan<int> ch(cap);
      std::stop_source ss;
      std::vector<std::atomic<int>> status(senders);  // 1 ok, 2 cancelled
      goro::wait_group senders_done;
      senders_done.add(senders);
      for (int s = 0; s < senders; ++s) {
        rt.go([ch, s, token = ss.get_token(), &status, &senders_done]() mutable {
          const chan_status st = ch.send(s, token);
          status[static_cast<std::size_t>(s)].store(st == chan_status::ok          ? 1
                                                    : st == chan_status::cancelled ? 2
                                                                                   : 3);
          senders_done.done();
        });
      }
      // The receiver takes a quarter of the values, then has the senders cancelled while it
      // goes on receiving.
      std::vector<int> received;
      chan<int> cancel_now(1);
      goro::wait_group receiver_done;
      receiver_done.add(1);
      rt.go([ch, cancel_now, &received, &receiver_done]() mutable {
        for (int i = 0; i < senders / 4; ++i) received.push_back(*ch.recv());
        cancel_now.send(1);
        for (int i = 0;; ++i) {
          const auto r = ch.recv_for(2ms);
          if (!r) break;
          received.push_back(*r.value);
          if (i % 8 == 0) goro::this_fiber::yield();  // let the cancellation in mid-stream
        }
        receiver_done.done();
      });
      goro::wait_group canceller_done;
      canceller_done.add(1);
      std::thread canceller_thread;
      auto cancel = [cancel_now, &ss, &canceller_done]() mutable {
        (void)cancel_now.recv();
        ss.request_stop();
        canceller_done.done();
      };
      if (from_thread) {
        canceller_thread = std::thread(cancel);
      } else {
        rt.go(cancel);
      }
      receiver_done.wait();
      canceller_done.wait();
      if (canceller_thread.joinable()) canceller_thread.join();
      senders_done.wait();
      while (auto r = ch.try_recv()) received.push_back(*r.value);
      std::vector<int> ok_sent;
      int odd = 0;
      for (int s = 0; s < senders; ++s) {
        const int st = status[static_cast<std::size_t>(s)].load();
        if (st == 1) ok_sent.push_back(s);
        if (st == 3) ++odd;
      }
      EXPECT_EQ(odd, 0);
      std::sort(received.begin(), received.end());
      EXPECT_EQ(received, ok_sent);
    }
  }
}

// Memory ordering: plain writes made before a send are visible after the matching receive
// (ThreadSanitizer reports a race if the channel does not order them).
TEST_P(ChanTest, SendHappensBeforeTheMatchingRecv) {
  struct payload {
    int id;
    std::string text;
    int data[16];
  };
  goro::runtime rt{opts()};
  const int n = static_cast<int>(scaled(3000));
  for (int cap : {0, 1, 8}) {
    SCOPED_TRACE(cap);
    chan<payload*> ch(cap);
    std::vector<int> plain(static_cast<std::size_t>(n), 0);  // not atomic on purpose
    chan<int> indices(cap);
    rt.go([ch, indices, n, &plain]() mutable {
      for (int i = 0; i < n; ++i) {
        auto* p = new payload{i, std::to_string(i), {}};
        for (int k = 0; k < 16; ++k) p->data[k] = i + k;
        ch.send(p);
        plain[static_cast<std::size_t>(i)] = i * 3;
        indices.send(i);
      }
      ch.close();
      indices.close();
    });
    int bad = 0;
    run_fibers(rt, 1, [&](std::size_t) {
      for (payload* p : ch) {
        if (p->text != std::to_string(p->id)) ++bad;
        for (int k = 0; k < 16; ++k) bad += p->data[k] != p->id + k ? 1 : 0;
        delete p;
        const auto i = indices.recv();
        if (!i || plain[static_cast<std::size_t>(*i)] != *i * 3) ++bad;
      }
    });
    EXPECT_EQ(bad, 0);
  }
}

// Memory ordering: a close happens-before a receive that observes it.
TEST_P(ChanTest, CloseHappensBeforeTheReceiveThatObservesIt) {
  goro::runtime rt{opts()};
  for (int round = 0; round < 200; ++round) {
    chan<int> ch(round % 2);
    std::string note;  // not atomic on purpose
    int seen = 0;
    goro::wait_group wg;
    wg.add(2);
    rt.go([ch, &note, &seen, &wg]() mutable {
      if (!ch.recv().has_value() && note == "closed") seen = 1;
      wg.done();
    });
    rt.go([ch, &note, &wg]() mutable {
      note = "closed";
      ch.close();
      wg.done();
    });
    wg.wait();
    ASSERT_EQ(seen, 1);
  }
}

INSTANTIATE_TEST_SUITE_P(Workers, ChanTest, goro_test::worker_counts(),
                         goro_test::worker_count_name);

}  // namespace
