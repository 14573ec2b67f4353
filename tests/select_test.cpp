// SPDX-License-Identifier: Apache-2.0
// Tests of goro::select (goro/select.hpp), Go's select tests (runtime/chan_test.go,
// runtime/select_test.go) written again as behaviour: fairness among ready receive cases and
// pseudo-random choice among send cases; a select over a send and a receive on one channel
// never matching itself; the same channel in several cases, with the wait queues checked clean
// afterwards; nil cases; races with close and with non-blocking operations, in which the
// default is never taken while a case is ready; exactly one case firing per select; receive
// cases on closed channels, send cases on closed channels, handlers with and without
// arguments and the returned case index; a send case's rvalue moved from only if the case is
// performed, and the run-time form's own copy; threads and runtimes started one after another
// choosing differently (each thread's generator seeded afresh); the run-time form over a
// std::span of select_case; on_stop; and selects on plain threads alongside fibers.
// Concurrency tests run once per worker count (1, 2, 4, 8).
#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
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
using goro::on_recv;
using goro::on_send;
using goro::on_stop;
using goro::otherwise;
using goro::select;
using goro_test::scaled;

// Both counts of a fair two-way choice over 10,000 trials lie within 10 standard deviations
// (10 * sqrt(10000 * 0.25) = 500) of 5,000, as Go's TestSelectFairness demands.
void expect_fair(int a, int b) {
  EXPECT_EQ(a + b, 10000);
  EXPECT_GE(a, 4500) << a << " vs " << b;
  EXPECT_LE(a, 5500) << a << " vs " << b;
  EXPECT_GE(b, 4500) << a << " vs " << b;
  EXPECT_LE(b, 5500) << a << " vs " << b;
}

// ---- single-threaded semantics -----------------------------------------------------------

TEST(SelectBasicsTest, RecvCaseOnClosedChannelIsReadyWithNullopt) {
  chan<int> closed(2);
  closed.send(5);
  closed.close();
  chan<int> empty;
  std::vector<std::optional<int>> got;
  auto record = [&got](std::optional<int> v) { got.push_back(v); };
  EXPECT_EQ(select(on_recv(empty, record), on_recv(closed, record)), 1u);
  EXPECT_EQ(select(on_recv(closed, record), on_recv(empty, record)), 0u);
  EXPECT_EQ(select(on_recv(closed, record), otherwise([] { ADD_FAILURE() << "default"; })), 0u);
  ASSERT_EQ(got.size(), 3u);
  EXPECT_EQ(got[0], std::optional<int>(5));  // buffered values first
  EXPECT_EQ(got[1], std::nullopt);
  EXPECT_EQ(got[2], std::nullopt);
}

TEST(SelectBasicsTest, SendCaseOnClosedChannelThrows) {
  for (int cap : {0, 1}) {
    chan<int> ch(cap);
    ch.close();
    bool handled = false;
    EXPECT_THROW(select(on_send(ch, 1, [&] { handled = true; })), goro::closed_channel_error);
    EXPECT_THROW(select(on_send(ch, 1), otherwise([&] { handled = true; })),
                 goro::closed_channel_error);
    try {
      chan<int> never;
      select(on_recv(never), on_send(ch, 2));
      ADD_FAILURE() << "no exception";
    } catch (const std::logic_error& e) {
      EXPECT_NE(std::string(e.what()).find("send"), std::string::npos) << e.what();
    }
    EXPECT_FALSE(handled);
    EXPECT_EQ(ch.try_recv().status, chan_status::closed);
  }
}

TEST(SelectBasicsTest, HandlersMayTakeNoArgumentOrBeOmitted) {
  chan<int> ch(4);
  int calls = 0;
  ch.send(1);
  EXPECT_EQ(select(on_recv(ch, [&] { ++calls; })), 0u);
  ch.send(2);
  EXPECT_EQ(select(on_recv(ch)), 0u);
  EXPECT_EQ(select(on_send(ch, 3, [&] { ++calls; })), 0u);
  EXPECT_EQ(select(on_send(ch, 4)), 0u);
  EXPECT_EQ(calls, 2);
  EXPECT_EQ(ch.recv(), std::optional<int>(3));
  EXPECT_EQ(ch.recv(), std::optional<int>(4));
  chan<int> empty;
  EXPECT_EQ(select(on_recv(empty), otherwise()), 1u);
  EXPECT_EQ(select(on_recv(empty), otherwise([&] { ++calls; })), 1u);
  EXPECT_EQ(calls, 3);
}

TEST(SelectBasicsTest, ReturnsTheCaseIndexInArgumentOrder) {
  chan<int> empty;
  chan<int> ready(1);
  std::string trace;
  ready.send(7);
  EXPECT_EQ(select(otherwise([&] { trace += "d"; }), on_recv(empty, [&] { trace += "e"; }),
                   on_recv(ready, [&](std::optional<int> v) { trace += std::to_string(*v); })),
            2u);
  EXPECT_EQ(select(otherwise([&] { trace += "d"; }), on_recv(empty, [&] { trace += "e"; })), 0u);
  EXPECT_EQ(select(on_recv(empty, [&] { trace += "e"; }), otherwise([&] { trace += "D"; })), 1u);
  EXPECT_EQ(select(on_recv(empty), on_send(ready, 8, [&] { trace += "s"; }), otherwise()), 1u);
  EXPECT_EQ(trace, "7dDs");  // exactly one handler per select
  EXPECT_EQ(ready.recv(), std::optional<int>(8));
}

TEST(SelectBasicsTest, FairnessOverClosedChannels) {
  chan<int> a;
  chan<int> b;
  a.close();
  b.close();
  int na = 0;
  int nb = 0;
  for (int i = 0; i < 10000; ++i) {
    if (select(on_recv(a), on_recv(b)) == 0) {
      ++na;
    } else {
      ++nb;
    }
  }
  expect_fair(na, nb);
}

