// SPDX-License-Identifier: Apache-2.0
// Tests of buffered channels in ring mode (docs/channels.md, "The ring"): every buffered channel
// of this binary keeps its values in the lock-free ring, on every worker count (GORO_CHAN_RING=2,
// set before the first channel is made, unless the environment already says otherwise). Per-sender
// FIFO across workers, close racing senders and receivers with every value accounted for, len
// and cap, select over ring, unbuffered and timer channels with no lost wake-up, non-trivial
// element types, blocked senders' order, and a partner's last touch of a channel its owner
// drops at once. Sized by GORO_STRESS_SCALE.
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "goro/goro.hpp"
#include "test_support.hpp"

namespace {

using namespace std::chrono_literals;
using goro::chan;
using goro::chan_status;
using goro_test::scaled;

// Read once, at the first channel made: every channel of this binary takes the ring.
const bool ring_forced = [] {
  ::setenv("GORO_CHAN_RING", "2", 0);
  return true;
}();

class ChanRingTest : public goro_test::workers_test {};

// A value tagged with its sender and that sender's sequence number.
struct tagged {
  int sender;
  int seq;
};

// Many senders and receivers across workers: each receiver sees each sender's values in
// increasing order, and every value arrives exactly once.
TEST_P(ChanRingTest, FifoPerSenderAcrossWorkers) {
  ASSERT_TRUE(ring_forced);
  constexpr int senders = 6;
  constexpr int receivers = 6;
  const int per_sender = static_cast<int>(scaled(40000));
  goro::runtime rt{opts()};
  for (int cap : {1, 2, 7, 128}) {
    SCOPED_TRACE(cap);
    chan<tagged> ch(cap);
    std::vector<std::atomic<int>> received(senders);
    std::atomic<int> order_errors{0};
    goro::wait_group sent;
    goro::wait_group done;
    sent.add(senders);
    done.add(receivers);
    for (int s = 0; s < senders; ++s) {
      rt.go([&, s] {
        for (int i = 0; i < per_sender; ++i) ch.send(tagged{s, i});
        sent.done();
      });
    }
    for (int r = 0; r < receivers; ++r) {
      rt.go([&] {
        std::vector<int> last(senders, -1);
        for (tagged v : ch) {
          if (v.seq <= last[v.sender]) order_errors.fetch_add(1);
          last[v.sender] = v.seq;
          received[v.sender].fetch_add(1);
        }
        done.done();
      });
    }
    sent.wait();
    ch.close();
    done.wait();
    EXPECT_EQ(order_errors.load(), 0);
    for (int s = 0; s < senders; ++s) EXPECT_EQ(received[s].load(), per_sender) << s;
  }
}

// close() races senders and receivers: every send that returned was received exactly once, no
// value of a send that threw was received, and sends after the close throw.
TEST_P(ChanRingTest, CloseRacingSendersAndReceiversLosesNothing) {
  constexpr int senders = 4;
  constexpr int receivers = 4;
  const int rounds = static_cast<int>(scaled(200));
  const int per_sender = 2000;
  goro::runtime rt{opts()};
  for (int round = 0; round < rounds; ++round) {
    const int cap = 1 + round % 9;
    chan<int> ch(cap);
    const std::size_t total = static_cast<std::size_t>(senders) * per_sender;
    std::vector<std::atomic<std::uint8_t>> delivered(total);  // 1: send returned
    std::vector<std::atomic<std::uint8_t>> seen(total);
    std::atomic<int> duplicates{0};
    goro::wait_group done;
    done.add(senders + receivers);
    for (int s = 0; s < senders; ++s) {
      rt.go([&, s] {
        for (int i = 0; i < per_sender; ++i) {
          const int v = s * per_sender + i;
          try {
            ch.send(v);
            delivered[static_cast<std::size_t>(v)].store(1);
          } catch (const goro::closed_channel_error&) {
            break;
          }
        }
        done.done();
      });
    }
    for (int r = 0; r < receivers; ++r) {
      rt.go([&] {
        while (std::optional<int> v = ch.recv()) {
          if (seen[static_cast<std::size_t>(*v)].exchange(1) != 0) duplicates.fetch_add(1);
        }
        done.done();
      });
    }
    rt.go([&, round] {
      for (int i = 0; i < round % 50; ++i) goro::this_fiber::yield();
      ch.close();
    });
    done.wait();
    EXPECT_THROW(ch.send(1), goro::closed_channel_error);
    EXPECT_EQ(ch.try_send(1), chan_status::closed);
    EXPECT_EQ(ch.size(), 0U);
    EXPECT_EQ(duplicates.load(), 0);
    for (std::size_t v = 0; v < total; ++v) {
      // Received exactly when its send returned (a send that threw delivered nothing).
      ASSERT_EQ(seen[v].load(), delivered[v].load()) << "value " << v << " round " << round;
    }
  }
}

TEST_P(ChanRingTest, SizeAndCapacity) {
  goro::runtime rt{opts()};
  chan<int> ch(3);
  EXPECT_EQ(ch.capacity(), 3U);
  EXPECT_EQ(ch.size(), 0U);
  ch.send(1);
  ch.send(2);
  EXPECT_EQ(ch.size(), 2U);
  ch.send(3);
  EXPECT_EQ(ch.size(), 3U);
  EXPECT_EQ(ch.try_send(4), chan_status::full);
  EXPECT_EQ(ch.recv(), 1);
  EXPECT_EQ(ch.size(), 2U);
  // Around the ring's end, several laps.
  for (int i = 0; i < 20; ++i) {
    ch.send(10 + i);
    EXPECT_EQ(ch.size(), 3U);
    EXPECT_EQ(ch.recv(), i == 0 ? 2 : i == 1 ? 3 : 10 + i - 2);
    EXPECT_EQ(ch.size(), 2U);
  }
  ch.close();
  EXPECT_EQ(ch.size(), 2U);
  EXPECT_EQ(ch.recv(), 28);
  EXPECT_EQ(ch.recv(), 29);
  EXPECT_EQ(ch.recv(), std::nullopt);
  EXPECT_EQ(ch.size(), 0U);
  EXPECT_EQ(ch.capacity(), 3U);
}

// cap 1 full with a, a sender of b blocks: the receiver gets a, then b (and then c, sent after
// b's sender had blocked).
TEST_P(ChanRingTest, BlockedSenderKeepsItsPlace) {
  goro::runtime rt{opts()};
  chan<std::string> ch(1);
  ch.send("a");
  goro::wait_group blocked;
  blocked.add(1);
  std::atomic<bool> b_sent{false};
  rt.go([&] {
    blocked.done();
    ch.send("b");
    b_sent = true;
  });
  blocked.wait();
  // Proves only that the sender of b has had time to block (it may not have, which the test
  // tolerates: the order checked holds either way).
  std::this_thread::sleep_for(20ms);
  EXPECT_EQ(ch.recv(), "a");
  EXPECT_EQ(ch.recv(), "b");
  while (!b_sent) std::this_thread::sleep_for(1ms);  // b's send returns after its receive
  ch.send("c");
  EXPECT_EQ(ch.recv(), "c");
}

// Non-trivial element types in the ring: strings long enough to allocate, and move-only
// pointers; what is left buffered when the channel goes is destroyed (ASan checks no leak).
TEST_P(ChanRingTest, NonTrivialElements) {
  goro::runtime rt{opts()};
  const int n = static_cast<int>(scaled(20000));
  {
    chan<std::string> ch(16);
    goro::wait_group done;
    done.add(2);
    std::atomic<long> total{0};
    rt.go([&] {
      for (int i = 0; i < n; ++i) ch.send(std::string(40, 'x') + std::to_string(i));
      ch.close();
      done.done();
    });
    rt.go([&] {
      for (const std::string& s : ch) total += static_cast<long>(s.size());
      done.done();
    });
    done.wait();
    EXPECT_GT(total.load(), 40L * n);
  }
  {
    chan<std::unique_ptr<int>> ch(8);
    goro::wait_group done;
    done.add(2);
    std::atomic<long> sum{0};
    rt.go([&] {
      for (int i = 0; i < n; ++i) ch.send(std::make_unique<int>(i));
      ch.close();
      done.done();
    });
    rt.go([&] {
      for (std::unique_ptr<int> p : ch) sum += *p;
      done.done();
    });
    done.wait();
    EXPECT_EQ(sum.load(), static_cast<long>(n) * (n - 1) / 2);
  }
  {
    // Left buffered at destruction.
    chan<std::unique_ptr<std::string>> ch(4);
    ch.send(std::make_unique<std::string>(100, 'y'));
    ch.send(std::make_unique<std::string>(100, 'z'));
    auto p = std::make_unique<std::string>("kept");
    ch.send(std::move(p));
    ch.send(std::make_unique<std::string>("fourth"));
    auto q = std::make_unique<std::string>("unsent");
    EXPECT_EQ(ch.try_send(std::move(q)), chan_status::full);
    ASSERT_NE(q, nullptr);  // a send that does not happen keeps its value
    EXPECT_EQ(*q, "unsent");
  }
}

// Select receivers over ring channels and an unbuffered one (half of them with a timeout case
// too) against plain senders: every value is received. A lost wake-up would leave a value in a
// ring with the receivers without a timeout parked: the test then hangs until its TIMEOUT.
TEST_P(ChanRingTest, SelectReceiversAgainstPlainSenders) {
  constexpr int senders = 4;
  constexpr int receivers = 4;
  const int per_sender = static_cast<int>(scaled(20000));
  const long total = static_cast<long>(senders) * per_sender;
  goro::runtime rt{opts()};
  chan<int> a(1);
  chan<int> b(4);
  chan<int> u;     // unbuffered
  chan<int> quit;  // closed once every value has arrived
  std::atomic<long> count{0};
  std::atomic<long> sum{0};
  goro::wait_group done;
  done.add(receivers);
  for (int s = 0; s < senders; ++s) {
    rt.go([&, s] {
      const chan<int>& target = s % 3 == 0 ? a : s % 3 == 1 ? b : u;
      for (int i = 0; i < per_sender; ++i) target.send(i);
    });
  }
  for (int r = 0; r < receivers; ++r) {
    rt.go([&, r] {
      bool stop = false;
      auto got = [&](std::optional<int> v) {
        if (v) {
          count.fetch_add(1);
          sum.fetch_add(*v);
        }
      };
      while (!stop) {
        if (r % 2 == 0) {
          goro::select(goro::on_recv(a, got), goro::on_recv(b, got), goro::on_recv(u, got),
                       goro::on_recv(quit, [&] { stop = true; }));
        } else {
          goro::select(goro::on_recv(a, got), goro::on_recv(b, got), goro::on_recv(u, got),
                       goro::on_recv(quit, [&] { stop = true; }), goro::on_recv(goro::after(1ms)));
        }
      }
      done.done();
    });
  }
  while (count.load() < total) std::this_thread::sleep_for(1ms);
  quit.close();
  done.wait();
  EXPECT_EQ(count.load(), total);
  EXPECT_EQ(sum.load(), static_cast<long>(senders) * per_sender * (per_sender - 1) / 2);
}

// Select senders and receivers on one small ring channel, with a default now and then.
TEST_P(ChanRingTest, SelectSendersAndReceiversOnOneRing) {
  constexpr int pairs = 4;
  const int per_sender = static_cast<int>(scaled(20000));
  goro::runtime rt{opts()};
  chan<int> ch(2);
  chan<int> never(1);  // stays empty
  std::atomic<long> count{0};
  goro::wait_group sent;
  goro::wait_group done;
  sent.add(pairs);
  done.add(pairs);
  for (int s = 0; s < pairs; ++s) {
    rt.go([&] {
      for (int i = 0; i < per_sender;) {
        int v = i;
        if (goro::select(goro::on_send(ch, v), goro::on_recv(never)) == 0) ++i;
      }
      sent.done();
    });
    rt.go([&] {
      for (;;) {
        bool closed = false;
        goro::select(goro::on_recv(ch,
                                   [&](std::optional<int> v) {
                                     if (v) {
                                       count.fetch_add(1);
                                     } else {
                                       closed = true;
                                     }
                                   }),
                     goro::on_recv(never));
        if (closed) break;
      }
      done.done();
    });
  }
  sent.wait();
  ch.close();
  done.wait();
  EXPECT_EQ(count.load(), static_cast<long>(pairs) * per_sender);
}

// Timed and non-blocking operations against blocking ones (a completer may wake a timed waiter
// to retry): values conserved.
TEST_P(ChanRingTest, TimedAndTryOperationsConserveValues) {
  const int per_sender = static_cast<int>(scaled(20000));
  goro::runtime rt{opts()};
  chan<int> ch(2);
  std::atomic<long> sent_count{0};
  std::atomic<long> recv_count{0};
  goro::wait_group senders;
  goro::wait_group receivers;
  senders.add(4);
  receivers.add(4);
  for (int s = 0; s < 4; ++s) {
    rt.go([&, s] {
      for (int i = 0; i < per_sender; ++i) {
        chan_status st = chan_status::ok;
        if (s == 0) {
          st = ch.try_send(i);
        } else if (s == 1) {
          st = ch.send_for(i, 50us);
        } else {
          ch.send(i);
        }
        if (st == chan_status::ok) sent_count.fetch_add(1);
      }
      senders.done();
    });
  }
  for (int r = 0; r < 4; ++r) {
    rt.go([&, r] {
      for (;;) {
        goro::recv_result<int> v{std::nullopt, chan_status::ok};
        if (r == 0) {
          v = ch.try_recv();
        } else if (r == 1) {
          v = ch.recv_for(50us);
        } else {
          std::optional<int> x = ch.recv();
          v = {x, x ? chan_status::ok : chan_status::closed};
        }
        if (v) recv_count.fetch_add(1);
        if (v.status == chan_status::closed) break;
        if (!v) goro::this_fiber::yield();
      }
      receivers.done();
    });
  }
  senders.wait();
  ch.close();
  receivers.wait();
  EXPECT_EQ(recv_count.load(), sent_count.load());
}

// The party that sees an operation done may drop the channel at once (Go's "done" channel;
// docs/channels.md, "The ring", "Lifetime"), so its partner, which reaches the channel without a
// handle of its own, must not touch it after that moment. The owner spins on a lock-free try
// on one worker while the partner, on another, completes the operation by each path that
// publishes a value or frees a slot: a lock-free push, a push under the lock (a select), a
// lock-free pop (the owner's try_send then finds room), and a close. The owner then drops the
// channel at once: ASan or TSan reports any touch after that.
TEST_P(ChanRingTest, OwnerDropsTheChannelAsSoonAsItSeesTheOperationDone) {
  if (workers() < 2) GTEST_SKIP() << "the owner spins on its worker while its partner runs";
  enum class path { push, select_push, pop, close, count };
  const std::size_t rounds = scaled(8000);
  goro::runtime rt{opts()};
  chan<chan<int>*> handoff;  // unbuffered: the locked buffer
  goro::wait_group done;
  done.add(2);
  rt.go([&] {
    for (std::size_t i = 0; i < rounds; ++i) {
      chan<int>* const c = *handoff.recv();
      switch (static_cast<path>(i % static_cast<std::size_t>(path::count))) {
        case path::push: c->send(1); break;
        case path::select_push: goro::select(goro::on_send(*c, 1)); break;
        case path::pop: EXPECT_EQ(c->recv(), 0); break;
        case path::close: c->close(); break;
        case path::count: break;
      }
    }
    done.done();
  });
  rt.go([&] {
    for (std::size_t i = 0; i < rounds; ++i) {
      auto c = std::make_unique<chan<int>>(1);
      const auto how = static_cast<path>(i % static_cast<std::size_t>(path::count));
      if (how == path::pop) c->send(0);  // full: the partner's receive frees the slot
      handoff.send(c.get());
      // Spins without yielding: the partner runs on another worker, at the same moment.
      if (how == path::pop) {
        while (c->try_send(2) != chan_status::ok) {
        }
      } else if (how == path::close) {
        while (c->try_recv().status != chan_status::closed) {
        }
      } else {
        goro::recv_result<int> r = c->try_recv();
        while (!r) r = c->try_recv();
        EXPECT_EQ(r.value, 1);
      }
      c.reset();
    }
    done.done();
  });
  done.wait();
}

INSTANTIATE_TEST_SUITE_P(Workers, ChanRingTest, goro_test::worker_counts(),
                         goro_test::worker_count_name);

}  // namespace
