// SPDX-License-Identifier: Apache-2.0
// Stress tests of goro::select (goro/select.hpp): Go's TestSelectStress written again (plain
// senders and receivers on four channels of mixed capacity racing one select that sends and one
// that receives, each nil-ing its cases as their quotas fill), a free-for-all of random selects
// from fibers and plain threads over buffered, unbuffered and nil channels with defaults and a
// stop case, and selects racing closes. Every value is accounted for by counts and checksums.
// Sized by GORO_STRESS_SCALE (tests/test_support.hpp), bounded by a time budget, and run once
// per worker count (1, 2, 4, 8).
#include <array>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <random>
#include <span>
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
using goro::on_recv;
using goro::on_send;
using goro::on_stop;
using goro::otherwise;
using goro::select;
using goro_test::scaled;

// Wall-clock budget of one test instance, after which it starts no new work.
constexpr auto time_budget = 20s;

class SelectStressTest : public goro_test::workers_test {
 protected:
  bool out_of_time() const { return clock_type::now() - start_ > time_budget; }

 private:
  clock_type::time_point start_ = clock_type::now();
};

// Go's TestSelectStress: on each of four channels (capacities 0, 0, 2, 3) a plain sender sends
// n values and a plain receiver takes n; one fiber sends n values on each channel through a
// single select, and another receives n from each through a single select, each turning a
// case's channel nil once its quota is met. Nothing deadlocks, and the sums match.
TEST_P(SelectStressTest, GoSelectStress) {
  const int n = static_cast<int>(scaled(50000));
  goro::runtime rt{opts()};
  std::array<chan<int>, 4> c = {chan<int>(0), chan<int>(0), chan<int>(2), chan<int>(3)};
  std::array<std::atomic<long long>, 4> sent_sum{};
  std::array<std::atomic<long long>, 4> recv_sum{};
  goro::wait_group wg;
  wg.add(10);
  for (std::size_t k = 0; k < 4; ++k) {
    rt.go([&, k] {
      long long s = 0;
      for (int i = 0; i < n; ++i) {
        c[k].send(i);
        s += i;
      }
      sent_sum[k].fetch_add(s);
      wg.done();
    });
    rt.go([&, k] {
      long long s = 0;
      for (int i = 0; i < n; ++i) s += *c[k].recv();
      recv_sum[k].fetch_add(s);
      wg.done();
    });
  }
  rt.go([&] {
    std::array<chan<int>, 4> c1 = c;
    std::array<int, 4> count{};
    std::array<long long, 4> s{};
    for (int i = 0; i < 4 * n; ++i) {
      auto sent = [&](std::size_t k) {
        return [&, k] {
          s[k] += 1000000 + count[k];
          if (++count[k] == n) c1[k] = chan<int>(nullptr);
        };
      };
      select(
          on_send(c1[3], 1000000 + count[3], sent(3)), on_send(c1[1], 1000000 + count[1], sent(1)),
          on_send(c1[0], 1000000 + count[0], sent(0)), on_send(c1[2], 1000000 + count[2], sent(2)));
    }
    for (std::size_t k = 0; k < 4; ++k) sent_sum[k].fetch_add(s[k]);
    wg.done();
  });
  rt.go([&] {
    std::array<chan<int>, 4> c1 = c;
    std::array<int, 4> count{};
    std::array<long long, 4> s{};
    for (int i = 0; i < 4 * n; ++i) {
      auto got = [&](std::size_t k) {
        return [&, k](std::optional<int> v) {
          s[k] += *v;
          if (++count[k] == n) c1[k] = chan<int>(nullptr);
        };
      };
      select(on_recv(c1[0], got(0)), on_recv(c1[3], got(3)), on_recv(c1[2], got(2)),
             on_recv(c1[1], got(1)));
    }
    for (std::size_t k = 0; k < 4; ++k) recv_sum[k].fetch_add(s[k]);
    wg.done();
  });
  wg.wait();
  for (std::size_t k = 0; k < 4; ++k) {
    EXPECT_EQ(sent_sum[k].load(), recv_sum[k].load()) << "channel " << k;
    EXPECT_EQ(c[k].try_recv().status, chan_status::empty) << "channel " << k;
  }
}