TEST(SelectBasicsTest, FairnessOverBuffersKeptFull) {
  chan<int> a(1);
  chan<int> b(1);
  chan<int> never;
  a.send(1);
  b.send(2);
  int na = 0;
  int nb = 0;
  for (int i = 0; i < 10000; ++i) {
    const std::size_t k = select(on_recv(never),
                                 on_recv(a,
                                         [&](std::optional<int> v) {
                                           EXPECT_EQ(v, std::optional<int>(1));
                                           ++na;
                                           a.send(1);
                                         }),
                                 on_recv(b,
                                         [&](std::optional<int> v) {
                                           EXPECT_EQ(v, std::optional<int>(2));
                                           ++nb;
                                           b.send(2);
                                         }),
                                 otherwise([] { ADD_FAILURE() << "default taken"; }));
    EXPECT_NE(k, 0u);
  }
  expect_fair(na, nb);
}

TEST(SelectBasicsTest, PseudoRandomChoiceBetweenSendCases) {
  chan<int> a(10001);
  chan<int> b(10001);
  for (int i = 0; i < 10000; ++i) select(on_send(a, 1), on_send(b, 2));
  expect_fair(static_cast<int>(a.size()), static_cast<int>(b.size()));
}

TEST(SelectBasicsTest, LoneSelfSelectOnUnbufferedChannelTakesTheDefault) {
  chan<int> ch;
  for (int i = 0; i < 1000; ++i) {
    ASSERT_EQ(
        select(on_send(ch, 1), on_recv(ch, [] { ADD_FAILURE() << "matched itself"; }), otherwise()),
        2u);
  }
  EXPECT_EQ(ch.try_send(1), chan_status::full);  // and left nothing queued
  EXPECT_EQ(ch.try_recv().status, chan_status::empty);
}

TEST(SelectBasicsTest, NilCases) {
  chan<int> nil{nullptr};
  chan<int> ready(1);
  bool nil_fired = false;
  auto fire = [&nil_fired] { nil_fired = true; };
  EXPECT_EQ(select(on_recv(nil, fire), on_send(nil, 1, fire), otherwise()), 2u);
  ready.send(3);
  EXPECT_EQ(select(on_recv(nil, fire), on_send(nil, 1, fire), on_recv(ready)), 2u);
  EXPECT_EQ(select(on_send(nil, 1, fire), on_send(ready, 4)), 1u);
  EXPECT_EQ(ready.recv(), std::optional<int>(4));

  const auto start = std::chrono::steady_clock::now();
  std::optional<std::chrono::steady_clock::time_point> tick;
  EXPECT_EQ(select(on_recv(nil, fire), on_send(nil, 2, fire),
                   on_recv(goro::after(10ms), [&](auto t) { tick = t; })),
            2u);
  EXPECT_GE(std::chrono::steady_clock::now() - start, 10ms);
  ASSERT_TRUE(tick.has_value());
  EXPECT_GE(*tick - start, 10ms);
  EXPECT_FALSE(nil_fired);
}

TEST(SelectBasicsTest, MoveOnlyValues) {
  chan<std::unique_ptr<int>> ch(1);
  chan<std::unique_ptr<int>> never;
  EXPECT_EQ(select(on_send(never, std::make_unique<int>(1)), on_send(ch, std::make_unique<int>(2))),
            1u);
  std::unique_ptr<int> got;
  EXPECT_EQ(select(on_recv(never), on_recv(ch,
                                           [&](std::optional<std::unique_ptr<int>> v) {
                                             ASSERT_TRUE(v.has_value());
                                             got = std::move(*v);
                                           })),
            1u);
  ASSERT_NE(got, nullptr);
  EXPECT_EQ(*got, 2);
  // The value of a send case not chosen is dropped with the case, never delivered.
  EXPECT_EQ(select(on_send(never, std::make_unique<int>(3)), otherwise()), 1u);
  EXPECT_EQ(ch.try_recv().status, chan_status::empty);
}

// The caller's object after a select that did not perform its send case: as it was.
void expect_kept(const std::unique_ptr<int>& p, int v, const char* what) {
  ASSERT_NE(p, nullptr) << what << ": a send case not performed moved from its value";
  EXPECT_EQ(*p, v) << what;
}

TEST(SelectBasicsTest, SendCaseMovesFromAnRvalueOnlyIfPerformed) {
  using ptr = std::unique_ptr<int>;
  chan<ptr> unbuffered;  // nobody receives: never ready
  chan<ptr> full(1);
  full.send(std::make_unique<int>(0));
  chan<int> ready(1);
  ptr q = std::make_unique<int>(5);

  EXPECT_EQ(select(on_send(unbuffered, std::move(q)), otherwise()), 1u);
  expect_kept(q, 5, "default taken");
  EXPECT_EQ(select(on_send(full, std::move(q)), on_send(unbuffered, std::move(q)), otherwise()),
            2u);
  expect_kept(q, 5, "default taken over two send cases");

  ready.send(1);
  EXPECT_EQ(select(on_send(full, std::move(q)), on_recv(ready)), 1u);
  expect_kept(q, 5, "another case performed");

  std::stop_source stopped;
  stopped.request_stop();
  EXPECT_EQ(select(on_send(unbuffered, std::move(q)), on_stop(stopped.get_token())), 1u);
  expect_kept(q, 5, "on_stop performed");

  chan<ptr> closed(1);
  closed.close();
  EXPECT_THROW(select(on_send(closed, std::move(q)), otherwise()), goro::closed_channel_error);
  expect_kept(q, 5, "send on a closed channel threw");

  // A blocked select woken for another case.
  std::thread sender([ready] {
    std::this_thread::sleep_for(5ms);  // lets the select block first (either order is correct)
    ready.send(2);
  });
  EXPECT_EQ(select(on_send(unbuffered, std::move(q)), on_recv(ready)), 1u);
  sender.join();
  expect_kept(q, 5, "a blocked select woken by another case");

  // Two cases may refer to one object: only the performed one moves from it.
  chan<ptr> room(1);
  EXPECT_EQ(select(on_send(full, std::move(q)), on_send(room, std::move(q))), 1u);
  EXPECT_EQ(q, nullptr);
  auto got = room.recv();
  ASSERT_TRUE(got.has_value() && *got != nullptr);
  EXPECT_EQ(**got, 5);

  // An lvalue is copied: the caller's object is never changed, performed or not.
  chan<std::string> strings(1);
  std::string s = "copied";
  EXPECT_EQ(select(on_send(strings, s)), 0u);
  EXPECT_EQ(s, "copied");
  EXPECT_EQ(select(on_send(strings, s), otherwise()), 1u);
  EXPECT_EQ(s, "copied");
  EXPECT_EQ(strings.recv(), std::optional<std::string>("copied"));
}

