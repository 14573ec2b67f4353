// SPDX-License-Identifier: Apache-2.0
// Stress tests of goro::chan<T> (goro/chan.hpp): many fibers and a few plain threads sending
// and receiving through channels of several capacities, with close, timeouts and cancellation
// racing the transfers, and every item accounted for exactly once (bitmaps, counts and
// checksums). Sized by GORO_STRESS_SCALE (tests/test_support.hpp); each test also stops
// starting new work once its time budget is spent, so a slow sanitizer build stays bounded.
// Run once per worker count (1, 2, 4, 8).
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <random>
#include <stdexcept>
#include <stop_token>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "goro/goro.hpp"
#include "test_support.hpp"

namespace {

using namespace std::chrono_literals;
using clock_type = std::chrono::steady_clock;
using goro::chan;
using goro::chan_status;
using goro_test::scaled;

// Wall-clock budget of one test instance, after which it starts no new rounds.
constexpr auto time_budget = 20s;

class ChanStressTest : public goro_test::workers_test {
 protected:
  bool out_of_time() const { return clock_type::now() - start_ > time_budget; }

 private:
  clock_type::time_point start_ = clock_type::now();
};

// Producers and consumers, part fibers and part plain threads, over one channel: every item
// arrives exactly once.
TEST_P(ChanStressTest, ManyProducersManyConsumersExactlyOnce) {
  constexpr int fiber_producers = 6;
  constexpr int thread_producers = 2;
  constexpr int producers = fiber_producers + thread_producers;
  constexpr int fiber_consumers = 6;
  constexpr int thread_consumers = 2;
  const int per_producer = static_cast<int>(scaled(60000));
  goro::runtime rt{opts()};
  for (int cap : {0, 1, 3, 64}) {
    if (out_of_time()) break;
    SCOPED_TRACE(cap);
    chan<int> ch(cap);
    const std::size_t total = static_cast<std::size_t>(producers) * per_producer;
    std::vector<std::atomic<std::uint8_t>> seen(total);
    std::atomic<long long> sum{0};
    std::atomic<long long> count{0};
    auto produce = [ch, per_producer](int p) mutable {
      for (int i = 0; i < per_producer; ++i) ch.send(p * per_producer + i);
    };
    auto consume = [ch, &seen, &sum, &count]() mutable {
      long long s = 0;
      long long n = 0;
      for (int v : ch) {
        seen[static_cast<std::size_t>(v)].fetch_add(1, std::memory_order_relaxed);
        s += v;
        ++n;
      }
      sum.fetch_add(s);
      count.fetch_add(n);
    };
    goro::wait_group fiber_producers_done;
    fiber_producers_done.add(fiber_producers);
    goro::wait_group fiber_consumers_done;
    fiber_consumers_done.add(fiber_consumers);
    for (int p = 0; p < fiber_producers; ++p) {
      rt.go([produce, p, &fiber_producers_done]() mutable {
        produce(p);
        fiber_producers_done.done();
      });
    }
    for (int c = 0; c < fiber_consumers; ++c) {
      rt.go([consume, &fiber_consumers_done]() mutable {
        consume();
        fiber_consumers_done.done();
      });
    }
    std::vector<std::thread> threads;
    for (int p = fiber_producers; p < producers; ++p) {
      threads.emplace_back([produce, p]() mutable { produce(p); });
    }
    std::vector<std::thread> consumer_threads;
    for (int c = 0; c < thread_consumers; ++c) consumer_threads.emplace_back(consume);
    for (auto& t : threads) t.join();
    fiber_producers_done.wait();
    ch.close();
    for (auto& t : consumer_threads) t.join();
    fiber_consumers_done.wait();
    const auto n = static_cast<long long>(total);
    EXPECT_EQ(count.load(), n);
    EXPECT_EQ(sum.load(), n * (n - 1) / 2);
    std::size_t wrong = 0;
    for (auto& s : seen) wrong += s.load() != 1 ? 1 : 0;
    EXPECT_EQ(wrong, 0u) << "items not received exactly once";
  }
}

// On one worker a channel's lock is biased to that worker's thread (docs/channels.md, "The
// lock, biased to a lone worker"); a thread that joins in mid-stream revokes the bias while
// the fibers keep sending and receiving. Every round takes a fresh channel and lets the thread
// in at a different point. Nothing may be lost or received twice.
TEST_P(ChanStressTest, AThreadJoinsAFibersChannelMidStream) {
  const int rounds = static_cast<int>(scaled(300));
  constexpr int from_fiber = 2'000;
  constexpr int from_thread = 500;
  goro::runtime rt{opts()};
  for (int r = 0; r < rounds && !out_of_time(); ++r) {
    chan<int> ch(r % 3 == 0 ? 0 : 8);
    std::atomic<int> received{0};
    std::atomic<long long> sum{0};
    goro::wait_group done;
    done.add(2);
    rt.go([ch, &done]() mutable {
      for (int i = 0; i < from_fiber; ++i) ch.send(i);
      done.done();
    });
    rt.go([ch, &done, &received, &sum]() mutable {
      long long s = 0;
      for (int i = 0; i < from_fiber + from_thread; ++i) {
        s += *ch.recv();
        received.fetch_add(1, std::memory_order_relaxed);
      }
      sum.store(s);
      done.done();
    });
    const int join_at = (r * 37) % from_fiber;
    std::thread outsider([ch, &received, join_at]() mutable {
      while (received.load(std::memory_order_relaxed) < join_at) std::this_thread::yield();
      for (int i = 0; i < from_thread; ++i) ch.send(from_fiber + i);
    });
    outsider.join();
    done.wait();
    const long long n = from_fiber + from_thread;
    ASSERT_EQ(sum.load(), n * (n - 1) / 2) << "round " << r;
  }
}

// Rounds in which senders race a close at a random point: every send that returned was
// received exactly once (before the close or drained after it), and no value whose send threw
// was ever received.
TEST_P(ChanStressTest, CloseRacingSendersAndReceivers) {
  constexpr int senders = 6;
  constexpr int receivers = 3;
  constexpr int per_sender = 100;
  const int rounds = static_cast<int>(scaled(4000));
  goro::runtime rt{opts()};
  std::mt19937 rng(12345);
  for (int round = 0; round < rounds && !out_of_time(); ++round) {
    const int cap = static_cast<int>(rng() % 5);
    // Closed by the receiver that takes this many values: always reached, since the senders
    // keep sending until the close.
    const int close_after = 1 + static_cast<int>(rng() % (senders * per_sender - 1));
    const bool thread_sender = rng() % 4 == 0;
    chan<int> ch(cap);
    std::vector<std::uint8_t> delivered(senders * per_sender, 0);  // 1 sent, 2 threw
    std::vector<std::uint8_t> received(senders * per_sender, 0);
    std::atomic<int> taken{0};
    goro::wait_group wg;
    wg.add(senders + receivers);
    auto send_all = [ch, &delivered, &wg](int s) mutable {
      for (int i = 0; i < per_sender; ++i) {
        const int v = s * per_sender + i;
        try {
          ch.send(v);
          delivered[static_cast<std::size_t>(v)] = 1;
        } catch (const goro::closed_channel_error&) {
          delivered[static_cast<std::size_t>(v)] = 2;
          break;
        }
      }
      wg.done();
    };
    std::thread sender_thread;
    for (int s = 0; s < senders; ++s) {
      if (s == 0 && thread_sender) {
        sender_thread = std::thread(send_all, s);
      } else {
        rt.go(send_all, s);
      }
    }
    for (int r = 0; r < receivers; ++r) {
      rt.go([ch, close_after, &received, &taken, &wg]() mutable {
        while (auto v = ch.recv()) {
          received[static_cast<std::size_t>(*v)] += 1;  // each value is one sender's alone
          if (taken.fetch_add(1) + 1 == close_after) {
            try {
              ch.close();
            } catch (const goro::closed_channel_error&) {
            }
          }
        }
        wg.done();
      });
    }
    wg.wait();
    if (sender_thread.joinable()) sender_thread.join();
    std::size_t bad = 0;
    for (std::size_t v = 0; v < delivered.size(); ++v) {
      const bool sent = delivered[v] == 1;
      if (received[v] != (sent ? 1 : 0)) ++bad;
    }
    ASSERT_EQ(bad, 0u) << "round " << round << " cap " << cap << " close_after " << close_after;
  }
}

// Rounds in which senders and receivers use cancellable and timed operations and are cancelled
// at a random point: a value is received exactly when its send reported ok.
TEST_P(ChanStressTest, CancellationAndTimeoutsLoseNothing) {
  constexpr int senders = 8;
  constexpr int receivers = 8;
  constexpr int per_sender = 50;
  const int rounds = static_cast<int>(scaled(2000));
  goro::runtime rt{opts()};
  std::mt19937 rng(777);
  for (int round = 0; round < rounds && !out_of_time(); ++round) {
    const int cap = static_cast<int>(rng() % 4);
    const int cancel_after = static_cast<int>(rng() % (senders * per_sender / 2));
    chan<int> ch(cap);
    std::stop_source ss;
    std::vector<std::uint8_t> sent(senders * per_sender, 0);
    std::vector<std::atomic<std::uint8_t>> got(senders * per_sender);
    std::atomic<int> taken{0};
    goro::wait_group senders_done;
    senders_done.add(senders);
    goro::wait_group receivers_done;
    receivers_done.add(receivers);
    for (int s = 0; s < senders; ++s) {
      rt.go([ch, s, token = ss.get_token(), &sent, &senders_done]() mutable {
        for (int i = 0; i < per_sender; ++i) {
          const int v = s * per_sender + i;
          const chan_status st = i % 3 == 0
                                     ? ch.send_for(v, std::chrono::microseconds(50 * (i % 7)))
                                     : ch.send(v, token);
          if (st == chan_status::ok) sent[static_cast<std::size_t>(v)] = 1;
          if (st == chan_status::cancelled) break;
        }
        senders_done.done();
      });
    }
    for (int r = 0; r < receivers; ++r) {
      rt.go([ch, r, cancel_after, token = ss.get_token(), &ss, &got, &taken,
             &receivers_done]() mutable {
        for (int i = 0;; ++i) {
          const auto res =
              (i + r) % 4 == 0 ? ch.recv_for(std::chrono::microseconds(100)) : ch.recv(token);
          if (res.status == chan_status::cancelled) break;
          if (res.status != chan_status::ok) {
            if (token.stop_requested()) break;
            continue;
          }
          got[static_cast<std::size_t>(*res.value)].fetch_add(1);
          if (taken.fetch_add(1) + 1 == cancel_after) ss.request_stop();
        }
        receivers_done.done();
      });
    }
    // Receivers run until the cancellation; if the senders finish first, it comes now.
    senders_done.wait();
    ss.request_stop();
    receivers_done.wait();
    while (auto r = ch.try_recv()) got[static_cast<std::size_t>(*r.value)].fetch_add(1);
    std::size_t bad = 0;
    for (std::size_t v = 0; v < sent.size(); ++v) {
      if (got[v].load() != sent[v]) ++bad;
    }
    ASSERT_EQ(bad, 0u) << "round " << round << " cap " << cap;
  }
}

// A chain of fibers each forwarding what it receives to the next, several tokens in flight:
// parking and waking under load, with the sum checked at the end.
TEST_P(ChanStressTest, DaisyChain) {
  const int links = static_cast<int>(scaled(2000));
  const int tokens = 64;
  goro::runtime rt{opts()};
  chan<long long> first;
  chan<long long> in = first;
  for (int i = 0; i < links; ++i) {
    chan<long long> out(i % 2);
    rt.go([in, out]() mutable {
      for (long long v : in) out.send(v + 1);
      out.close();
    });
    in = out;
  }
  chan<long long> last = in;
  std::thread feeder([first]() mutable {
    for (int t = 0; t < tokens; ++t) first.send(t);
    first.close();
  });
  long long sum = 0;
  int count = 0;
  for (long long v : last) {
    sum += v;
    ++count;
  }
  feeder.join();
  EXPECT_EQ(count, tokens);
  EXPECT_EQ(sum, static_cast<long long>(tokens) * links + tokens * (tokens - 1) / 2);
}

INSTANTIATE_TEST_SUITE_P(Workers, ChanStressTest, goro_test::worker_counts(),
                         goro_test::worker_count_name);

}  // namespace