// Parties (fibers, and two plain threads) each make random selects: random send and receive
// cases over six channels of mixed capacity, some cases on nil, sometimes a default, always a
// stop case. A feeder that only sends and a drainer that only receives keep everyone moving.
// Once every party has made its quota of selects, a stop ends it all; then every value sent
// was received or is still buffered.
TEST_P(SelectStressTest, RandomSelectsFromFibersAndThreads) {
  constexpr int fiber_parties = 10;
  constexpr int thread_parties = 2;
  constexpr int channels = 6;
  const int quota = static_cast<int>(scaled(10000));
  goro::runtime rt{opts()};
  std::vector<chan<int>> chans;
  for (int i = 0; i < channels; ++i) chans.emplace_back(std::array{0, 1, 0, 4, 2, 0}[i]);
  std::array<std::atomic<long long>, channels> sent_count{};
  std::array<std::atomic<long long>, channels> sent_sum{};
  std::array<std::atomic<long long>, channels> recv_count{};
  std::array<std::atomic<long long>, channels> recv_sum{};
  std::stop_source ss;
  goro::wait_group quotas;  // each party, once its quota is met
  quotas.add(fiber_parties + thread_parties);
  goro::wait_group finished;  // each party, feeder and drainer, once stopped
  finished.add(fiber_parties + 2);

  auto party = [&](int id) {
    std::mt19937 rng(static_cast<std::uint32_t>(id) * 7919u + 1u);
    const std::stop_token token = ss.get_token();
    bool stopped = false;
    bool quota_met = false;
    for (int i = 0; !stopped; ++i) {
      if (!quota_met && (i >= quota || out_of_time())) {
        quota_met = true;
        quotas.done();
      }
      std::vector<goro::select_case> cases;
      std::array<chan<int>, 3> picked = {chans[rng() % channels], chans[rng() % channels],
                                         chans[rng() % channels]};
      std::array<std::size_t, 3> index{};
      for (std::size_t j = 0; j < 3; ++j) {
        for (std::size_t k = 0; k < chans.size(); ++k) {
          if (chans[k] == picked[j]) index[j] = k;
        }
        // A nil case, now and then; never the first, so that no select is all nil cases.
        if (j > 0 && rng() % 8 == 0) picked[j] = chan<int>(nullptr);
      }
      const int value = static_cast<int>(rng() % 1000);
      // The variadic form, with the stop case; sometimes with a default.
      auto sent = [&](std::size_t j) {
        return [&, j] {
          sent_count[index[j]].fetch_add(1, std::memory_order_relaxed);
          sent_sum[index[j]].fetch_add(value, std::memory_order_relaxed);
        };
      };
      auto got = [&](std::size_t j) {
        return [&, j](std::optional<int> v) {
          recv_count[index[j]].fetch_add(1, std::memory_order_relaxed);
          recv_sum[index[j]].fetch_add(*v, std::memory_order_relaxed);
        };
      };
      auto on_stop_case = on_stop(token, [&stopped] { stopped = true; });
      switch (rng() % 4) {
        case 0:
          select(on_send(picked[0], value, sent(0)), on_recv(picked[1], got(1)),
                 on_recv(picked[2], got(2)), std::move(on_stop_case));
          break;
        case 1:
          select(on_recv(picked[0], got(0)), on_send(picked[1], value, sent(1)),
                 on_send(picked[2], value, sent(2)), std::move(on_stop_case));
          break;
        case 2:
          select(on_send(picked[0], value, sent(0)), on_recv(picked[1], got(1)),
                 std::move(on_stop_case), otherwise());
          if (token.stop_requested()) stopped = true;
          break;
        default: {
          // The run-time form has no stop case: give it a default instead.
          cases.push_back(on_recv(picked[0], got(0)));
          cases.push_back(on_send(picked[1], value, sent(1)));
          cases.push_back(otherwise());
          select(std::span(cases));
          if (token.stop_requested()) stopped = true;
        }
      }
    }
  };

  for (int id = 0; id < fiber_parties; ++id) {
    rt.go([&, id] {
      party(id);
      finished.done();
    });
  }
  std::vector<std::thread> threads;
  for (int id = fiber_parties; id < fiber_parties + thread_parties; ++id) {
    threads.emplace_back(party, id);
  }
  // The feeder sends on every channel, the drainer receives from every channel.
  rt.go([&] {
    for (int v = 0;; ++v) {
      bool stopped = false;
      std::size_t k = select(on_send(chans[0], v), on_send(chans[1], v), on_send(chans[2], v),
                             on_send(chans[3], v), on_send(chans[4], v), on_send(chans[5], v),
                             on_stop(ss.get_token(), [&stopped] { stopped = true; }));
      if (stopped) break;
      sent_count[k].fetch_add(1, std::memory_order_relaxed);
      sent_sum[k].fetch_add(v, std::memory_order_relaxed);
    }
    finished.done();
  });
  rt.go([&] {
    for (;;) {
      bool stopped = false;
      std::size_t which = channels;
      int value = 0;
      auto take = [&](std::size_t k) {
        return [&, k](std::optional<int> v) {
          which = k;
          value = *v;
        };
      };
      select(on_recv(chans[0], take(0)), on_recv(chans[1], take(1)), on_recv(chans[2], take(2)),
             on_recv(chans[3], take(3)), on_recv(chans[4], take(4)), on_recv(chans[5], take(5)),
             on_stop(ss.get_token(), [&stopped] { stopped = true; }));
      if (stopped) break;
      recv_count[which].fetch_add(1, std::memory_order_relaxed);
      recv_sum[which].fetch_add(value, std::memory_order_relaxed);
    }
    finished.done();
  });
  quotas.wait();
  ss.request_stop();
  for (auto& t : threads) t.join();
  finished.wait();
  for (std::size_t k = 0; k < channels; ++k) {
    while (auto r = chans[k].try_recv()) {
      recv_count[k].fetch_add(1);
      recv_sum[k].fetch_add(*r.value);
    }
    EXPECT_EQ(sent_count[k].load(), recv_count[k].load()) << "channel " << k;
    EXPECT_EQ(sent_sum[k].load(), recv_sum[k].load()) << "channel " << k;
  }
}