TEST(SelectBasicsTest, RunTimeSendCaseHoldsItsOwnValue) {
  using ptr = std::unique_ptr<int>;
  chan<ptr> full(1);
  full.send(std::make_unique<int>(0));
  std::vector<goro::select_case> cases;
  ptr q = std::make_unique<int>(6);
  cases.push_back(on_send(full, std::move(q)));  // moves q into the select_case
  EXPECT_EQ(q, nullptr);
  cases.push_back(otherwise());
  EXPECT_EQ(select(std::span(cases)), 1u);  // full: the value stays in the case
  EXPECT_EQ(*full.recv().value(), 0);
  EXPECT_EQ(select(std::span(cases)), 0u);  // now sent
  auto got = full.recv();
  ASSERT_TRUE(got.has_value() && *got != nullptr);
  EXPECT_EQ(**got, 6);
}

// The cases a select chooses among four always-ready receive cases, 64 times.
std::vector<std::size_t> choices_among_four() {
  constexpr int rounds = 64;
  std::vector<chan<int>> chans;
  for (int c = 0; c < 4; ++c) {
    chans.emplace_back(rounds);
    for (int i = 0; i < rounds; ++i) chans.back().send(i);
  }
  std::vector<std::size_t> picked;
  for (int i = 0; i < rounds; ++i) {
    picked.push_back(
        select(on_recv(chans[0]), on_recv(chans[1]), on_recv(chans[2]), on_recv(chans[3])));
  }
  return picked;
}

// Each thread seeds its own generator: two threads, the second started after the first ended
// (so it may get the same thread-locals), do not choose alike. Equal sequences of 64 uniform
// choices among 4 have probability 4^-64.
TEST(SelectBasicsTest, ThreadsStartedOneAfterAnotherChooseDifferently) {
  std::vector<std::size_t> first;
  std::vector<std::size_t> second;
  std::thread([&] { first = choices_among_four(); }).join();
  std::thread([&] { second = choices_among_four(); }).join();
  ASSERT_EQ(first.size(), 64u);
  EXPECT_NE(first, second);
}

TEST(SelectBasicsTest, RuntimesStartedOneAfterAnotherChooseDifferently) {
  std::vector<std::size_t> sequences[2];
  for (auto& seq : sequences) {
    goro::runtime rt{goro::options{.workers = 1}};
    run_fibers(rt, 1, [&](std::size_t) { seq = choices_among_four(); });
  }
  ASSERT_EQ(sequences[0].size(), 64u);
  EXPECT_NE(sequences[0], sequences[1]);
}

TEST(SelectBasicsTest, RunTimeForm) {
  constexpr int n = 16;
  std::vector<chan<int>> chans;
  for (int i = 0; i < n; ++i) chans.emplace_back(i % 3);
  chans[5].close();
  std::vector<std::optional<int>> got(n, -1);
  std::vector<goro::select_case> cases;
  for (int i = 0; i < n; ++i) {
    cases.push_back(on_recv(chans[static_cast<std::size_t>(i)], [&got, i](std::optional<int> v) {
      got[static_cast<std::size_t>(i)] = v;
    }));
  }
  EXPECT_EQ(select(std::span(cases)), 5u);
  EXPECT_EQ(got[5], std::nullopt);
  chans[5] = chan<int>(nullptr);  // the cases hold their own handles: case 5 stays closed
  EXPECT_EQ(select(std::span(cases)), 5u);

  // A send case and a default, and the default's index when nothing is ready.
  std::vector<goro::select_case> more;
  bool defaulted = false;
  more.push_back(on_recv(chans[0]));
  more.push_back(otherwise([&] { defaulted = true; }));
  more.push_back(on_send(chans[1], 11));
  EXPECT_EQ(select(std::span(more)), 2u);  // chans[1] has room for one
  EXPECT_FALSE(defaulted);
  EXPECT_EQ(select(std::span(more)), 1u);
  EXPECT_TRUE(defaulted);
  EXPECT_EQ(chans[1].recv(), std::optional<int>(11));

  std::vector<goro::select_case> two_defaults;
  two_defaults.push_back(otherwise());
  two_defaults.push_back(otherwise());
  EXPECT_THROW(select(std::span(two_defaults)), std::invalid_argument);
}

TEST(SelectBasicsTest, RunTimeFormTakesTheVectorItself) {
  // Go's reflect.Select takes the slice; `select(cases)` once failed to compile, deep inside
  // the variadic form (no describe() for a std::vector), until it was spelled with std::span.
  chan<int> ready(1);
  ready.send(3);
  std::optional<int> got;
  std::vector<goro::select_case> cases;
  cases.push_back(on_recv(chan<int>(nullptr)));
  cases.push_back(on_recv(ready, [&](std::optional<int> v) { got = v; }));
  EXPECT_EQ(select(cases), 1u);
  EXPECT_EQ(got, std::optional<int>(3));
  cases.push_back(otherwise());
  EXPECT_EQ(select(cases), 2u);
  goro::select_case array[] = {on_send(ready, 4)};
  EXPECT_EQ(select(array), 0u);
  EXPECT_EQ(ready.recv(), std::optional<int>(4));
}

// A run-time send case performed again sends its value again, as Go's reflect.Select does (it
// sent a moved-from value before: "", then ""); a move-only one, spent, is refused.
TEST(SelectBasicsTest, RunTimeSendCaseReusedSendsItsValueEachTime) {
  chan<std::string> out(3);
  std::vector<goro::select_case> cases;
  cases.push_back(on_send(out, std::string("a value too long for the small-string buffer")));
  for (int i = 0; i < 3; ++i) EXPECT_EQ(select(cases), 0u);
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(out.recv(),
              std::optional<std::string>("a value too long for the small-string buffer"));
  }
  chan<std::unique_ptr<int>> owners(2);
  std::vector<goro::select_case> once;
  once.push_back(on_send(owners, std::make_unique<int>(5)));
  EXPECT_EQ(select(once), 0u);
  EXPECT_THROW(select(once), std::logic_error);
  EXPECT_EQ(owners.size(), 1u);
  EXPECT_EQ(**owners.recv(), 5);
}

// A moved-from select_case passed for an otherwise() case: a select that should have blocked
// on the empty channel returned at once, and one that picked it threw std::bad_function_call.
TEST(SelectBasicsTest, RunTimeMovedFromCaseIsRefused) {
  chan<int> empty(1);
  std::vector<goro::select_case> cases;
  cases.push_back(on_recv(empty));
  goro::select_case moved = on_recv(empty);
  goro::select_case taker = std::move(moved);
  cases.push_back(std::move(moved));  // NOLINT(bugprone-use-after-move): the point
  EXPECT_THROW(select(cases), std::logic_error);
  EXPECT_EQ(empty.size(), 0u);
  goro::select_case def = otherwise();
  goro::select_case def_taker = std::move(def);
  std::vector<goro::select_case> with_default;
  with_default.push_back(std::move(def_taker));
  EXPECT_EQ(select(with_default), 0u);     // the case moved into is still a default
  with_default.push_back(std::move(def));  // NOLINT(bugprone-use-after-move): the point
  EXPECT_THROW(select(with_default), std::logic_error);
  // Assignment moves the kind too.
  goro::select_case assigned = on_recv(empty);
  assigned = otherwise();
  std::vector<goro::select_case> one;
  one.push_back(std::move(assigned));
  EXPECT_EQ(select(one), 0u);
}

TEST(SelectBasicsTest, RunTimeCaseKeepsItsOwnHandle) {
  std::vector<goro::select_case> cases;
  {
    chan<int> ch(1);
    ch.send(42);
    cases.push_back(
        on_recv(ch, [](std::optional<int> v) { EXPECT_EQ(v, std::optional<int>(42)); }));
  }  // the case is now the channel's only owner
  EXPECT_EQ(select(std::span(cases)), 0u);
  {
    chan<int> ch(1);
    cases.clear();
    cases.push_back(on_send(ch, 1));
  }
  EXPECT_EQ(select(std::span(cases)), 0u);  // into a buffer nobody else can see
}

// Go's reflect.Select waits on ctx.Done() as on any channel; the run-time form takes on_stop
// (README: a std::stop_token for every blocking call). It did not: a run-time select could not
// be cancelled.
TEST(SelectBasicsTest, RunTimeFormTakesAnOnStopCase) {
  chan<int> empty;
  std::stop_source ss;
  bool stopped = false;
  std::vector<goro::select_case> cases;
  cases.push_back(on_recv(empty));
  cases.push_back(on_stop(ss.get_token(), [&] { stopped = true; }));
  cases.push_back(on_send(empty, 1));
  std::thread stopper([&ss] {
    std::this_thread::sleep_for(5ms);  // lets the select block first (not required)
    ss.request_stop();
  });
  EXPECT_EQ(select(cases), 1u);
  stopper.join();
  EXPECT_TRUE(stopped);
  EXPECT_EQ(empty.try_send(1), chan_status::full);         // no stale receiver
  EXPECT_EQ(empty.try_recv().status, chan_status::empty);  // no stale sender
  // Requested already: at once; a ready channel case wins over a live token.
  EXPECT_EQ(select(cases), 1u);
  std::stop_source live;
  chan<int> ready(1);
  ready.send(2);
  std::vector<goro::select_case> calm;
  calm.push_back(on_stop(live.get_token(), [] { ADD_FAILURE(); }));
  calm.push_back(on_recv(ready));
  EXPECT_EQ(select(calm), 1u);
  calm.push_back(on_stop(live.get_token()));
  EXPECT_THROW(select(calm), std::invalid_argument);
}

TEST(SelectBasicsTest, OnStopAlreadyRequestedFiresAtOnce) {
  std::stop_source ss;
  ss.request_stop();
  chan<int> empty;
  bool stopped = false;
  EXPECT_EQ(select(on_recv(empty), on_stop(ss.get_token(), [&] { stopped = true; })), 1u);
  EXPECT_TRUE(stopped);
  EXPECT_EQ(select(on_stop(ss.get_token())), 0u);
  EXPECT_EQ(empty.try_send(1), chan_status::full);  // no receiver left queued
  // Without a stop, a ready case fires and the stop case does not.
  std::stop_source live;
  chan<int> ready(1);
  ready.send(1);
  EXPECT_EQ(select(on_stop(live.get_token(), [] { ADD_FAILURE(); }), on_recv(ready)), 1u);
}

TEST(SelectBasicsTest, OnStopWakesABlockedThread) {
  std::stop_source ss;
  chan<int> empty;
  chan<int> nil{nullptr};
  std::thread stopper([&ss] {
    std::this_thread::sleep_for(5ms);  // lets the main thread block first (not required)
    ss.request_stop();
  });
  bool stopped = false;
  EXPECT_EQ(select(on_recv(empty), on_recv(nil), on_send(empty, 1),
                   on_stop(ss.get_token(), [&] { stopped = true; })),
            3u);
  stopper.join();
  EXPECT_TRUE(stopped);
  EXPECT_EQ(empty.try_send(1), chan_status::full);         // no stale receiver
  EXPECT_EQ(empty.try_recv().status, chan_status::empty);  // no stale sender
}

TEST(SelectBasicsTest, SelectOnPlainThreadsWithoutFibers) {
  chan<int> a;
  chan<int> b(2);
  chan<int> done;
  constexpr int per_sender = 2000;
  std::thread sender_a([a]() mutable {
    for (int i = 0; i < per_sender; ++i) select(on_send(a, 1));
  });
  std::thread sender_b([b]() mutable {
    for (int i = 0; i < per_sender; ++i) select(on_send(b, 2));
  });
  int sum = 0;
  int count = 0;
  while (count < 2 * per_sender) {
    select(on_recv(a, [&](std::optional<int> v) { sum += *v; }),
           on_recv(b, [&](std::optional<int> v) { sum += *v; }),
           on_recv(done, [] { ADD_FAILURE(); }));
    ++count;
  }
  sender_a.join();
  sender_b.join();
  EXPECT_EQ(sum, 3 * per_sender);
}