// Rounds of selects racing closes: blocked and non-blocking receive cases see the close as
// std::nullopt (after any buffered values), send cases throw and their values are never
// received; every value whose select send completed is received exactly once.
TEST_P(SelectStressTest, SelectsRacingCloses) {
  constexpr int parties = 6;
  const int rounds = static_cast<int>(scaled(3000));
  goro::runtime rt{opts()};
  std::mt19937 rng(4242);
  for (int round = 0; round < rounds && !out_of_time(); ++round) {
    const int cap = static_cast<int>(rng() % 3);
    chan<int> a(cap);
    chan<int> b(rng() % 2 == 0 ? 0 : 2);
    std::atomic<long long> sent_sum{0};
    std::atomic<long long> recv_sum{0};
    std::atomic<int> bad{0};
    // The closer closes both channels once the receivers have taken close_after values (the
    // senders never stop on their own, so that many always arrive).
    const int close_after = static_cast<int>(rng() % 300);
    std::atomic<int> taken{0};
    chan<int> close_now(1);
    goro::wait_group wg;
    wg.add(2 * parties + 1);
    for (int p = 0; p < parties; ++p) {
      // Senders: select-send on a or b until the send throws.
      rt.go([a, b, p, &sent_sum, &wg]() mutable {
        for (int i = 1;; ++i) {
          const int v = p * 100000 + i;
          try {
            select(on_send(a, v, [&] { sent_sum.fetch_add(v); }),
                   on_send(b, v, [&] { sent_sum.fetch_add(v); }));
          } catch (const goro::closed_channel_error&) {
            break;
          }
        }
        wg.done();
      });
      // Receivers: select-receive until both channels report closed.
      rt.go([a, b, p, close_now, close_after, &taken, &recv_sum, &bad, &wg]() mutable {
        chan<int> ra = a;
        chan<int> rb = b;
        while (ra || rb) {
          auto take = [&](chan<int>& which) {
            return [&](std::optional<int> v) {
              if (v) {
                recv_sum.fetch_add(*v);
                if (taken.fetch_add(1) + 1 >= close_after) (void)close_now.try_send(1);
              } else {
                which = chan<int>(nullptr);
              }
            };
          };
          if (p % 2 == 0) {
            select(on_recv(ra, take(ra)), on_recv(rb, take(rb)));
          } else if (select(on_recv(ra, take(ra)), on_recv(rb, take(rb)), otherwise()) == 2) {
            goro::this_fiber::yield();
          }
        }
        if (a.try_recv().status != chan_status::closed) bad.fetch_add(1);
        wg.done();
      });
    }
    rt.go([a, b, close_now, close_after, &wg]() mutable {
      if (close_after > 0) (void)close_now.recv();
      a.close();
      b.close();
      wg.done();
    });
    wg.wait();
    ASSERT_EQ(bad.load(), 0) << "round " << round;
    ASSERT_EQ(sent_sum.load(), recv_sum.load()) << "round " << round;
  }
}

INSTANTIATE_TEST_SUITE_P(Workers, SelectStressTest, goro_test::worker_counts(),
                         goro_test::worker_count_name);

}  // namespace