// ---- concurrency, once per worker count --------------------------------------------------

class SelectTest : public goro_test::workers_test {};

// Go's TestSelectFairness: a fiber selects over two never-ready and two always-ready channels
// and forwards what it got; the two ready ones must be chosen about equally often.
TEST_P(SelectTest, FairnessAmongReadyReceiveCases) {
  constexpr int trials = 10000;
  goro::runtime rt{opts()};
  chan<int> c1(trials + 1);
  chan<int> c2(trials + 1);
  for (int i = 0; i < trials + 1; ++i) {
    c1.send(1);
    c2.send(2);
  }
  chan<int> c3;
  chan<int> c4;
  chan<int> out;
  chan<int> done;
  goro::wait_group wg;
  wg.add(1);
  rt.go([=, &wg]() mutable {
    for (;;) {
      int b = 0;
      auto take = [&b](std::optional<int> v) { b = *v; };
      select(on_recv(c3, take), on_recv(c4, take), on_recv(c1, take), on_recv(c2, take));
      if (select(on_send(out, b), on_recv(done)) == 1) break;
    }
    wg.done();
  });
  int n1 = 0;
  int n2 = 0;
  for (int i = 0; i < trials; ++i) {
    const auto b = out.recv();
    if (b == std::optional<int>(1)) {
      ++n1;
    } else if (b == std::optional<int>(2)) {
      ++n2;
    } else {
      ADD_FAILURE() << "unexpected value";
    }
  }
  done.close();
  wg.wait();
  expect_fair(n1, n2);
}

// Go's TestPseudoRandomSend: two send cases on one channel, both taken often enough.
TEST_P(SelectTest, PseudoRandomSend) {
  constexpr int n = 1000;
  goro::runtime rt{opts()};
  for (int cap : {0, n}) {
    SCOPED_TRACE(cap);
    chan<int> c(cap);
    std::vector<int> got;
    goro::wait_group wg;
    wg.add(1);
    rt.go([c, &got, &wg]() mutable {
      for (int i = 0; i < n; ++i) {
        goro::this_fiber::yield();
        got.push_back(*c.recv());
      }
      wg.done();
    });
    run_fibers(rt, 1, [&](std::size_t) {
      for (int i = 0; i < n; ++i) select(on_send(c, 1), on_send(c, 0));
    });
    wg.wait();
    const auto ones = std::count(got.begin(), got.end(), 1);
    const auto zeros = std::count(got.begin(), got.end(), 0);
    EXPECT_EQ(ones + zeros, n);
    EXPECT_GT(ones, n / 10);
    EXPECT_GT(zeros, n / 10);
  }
}

// A select blocked on two cases of one channel, woken by a partner for which either case could
// proceed: as when it polls, the case performed is chosen at random, not always the first
// (what Go's TestPseudoRandomSend relies on when its receiver arrives second).
TEST_P(SelectTest, WokenSelectChoosesRandomlyAmongCasesOnOneChannel) {
  constexpr int rounds = 100;
  goro::runtime rt{opts()};
  int first_send_case = 0;
  int first_recv_case = 0;
  for (int i = 0; i < 2 * rounds; ++i) {
    const bool sending = i < rounds;
    chan<int> c;
    chan<int> result(1);
    rt.go([c, result, sending]() mutable {
      const std::size_t k =
          sending ? select(on_send(c, 0), on_send(c, 1)) : select(on_recv(c), on_recv(c));
      result.send(static_cast<int>(k));
    });
    // Proves the select is blocked (it has no partner yet), so what follows wakes it.
    EXPECT_EQ(result.recv_for(1ms).status, chan_status::timeout);
    if (sending) {
      const auto v = c.recv();
      const auto k = result.recv();
      EXPECT_EQ(v, k);
      if (k == std::optional<int>(0)) ++first_send_case;
    } else {
      c.send(7);
      if (result.recv() == std::optional<int>(0)) ++first_recv_case;
    }
  }
  // Binomial(100, 1/2): 20..80 is six standard deviations either way.
  EXPECT_GT(first_send_case, 20);
  EXPECT_LT(first_send_case, 80);
  EXPECT_GT(first_recv_case, 20);
  EXPECT_LT(first_recv_case, 80);
}

// Go's TestSelfSelect: fibers each selecting over a send and a receive on one channel never
// deadlock, and on an unbuffered channel never receive their own value.
TEST_P(SelectTest, SelfSelectPairOfFibers) {
  goro::runtime rt{opts()};
  for (int cap : {0, 10}) {
    SCOPED_TRACE(cap);
    chan<int> c(cap);
    std::atomic<int> self_receives{0};
    run_fibers(rt, 2, [&](std::size_t fiber) {
      const int p = static_cast<int>(fiber);
      auto check = [&](std::optional<int> v) {
        if (cap == 0 && v == std::optional<int>(p)) self_receives.fetch_add(1);
      };
      for (int i = 0; i < 1000; ++i) {
        if (p == 0 || i % 2 == 0) {
          select(on_send(c, p), on_recv(c, check));
        } else {
          select(on_recv(c, check), on_send(c, p));
        }
      }
    });
    EXPECT_EQ(self_receives.load(), 0);
  }
}

TEST_P(SelectTest, SelfSelectManyFibers) {
  goro::runtime rt{opts()};
  const int target = static_cast<int>(scaled(4000));
  for (int cap : {0, 10}) {
    SCOPED_TRACE(cap);
    chan<int> c(cap);
    std::stop_source ss;
    std::atomic<int> receives{0};
    std::atomic<int> self_receives{0};
    run_fibers(rt, 6, [&](std::size_t fiber) {
      const int p = static_cast<int>(fiber);
      bool stopped = false;
      while (!stopped) {
        select(on_send(c, p),
               on_recv(c,
                       [&](std::optional<int> v) {
                         if (cap == 0 && v == std::optional<int>(p)) self_receives.fetch_add(1);
                         if (receives.fetch_add(1) + 1 == target) ss.request_stop();
                       }),
               on_stop(ss.get_token(), [&] { stopped = true; }));
      }
    });
    EXPECT_GE(receives.load(), target);
    EXPECT_EQ(self_receives.load(), 0);
  }
}

TEST_P(SelectTest, LoneFiberSelfSelectTakesTheDefault) {
  goro::runtime rt{opts()};
  chan<int> c;
  std::atomic<int> defaults{0};
  run_fibers(rt, 1, [&](std::size_t) {
    for (int i = 0; i < 1000; ++i) {
      if (select(on_send(c, 1), on_recv(c), otherwise()) == 2) defaults.fetch_add(1);
    }
  });
  EXPECT_EQ(defaults.load(), 1000);
  EXPECT_EQ(c.try_send(1), chan_status::full);
}

// Go's TestSelectDuplicateChannel: a fiber queued twice on one channel (and once on another)
// is woken through the other channel; it must leave no entry behind on the first, or a later
// operation there would complete with a fiber that has gone.
TEST_P(SelectTest, DuplicateReceiveCasesLeaveNoStaleWaiter) {
  goro::runtime rt{opts()};
  chan<int> c;
  chan<int> d;
  chan<int> a_done(1);
  chan<int> b_got(1);
  rt.go([=]() mutable {
    const std::size_t k = select(on_recv(c), on_recv(c), on_recv(d));
    a_done.send(static_cast<int>(k));
  });
  // Proves A blocks (and gives it time to queue on c before B does).
  EXPECT_EQ(a_done.recv_for(blocked_for).status, chan_status::timeout);
  rt.go([=]() mutable { b_got.send(c.recv().value_or(-1)); });
  // Proves B blocks behind A on c.
  EXPECT_EQ(b_got.recv_for(blocked_for).status, chan_status::timeout);
  d.send(7);  // wakes A, which must unlink itself from c twice
  EXPECT_EQ(a_done.recv(), std::optional<int>(2));
  c.send(8);  // must reach B, not A's stale entries
  EXPECT_EQ(b_got.recv(), std::optional<int>(8));
  EXPECT_EQ(c.try_send(9), chan_status::full) << "a stale receiver is left on c";
  EXPECT_EQ(d.try_send(9), chan_status::full) << "a stale receiver is left on d";
}

TEST_P(SelectTest, DuplicateSendAndReceiveCasesOnOneChannel) {
  goro::runtime rt{opts()};
  chan<int> c;
  chan<int> result(1);
  for (int round = 0; round < 20; ++round) {
    SCOPED_TRACE(round);
    const bool wake_by_recv = round % 2 == 0;
    int got = -1;
    rt.go([=, &got]() mutable {
      const std::size_t k =
          select(on_recv(c, [&got](std::optional<int> v) { got = *v; }), on_send(c, 5),
                 on_recv(c, [&got](std::optional<int> v) { got = *v; }), on_send(c, 6));
      result.send(static_cast<int>(k));
    });
    // Proves the select blocks: it cannot match its own send with its own receive.
    EXPECT_EQ(result.recv_for(blocked_for).status, chan_status::timeout);
    if (wake_by_recv) {
      const auto v = c.recv();
      const auto k = result.recv();
      ASSERT_TRUE(v.has_value() && k.has_value());
      EXPECT_TRUE((*k == 1 && *v == 5) || (*k == 3 && *v == 6)) << *k << " " << *v;
    } else {
      c.send(42);
      const auto k = result.recv();
      ASSERT_TRUE(k.has_value());
      EXPECT_TRUE(*k == 0 || *k == 2) << *k;
      EXPECT_EQ(got, 42);  // the handler ran before the fiber sent its result
    }
    EXPECT_EQ(c.try_send(1), chan_status::full) << "a stale receiver is left";
    EXPECT_EQ(c.try_recv().status, chan_status::empty) << "a stale sender is left";
  }
}

TEST_P(SelectTest, DuplicateSendCasesLeaveNoStaleSender) {
  goro::runtime rt{opts()};
  for (int cap : {0, 1}) {
    SCOPED_TRACE(cap);
    chan<int> c(cap);
    if (cap == 1) c.send(0);
    chan<int> d;
    chan<int> a_done(1);
    rt.go([=]() mutable {
      a_done.send(static_cast<int>(select(on_send(c, 1), on_send(c, 2), on_recv(d))));
    });
    // Proves the select blocks.
    EXPECT_EQ(a_done.recv_for(blocked_for).status, chan_status::timeout);
    d.send(7);
    EXPECT_EQ(a_done.recv(), std::optional<int>(2));
    if (cap == 1) {
      EXPECT_EQ(c.recv(), std::optional<int>(0));
    }
    EXPECT_EQ(c.try_recv().status, chan_status::empty) << "a stale sender is left on c";
  }
}

TEST_P(SelectTest, NilCasesInFibers) {
  goro::runtime rt{opts()};
  chan<int> nil{nullptr};
  std::atomic<int> failures{0};
  std::stop_source ss;
  goro::wait_group stopped;
  stopped.add(1);
  rt.go([&] {
    // Only nil cases and a stop: blocks until the stop.
    if (select(on_recv(nil), on_send(nil, 1), on_stop(ss.get_token())) != 2) failures.fetch_add(1);
    stopped.done();
  });
  run_fibers(rt, 3, [&](std::size_t i) {
    if (i == 0) {
      if (select(on_recv(nil), on_send(nil, 1), otherwise()) != 2) failures.fetch_add(1);
    } else if (i == 1) {
      const auto start = std::chrono::steady_clock::now();
      if (select(on_recv(nil), on_recv(goro::after(10ms))) != 1) failures.fetch_add(1);
      if (std::chrono::steady_clock::now() - start < 10ms) failures.fetch_add(1);
    } else {
      chan<int> ready(1);
      ready.send(1);
      if (select(on_send(nil, 1), on_recv(ready), on_recv(nil)) != 1) failures.fetch_add(1);
    }
  });
  // Proves the nil-only select blocks.
  EXPECT_EQ(stopped.count(), 1);
  ss.request_stop();
  stopped.wait();
  EXPECT_EQ(failures.load(), 0);
}

// Go's TestNonblockRecvRace: a buffered value, then a close, keep the channel ready throughout,
// so a non-blocking select must never take its default.
TEST_P(SelectTest, NonBlockingRecvRacingCloseNeverTakesTheDefault) {
  goro::runtime rt{opts()};
  const int n = static_cast<int>(scaled(20000));
  std::atomic<int> defaults{0};
  goro::wait_group selects;
  selects.add(n);
  run_fibers(rt, 1, [&](std::size_t) {
    for (int i = 0; i < n; ++i) {
      chan<int> c(1);
      c.send(1);
      goro::go([c, &defaults, &selects]() mutable {
        select(on_recv(c), otherwise([&defaults] { defaults.fetch_add(1); }));
        selects.done();
      });
      c.close();
      (void)c.recv();
    }
  });
  selects.wait();
  EXPECT_EQ(defaults.load(), 0);
}

// Go's TestNonblockSelectRace and TestNonblockSelectRace2: at every instant one of c1 and c2 is
// ready (c1 holds a value until the driver takes it, after making c2 ready by a send or a
// close), so the racing non-blocking select must never take its default.
TEST_P(SelectTest, NonBlockingSelectRacingSendAndCloseNeverTakesTheDefault) {
  goro::runtime rt{opts()};
  const int n = static_cast<int>(scaled(100000));
  std::atomic<int> defaults{0};
  run_fibers(rt, 1, [&](std::size_t) {
    chan<bool> done(1);
    for (int i = 0; i < n; ++i) {
      chan<int> c1(1);
      chan<int> c2(1);
      c1.send(1);
      goro::go([c1, c2, done]() mutable {
        bool ready = true;
        select(on_recv(c1), on_recv(c2), otherwise([&ready] { ready = false; }));
        done.send(ready);
      });
      if (i % 2 == 0) {
        c2.send(1);
      } else {
        c2.close();
      }
      select(on_recv(c1), otherwise());
      if (!*done.recv()) defaults.fetch_add(1);
    }
  });
  EXPECT_EQ(defaults.load(), 0);
}

// The same race driven from a plain thread, with the racing selects on fibers.
TEST_P(SelectTest, NonBlockingSelectRaceDrivenFromAThread) {
  goro::runtime rt{opts()};
  const int n = static_cast<int>(scaled(5000));
  int defaults = 0;
  chan<bool> done(1);
  for (int i = 0; i < n; ++i) {
    chan<int> c1(1);
    chan<int> c2(1);
    c1.send(1);
    rt.go([c1, c2, done]() mutable {
      bool ready = true;
      select(on_recv(c1), on_recv(c2), otherwise([&ready] { ready = false; }));
      done.send(ready);
    });
    if (i % 2 == 0) {
      c2.send(1);
    } else {
      c2.close();
    }
    select(on_recv(c1), otherwise());
    if (!*done.recv()) ++defaults;
  }
  EXPECT_EQ(defaults, 0);
}

// A blocked select racing a close: the receive case fires with std::nullopt; a blocked send case
// throws, and its value is never received.
TEST_P(SelectTest, BlockedSelectRacingClose) {
  goro::runtime rt{opts()};
  const int rounds = static_cast<int>(scaled(2000));
  std::atomic<int> failures{0};
  std::atomic<int> threw{0};
  run_fibers(rt, 1, [&](std::size_t) {
    chan<int> never;
    for (int i = 0; i < rounds; ++i) {
      chan<int> c(i % 3 == 2 ? 1 : 0);
      if (i % 3 == 2) c.send(0);  // full: a send case blocks
      goro::wait_group wg;
      wg.add(2);
      if (i % 3 == 0) {
        goro::go([&, c]() mutable {
          bool closed = false;
          if (select(on_recv(never), on_recv(c, [&](std::optional<int> v) { closed = !v; })) != 1 ||
              !closed) {
            failures.fetch_add(1);
          }
          wg.done();
        });
      } else {
        goro::go([&, c]() mutable {
          try {
            select(on_recv(never), on_send(c, 1));
            failures.fetch_add(1);
          } catch (const goro::closed_channel_error&) {
            threw.fetch_add(1);
          }
          wg.done();
        });
      }
      goro::go([&, c]() mutable {
        c.close();
        wg.done();
      });
      wg.wait();
      int drained = 0;
      for (int v : c) {
        if (v != 0) failures.fetch_add(1);  // only the pre-filled value, never the thrown one
        ++drained;
      }
      if (drained != (i % 3 == 2 ? 1 : 0)) failures.fetch_add(1);
    }
  });
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(threw.load(), rounds - (rounds + 2) / 3);
}

// Exactly one case fires per select: over two receive and two send cases, whose partners count
// what they sent and received, the handler counts match the channel-side counts exactly.
TEST_P(SelectTest, ExactlyOneCaseFiresPerSelect) {
  goro::runtime rt{opts()};
  const int selects = static_cast<int>(scaled(100000));
  const std::array<int, 4> caps = {0, 1, 0, 3};
  std::array<chan<int>, 4> c;
  for (std::size_t i = 0; i < 4; ++i) c[i] = chan<int>(caps[i]);
  std::stop_source ss;
  // Partners: senders on c[0] and c[1], receivers on c[2] and c[3].
  std::array<long long, 4> partner_count{};
  std::array<long long, 4> partner_sum{};
  goro::wait_group partners;
  partners.add(4);
  for (std::size_t i = 0; i < 4; ++i) {
    rt.go([&, i, ch = c[i], token = ss.get_token()]() mutable {
      long long count = 0;
      long long sum = 0;
      if (i < 2) {
        for (int v = 1;; ++v) {
          if (ch.send(v, token) != chan_status::ok) break;
          ++count;
          sum += v;
        }
      } else {
        for (;;) {
          const auto r = ch.recv(token);
          if (!r) break;
          ++count;
          sum += *r.value;
        }
      }
      partner_count[i] = count;
      partner_sum[i] = sum;
      partners.done();
    });
  }
  std::array<long long, 4> handled{};
  std::array<long long, 4> handled_sum{};
  int mismatched = 0;
  run_fibers(rt, 1, [&](std::size_t) {
    for (int s = 0; s < selects; ++s) {
      int fired = 0;
      std::size_t which = 4;
      auto fire = [&](std::size_t i, long long v) {
        ++fired;
        which = i;
        handled_sum[i] += v;
      };
      const std::size_t k =
          select(on_recv(c[0], [&](std::optional<int> v) { fire(0, *v); }),
                 on_recv(c[1], [&](std::optional<int> v) { fire(1, *v); }),
                 on_send(c[2], s, [&] { fire(2, s); }), on_send(c[3], s, [&] { fire(3, s); }));
      if (fired != 1 || which != k) ++mismatched;
      if (k < 4) ++handled[k];
    }
  });
  ss.request_stop();
  partners.wait();
  // What the selects sent but nobody received yet is still buffered; what the partners sent but
  // the selects did not take likewise.
  for (std::size_t i = 0; i < 4; ++i) {
    while (auto r = c[i].try_recv()) {
      if (i < 2) {
        partner_count[i] -= 1;
        partner_sum[i] -= *r.value;
      } else {
        partner_count[i] += 1;
        partner_sum[i] += *r.value;
      }
    }
  }
  EXPECT_EQ(mismatched, 0);
  EXPECT_EQ(handled[0] + handled[1] + handled[2] + handled[3], selects);
  for (std::size_t i = 0; i < 4; ++i) {
    EXPECT_EQ(handled[i], partner_count[i]) << "case " << i;
    EXPECT_EQ(handled_sum[i], partner_sum[i]) << "case " << i;
  }
}

TEST_P(SelectTest, OnStopWakesABlockedSelect) {
  goro::runtime rt{opts()};
  for (bool from_thread : {false, true}) {
    SCOPED_TRACE(from_thread ? "from a thread" : "from a fiber");
    chan<int> c;
    chan<int> result(1);
    std::stop_source ss;
    std::atomic<bool> handler_ran{false};
    rt.go([c, result, token = ss.get_token(), &handler_ran]() mutable {
      result.send(static_cast<int>(
          select(on_recv(c), on_send(c, 1), on_stop(token, [&] { handler_ran = true; }))));
    });
    // Proves the select blocks until the stop.
    EXPECT_EQ(result.recv_for(blocked_for).status, chan_status::timeout);
    if (from_thread) {
      std::thread([&ss] { ss.request_stop(); }).join();
    } else {
      run_fibers(rt, 1, [&](std::size_t) { ss.request_stop(); });
    }
    EXPECT_EQ(result.recv(), std::optional<int>(2));
    EXPECT_TRUE(handler_ran.load());
    EXPECT_EQ(c.try_send(1), chan_status::full) << "a stale receiver is left";
    EXPECT_EQ(c.try_recv().status, chan_status::empty) << "a stale sender is left";
  }
  // Already requested: fires at once, in a fiber too.
  std::stop_source done;
  done.request_stop();
  std::atomic<std::size_t> k{9};
  run_fibers(rt, 1, [&](std::size_t) {
    chan<int> never;
    k = select(on_recv(never), on_stop(done.get_token()));
  });
  EXPECT_EQ(k.load(), 1u);
}

// The run-time form over many channels: producers each fill and close their own channel; one
// consumer selects over the channels still open, dropping each as it reports closed.
TEST_P(SelectTest, RunTimeFormOverManyChannels) {
  constexpr int n = 24;
  const int per_channel = static_cast<int>(scaled(300));
  goro::runtime rt{opts()};
  std::vector<chan<int>> chans;
  for (int i = 0; i < n; ++i) chans.emplace_back(i % 4);
  for (int i = 0; i < n; ++i) {
    rt.go([ch = chans[static_cast<std::size_t>(i)], i, per_channel]() mutable {
      for (int j = 0; j < per_channel; ++j) ch.send(i * per_channel + j);
      ch.close();
    });
  }
  long long sum = 0;
  long long count = 0;
  run_fibers(rt, 1, [&](std::size_t) {
    std::vector<int> open(n);
    for (int i = 0; i < n; ++i) open[static_cast<std::size_t>(i)] = i;
    while (!open.empty()) {
      int closed_at = -1;
      std::vector<goro::select_case> cases;
      for (std::size_t pos = 0; pos < open.size(); ++pos) {
        cases.push_back(
            on_recv(chans[static_cast<std::size_t>(open[pos])], [&, pos](std::optional<int> v) {
              if (v) {
                sum += *v;
                ++count;
              } else {
                closed_at = static_cast<int>(pos);
              }
            }));
      }
      const std::size_t k = select(std::span(cases));
      if (closed_at >= 0) {
        EXPECT_EQ(k, static_cast<std::size_t>(closed_at));
        open.erase(open.begin() + closed_at);
      }
    }
  });
  const long long total = static_cast<long long>(n) * per_channel;
  EXPECT_EQ(count, total);
  EXPECT_EQ(sum, total * (total - 1) / 2);
}

// Selects on plain threads and on fibers, on both sides of the same channels.
TEST_P(SelectTest, ThreadsAndFibersSelectOnTheSameChannels) {
  goro::runtime rt{opts()};
  const int per_party = static_cast<int>(scaled(2000));
  chan<int> a;
  chan<int> b(3);
  std::atomic<long long> sum{0};
  std::atomic<int> count{0};
  auto send_all = [a, b, per_party](int base) mutable {
    for (int i = 0; i < per_party; ++i) select(on_send(a, base + i), on_send(b, base + i));
  };
  auto recv_all = [a, b, per_party, &sum, &count]() mutable {
    for (int i = 0; i < per_party; ++i) {
      auto take = [&](std::optional<int> v) {
        sum.fetch_add(*v);
        count.fetch_add(1);
      };
      select(on_recv(a, take), on_recv(b, take));
    }
  };
  goro::wait_group fibers;
  fibers.add(2);
  rt.go([&fibers, send_all]() mutable {
    send_all(0);
    fibers.done();
  });
  rt.go([&fibers, recv_all]() mutable {
    recv_all();
    fibers.done();
  });
  std::thread sender([send_all, per_party]() mutable { send_all(per_party); });
  std::thread receiver([recv_all]() mutable { recv_all(); });
  sender.join();
  receiver.join();
  fibers.wait();
  const long long total = 2LL * per_party;
  EXPECT_EQ(count.load(), total);
  EXPECT_EQ(sum.load(), total * (total - 1) / 2);
}

INSTANTIATE_TEST_SUITE_P(Workers, SelectTest, goro_test::worker_counts(),
                         goro_test::worker_count_name);

}  // namespace
