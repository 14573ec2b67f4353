// SPDX-License-Identifier: Apache-2.0
// Adversarial tests of buffered channels in ring mode (docs/channels.md, "The ring" and its
// "Lifetime" paragraph), written as a sceptical user would, through the public API only. The ring
// is what a buffered channel made on a runtime of several workers gets by default, so the
// workers_2/4/8 instances test it and workers_1 the locked buffer (GORO_CHAN_RING=2 in the
// environment puts workers_1 in the ring too). What is attacked: an owner dropping the last
// handle the moment it sees a partner's operation done, by every partner path (lock-free,
// locked, timed, cancellable, select, blocked and served, close) and by every way the owner can
// see it (a lock-free try, a parked operation); values lost, duplicated or reordered per
// sender while timeouts, cancellations and selects make completers wake parties to retry; the
// value an unsent send keeps; lost wake-ups, with a watchdog instead of a hang; a channel used
// as a mutex and a semaphore (Go's "kth receive happens before the k+Cth send completes"); len
// and cap snapshots; selects with several cases on one ring, and a select done on one channel
// whose owner then drops its other channel; and channels never freed (a live count of the values
// they hold, besides LeakSanitizer). Sized by GORO_STRESS_SCALE. (len is not a completion
// signal: it is a snapshot, as Go's; docs/channels.md, "Lifetime".)
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <stop_token>
#include <string>
#include <thread>
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
using goro::on_stop;
using goro_test::scaled;

class ChanRingAdversarialTest : public goro_test::workers_test {};

// A size for ASan and plain builds, a quarter of it under TSan (several times slower), so the
// file runs in about 20 s under either sanitizer at GORO_STRESS_SCALE=1.
constexpr std::size_t sanitized_size(std::size_t n) {
#ifdef GORO_TEST_TSAN
  return n / 4;
#else
  return n;
#endif
}

// ---- an element type that checks its own life ------------------------------------------------

constexpr std::uint32_t alive_mark = 0xA11CE5EDu;
constexpr std::uint32_t dead_mark = 0xDEADBEEFu;

struct payload {
  int sender;
  int seq;
  std::uint32_t canary;
};

// Payloads alive now, in every item of the process: a channel never freed keeps the ones it
// buffers, so a test that ends with every channel dropped expects 0.
std::atomic<long> live_payloads{0};
// Iterations a move spins for: widens the windows in which a channel runs a move.
std::atomic<int> move_spin{0};

// A move-only value on the heap (ASan sees a double destroy, or a use after one), with a canary
// that every move and destroy checks.
class item {
 public:
  item() = default;
  item(int sender, int seq) : p_(new payload{sender, seq, alive_mark}) {
    live_payloads.fetch_add(1, std::memory_order_relaxed);
  }
  item(item&& other) noexcept : p_(std::exchange(other.p_, nullptr)) {
    check();
    for (int i = move_spin.load(std::memory_order_relaxed); i > 0; --i) {
      asm volatile("" ::: "memory");
    }
  }
  item& operator=(item&& other) noexcept {
    if (this != &other) {
      reset();
      p_ = std::exchange(other.p_, nullptr);
      check();
    }
    return *this;
  }
  ~item() { reset(); }

  bool empty() const noexcept { return p_ == nullptr; }
  int sender() const noexcept { return p_->sender; }
  int seq() const noexcept { return p_->seq; }

 private:
  void check() const noexcept {
    if (p_ != nullptr && p_->canary != alive_mark) {
      std::fprintf(stderr, "item: moved or destroyed after its destruction (canary %08x)\n",
                   p_->canary);
      std::abort();
    }
  }
  void reset() noexcept {
    if (p_ == nullptr) return;
    check();
    p_->canary = dead_mark;
    delete p_;
    p_ = nullptr;
    live_payloads.fetch_sub(1, std::memory_order_relaxed);
  }
  payload* p_ = nullptr;
};

using goro_test::await;
using goro_test::rng;

// A stop_source replaced by a fresh one each time it is triggered, so that cancellable
// operations are cancelled now and then, at random moments, all through a test: by hand, or
// every `period` from a fiber between start() and halt().
class chaos_stop {
 public:
  void start(goro::runtime& rt, std::chrono::microseconds period) {
    halting_.store(false);
    running_.add(1);
    rt.go([this, period] {
      while (!halting_.load()) {
        goro::this_fiber::sleep_for(period);
        trigger();
      }
      running_.done();
    });
  }
  void halt() {
    halting_.store(true);
    await(running_, 10s, "the chaos fiber");
  }
  std::stop_token token() {
    std::lock_guard<std::mutex> g(m_);
    return source_.get_token();
  }
  // The request runs the cancelled waits' callbacks: outside the mutex.
  void trigger() {
    std::stop_source old;
    {
      std::lock_guard<std::mutex> g(m_);
      old = std::exchange(source_, std::stop_source{});
    }
    old.request_stop();
  }

 private:
  std::mutex m_;  // held for a few instructions, never across a fiber switch
  std::stop_source source_;
  std::atomic<bool> halting_{false};
  goro::wait_group running_;
};

// Sends v on ch in one of five ways drawn from r: plain, try, timed (up to max_wait), cancellable
// by chaos, or a select whose other cases are a receive from `never` and chaos's stop. Returns
// what the way returned: ok, or why the send did not happen (v then kept).
chan_status send_some_way(const chan<item>& ch, item&& v, rng& r,
                          std::chrono::microseconds max_wait, chaos_stop& chaos,
                          const chan<item>& never) {
  switch (r.below(5)) {
    case 0: ch.send(std::move(v)); return chan_status::ok;
    case 1: return ch.try_send(std::move(v));
    case 2:
      return ch.send_for(std::move(v), std::chrono::microseconds(
                                           r.below(static_cast<std::uint32_t>(max_wait.count()))));
    case 3: return ch.send(std::move(v), chaos.token());
    default:
      return goro::select(on_send(ch, std::move(v)), on_recv(never), on_stop(chaos.token())) == 0
                 ? chan_status::ok
                 : chan_status::cancelled;
  }
}

// Receives from ch in one of four ways drawn from r (plain, try, timed up to max_wait,
// cancellable by chaos), or five where `never` is given: a select with a receive from it and
// chaos's stop.
goro::recv_result<item> recv_some_way(const chan<item>& ch, rng& r,
                                      std::chrono::microseconds max_wait, chaos_stop& chaos,
                                      const chan<item>* never = nullptr) {
  switch (r.below(never != nullptr ? 5 : 4)) {
    case 0: {
      std::optional<item> v = ch.recv();
      const chan_status st = v ? chan_status::ok : chan_status::closed;
      return {std::move(v), st};
    }
    case 1: return ch.try_recv();
    case 2:
      return ch.recv_for(
          std::chrono::microseconds(r.below(static_cast<std::uint32_t>(max_wait.count()))));
    case 3: return ch.recv(chaos.token());
    default: {
      goro::recv_result<item> res{std::nullopt, chan_status::cancelled};
      if (goro::select(on_recv(ch,
                               [&](std::optional<item> x) {
                                 res.status = x ? chan_status::ok : chan_status::closed;
                                 res.value = std::move(x);
                               }),
                       on_recv(*never), on_stop(chaos.token())) != 0) {
        res.status = chan_status::cancelled;
      }
      return res;
    }
  }
}

// A lock-free try, repeated a few times with a yield between, then the blocking form. A fiber
// that only tries and yields never parks: on an oversubscribed machine a few such fibers keep
// every worker busy, and progress (and every timer, goro having no preemption) then crawls.
template <class T>
goro::recv_result<T> recv_trying_first(const chan<T>& c) {
  for (int i = 0; i < 4; ++i) {
    goro::recv_result<T> v = c.try_recv();
    if (v.status != chan_status::empty) return v;
    goro::this_fiber::yield();
  }
  std::optional<T> v = c.recv();
  const chan_status st = v ? chan_status::ok : chan_status::closed;
  return {std::move(v), st};
}
template <class T>
void send_trying_first(const chan<T>& c, T&& v) {
  for (int i = 0; i < 4; ++i) {
    if (c.try_send(std::move(v)) == chan_status::ok) return;
    goro::this_fiber::yield();
  }
  c.send(std::move(v));
}

// ---- lifetime: the owner drops the channel the moment it sees the partner's operation done ---

// How the partner, reaching the channel by pointer, completes its operation. The *_blocked ones
// find the ring full (a send) or empty (a receive) unless the owner got there first, and so
// wait, to be served by the owner's own operation.
enum class partner_op {
  send,
  send_for,
  send_stop,
  try_send,
  select_send,       // pass 1 of a select, under the locks
  select_send_stop,  // a select with a stop case: it waits unlocked, with a claim
  send_blocked,
  send_for_blocked,
  select_send_blocked,
  recv,
  recv_for,
  recv_stop,
  try_recv,
  select_recv,
  recv_blocked,
  recv_for_blocked,
  select_recv_blocked,
  close,
  count,
};

bool is_send(partner_op op) { return op <= partner_op::select_send_blocked; }
bool is_blocked(partner_op op) {
  return op == partner_op::send_blocked || op == partner_op::send_for_blocked ||
         op == partner_op::select_send_blocked || op == partner_op::recv_blocked ||
         op == partner_op::recv_for_blocked || op == partner_op::select_recv_blocked;
}

// The partner's side. `never` is a ring channel that stays empty: a second case for selects.
void run_partner(partner_op op, const chan<item>& c, const chan<item>& never, int round) {
  const std::stop_token no_stop;  // never triggered: the stop forms of the operations
  switch (op) {
    case partner_op::send:
    case partner_op::send_blocked: c.send(item(1, round)); break;
    case partner_op::send_for:
    case partner_op::send_for_blocked:
      EXPECT_EQ(c.send_for(item(1, round), 30s), chan_status::ok);
      break;
    case partner_op::send_stop: EXPECT_EQ(c.send(item(1, round), no_stop), chan_status::ok); break;
    case partner_op::try_send: {
      item v(1, round);
      while (c.try_send(std::move(v)) != chan_status::ok) {
      }
      break;
    }
    case partner_op::select_send:
    case partner_op::select_send_blocked:
      EXPECT_EQ(goro::select(on_send(c, item(1, round)), on_recv(never)), 0U);
      break;
    case partner_op::select_send_stop:
      EXPECT_EQ(goro::select(on_send(c, item(1, round)), on_stop(no_stop)), 0U);
      break;
    case partner_op::recv:
    case partner_op::recv_blocked: {
      std::optional<item> v = c.recv();
      EXPECT_TRUE(v && v->seq() == round);
      break;
    }
    case partner_op::recv_for:
    case partner_op::recv_for_blocked: {
      goro::recv_result<item> v = c.recv_for(30s);
      EXPECT_TRUE(v && v.value->seq() == round);
      break;
    }
    case partner_op::recv_stop: {
      goro::recv_result<item> v = c.recv(no_stop);
      EXPECT_TRUE(v && v.value->seq() == round);
      break;
    }
    case partner_op::try_recv: {
      goro::recv_result<item> v = c.try_recv();
      while (!v) v = c.try_recv();
      EXPECT_EQ(v.value->seq(), round);
      break;
    }
    case partner_op::select_recv:
    case partner_op::select_recv_blocked: {
      bool ok = false;
      goro::select(on_recv(c, [&](std::optional<item> v) { ok = v && v->seq() == round; }),
                   on_recv(never));
      EXPECT_TRUE(ok);
      break;
    }
    case partner_op::close: c.close(); break;
    case partner_op::count: break;
  }
}

// How the owner waits to see the partner's operation done: spinning on lock-free tries, or
// parked in a plain, a select or a timed operation (which the partner's operation completes).
enum class owner_wait { spin, block, select, timed, count };

// The owner's side, after handing the channel over: returns once it has seen the partner's
// operation done; its caller then drops the channel at once. `never` stays empty.
void run_owner(partner_op op, const chan<item>& c, const chan<item>& never, owner_wait how,
               int round) {
  auto take = [&]() -> std::optional<item> {  // std::nullopt: closed
    switch (how) {
      case owner_wait::spin: {
        goro::recv_result<item> v = c.try_recv();
        while (v.status == chan_status::empty) v = c.try_recv();
        return std::move(v.value);
      }
      case owner_wait::block: return c.recv();
      case owner_wait::select: {
        std::optional<item> v;
        goro::select(on_recv(c, [&](std::optional<item> x) { v = std::move(x); }), on_recv(never));
        return v;
      }
      case owner_wait::timed:
      case owner_wait::count: break;
    }
    goro::recv_result<item> v = c.recv_for(30s);
    EXPECT_NE(v.status, chan_status::timeout);
    return std::move(v.value);
  };
  auto put = [&](int seq) {
    switch (how) {
      case owner_wait::spin:
        while (c.try_send(item(0, seq)) != chan_status::ok) {
        }
        return;
      case owner_wait::block: c.send(item(0, seq)); return;
      case owner_wait::select: goro::select(on_send(c, item(0, seq)), on_recv(never)); return;
      case owner_wait::timed:
      case owner_wait::count: break;
    }
    EXPECT_EQ(c.send_for(item(0, seq), 30s), chan_status::ok);
  };
  auto expect_take = [&](int seq) {
    std::optional<item> v = take();
    ASSERT_TRUE(v.has_value());
    EXPECT_EQ(v->seq(), seq);
  };
  if (op == partner_op::close) {
    EXPECT_FALSE(take().has_value());
  } else if (is_send(op)) {
    if (is_blocked(op)) expect_take(-1);  // the value the owner buffered first
    expect_take(round);                   // the partner's
  } else if (is_blocked(op)) {
    put(round);  // into an empty ring: at once
    put(-2);     // done once the partner has taken the first
  } else {
    put(-2);  // the ring holds the owner's first value: done once the partner has taken it
  }
}

// Every partner path against every owner wait, the partner on a fiber and on a plain thread.
// Each round makes a channel of capacity 1, owned by a unique_ptr; the partner gets a plain
// pointer, and the owner resets the unique_ptr as soon as run_owner returns. ASan (a heap use
// after free) or TSan (a race with the delete) reports any touch of the channel after that; a
// reference never dropped leaves the channel and the value it buffers (live_payloads), and
// LeakSanitizer reports it at exit. Spinning owners need a second worker.
TEST_P(ChanRingAdversarialTest, OwnerDropsAfterEveryPartnerPathAndEveryWayOfSeeingIt) {
  constexpr int ops = static_cast<int>(partner_op::count);
  constexpr int waits = static_cast<int>(owner_wait::count);
  const int rounds = static_cast<int>(scaled(sanitized_size(ops * waits * 8)));
  const long live_before = live_payloads.load();
  for (bool partner_on_thread : {false, true}) {
    SCOPED_TRACE(partner_on_thread ? "partner on a thread" : "partner on a fiber");
    goro::runtime rt{opts()};
    chan<item> never(1);
    chan<chan<item>*> handoff;  // unbuffered
    auto partner = [&] {
      for (int i = 0; i < rounds; ++i) {
        chan<item>* const c = *handoff.recv();
        run_partner(static_cast<partner_op>(i % ops), *c, never, i);
      }
    };
    goro::wait_group done;
    done.add(partner_on_thread ? 1 : 2);
    std::thread partner_thread;
    if (partner_on_thread) {
      partner_thread = std::thread(partner);
    } else {
      rt.go([&] {
        partner();
        done.done();
      });
    }
    rt.go([&] {
      for (int i = 0; i < rounds; ++i) {
        const auto op = static_cast<partner_op>(i % ops);
        auto how = static_cast<owner_wait>((i / ops) % waits);
        if (how == owner_wait::spin && workers() < 2) how = owner_wait::block;
        auto c = std::make_unique<chan<item>>(1);
        if (is_send(op) && is_blocked(op)) c->send(item(0, -1));  // full: the partner waits
        if (!is_send(op) && !is_blocked(op) && op != partner_op::close) {
          c->send(item(0, i));  // what the partner receives, lock-free
        }
        handoff.send(c.get());
        run_owner(op, *c, never, how, i);
        c.reset();
      }
      done.done();
    });
    await(done, 120s, "the owner or the partner");
    if (partner_thread.joinable()) partner_thread.join();
  }
  EXPECT_EQ(live_payloads.load(), live_before) << "values (and so channels) never freed";
}

// The run-time select (std::span<select_case>), whose cases keep handles of their own, and
// selects with several cases on one ring, as partners of owners that drop at once.
TEST_P(ChanRingAdversarialTest, OwnerDropsAfterRuntimeSelectWithDuplicateCases) {
  const int rounds = static_cast<int>(scaled(300));
  const long live_before = live_payloads.load();
  {
    goro::runtime rt{opts()};
    chan<chan<item>*> handoff;
    goro::wait_group done;
    done.add(2);
    rt.go([&] {
      for (int i = 0; i < rounds; ++i) {
        chan<item>* const c = *handoff.recv();
        if (i % 2 == 0) {
          // Two receive cases and a send case on the one channel (full: only a receive is ready).
          std::vector<goro::select_case> cases;
          cases.emplace_back(on_recv(*c));
          cases.emplace_back(on_send(*c, item(1, i)));
          cases.emplace_back(on_recv(*c));
          const std::size_t k = goro::select(std::span<goro::select_case>(cases));
          EXPECT_NE(k, 1U);
        } else {
          // A send case twice on one empty channel of capacity 1: exactly one is performed.
          const std::size_t k = goro::select(on_send(*c, item(1, i)), on_send(*c, item(2, i)));
          EXPECT_LT(k, 2U);
        }
      }
      done.done();
    });
    rt.go([&] {
      for (int i = 0; i < rounds; ++i) {
        auto c = std::make_unique<chan<item>>(1);
        if (i % 2 == 0) c->send(item(0, i));
        handoff.send(c.get());
        if (i % 2 == 0) {
          if (workers() > 1) {
            while (c->try_send(item(0, -1)) != chan_status::ok) {
            }
          } else {
            c->send(item(0, -1));
          }
        } else {
          std::optional<item> v = c->recv();
          ASSERT_TRUE(v.has_value());
          EXPECT_EQ(v->seq(), i);
        }
        c.reset();
      }
      done.done();
    });
    await(done, 120s, "the owner or the partner");
  }
  EXPECT_EQ(live_payloads.load(), live_before);
}

// A select reaches two channels by pointer, c and d, and completes on d, which is unbuffered:
// on even rounds d's owner sends (the select receives), on odd ones it receives (the select
// sends). Either way the owner sees the select's operation done when its own returns, and then
// drops both channels at once; the select must touch neither after that moment. c is buffered
// with capacity c_capacity (in ring mode on several workers, where the select holds a
// reference to it), or unbuffered if 0 (the locked path).
void select_done_on_one_channel_owner_drops_the_other(goro::runtime& rt, std::size_t c_capacity,
                                                      int rounds) {
  chan<std::pair<chan<item>*, chan<item>*>> handoff;
  goro::wait_group done;
  done.add(2);
  rt.go([&] {
    for (int i = 0; i < rounds; ++i) {
      auto [c, d] = *handoff.recv();
      if (i % 2 == 0) {
        std::optional<item> got;
        EXPECT_EQ(goro::select(on_recv(*c),
                               on_recv(*d, [&](std::optional<item> v) { got = std::move(v); })),
                  1U);
        EXPECT_TRUE(got && got->seq() == i);
      } else {
        EXPECT_EQ(goro::select(on_recv(*c), on_send(*d, item(1, i))), 1U);
      }
    }
    done.done();
  });
  rt.go([&] {
    for (int i = 0; i < rounds; ++i) {
      auto c = std::make_unique<chan<item>>(c_capacity);
      auto d = std::make_unique<chan<item>>();
      handoff.send({c.get(), d.get()});
      // Proves nothing; makes it likely, every other pair of rounds, that the select parks on
      // both channels first (and then runs its last pass), which the test tolerates not being so.
      if (i % 4 < 2) goro::this_fiber::sleep_for(20us);
      if (i % 2 == 0) {
        d->send(item(0, i));  // returns once the select has taken it
      } else {
        std::optional<item> v = d->recv();  // returns once the select's send is done
        EXPECT_TRUE(v && v->seq() == i);
      }
      c.reset();
      d.reset();
    }
    done.done();
  });
  await(done, 60s, "the select or its owner");
}

// c buffered: in ring mode on several workers. Failed under ASan and TSan on every run before
// the fix: ~channel_locks asked every channel of the select, d included, whether it was in ring
// mode, after the select was done and d's owner had freed it (select.cpp keeps a list of the
// ring channels it holds references to since).
TEST_P(ChanRingAdversarialTest, SelectDoneOnOneChannelWhileItsOwnerDropsTheOther) {
  if (workers() < 2) GTEST_SKIP() << "the buffered channel is on the locked path: see below";
  goro::runtime rt{opts()};
  select_done_on_one_channel_owner_drops_the_other(rt, 1, static_cast<int>(scaled(400)));
}

// The same with c unbuffered (the locked path). Failed under ASan on every run, at every worker
// count, before the fix: the select's last pass locked c to unlink its entry after the owner,
// having seen the select done on d, had freed c (a Go program's quit channel). Older than the
// ring; a parked select now counts itself on every channel it will lock again, and the last
// handle's drop leaves the delete to it (docs/select.md, "Lifetime").
TEST_P(ChanRingAdversarialTest, SelectDoneOnOneChannelWhileItsOwnerDropsTheOtherLocked) {
  goro::runtime rt{opts()};
  select_done_on_one_channel_owner_drops_the_other(rt, 0, static_cast<int>(scaled(400)));
}

// ---- values: conserved, in order per sender, kept when unsent -----------------------------

// Four senders and four receivers on two small rings, every form of send and receive mixed at
// random: plain, try, timed with timeouts of a few microseconds, cancellable with a stop that a
// chaos fiber triggers every few microseconds, and selects over both rings and a stop. Timeouts,
// cancellations and selects are what make a completer that lost its value (or room) to a
// lock-free party wake its waiter to retry. Checks: a send that did not happen left its value
// intact (and is retried with the same value, so each sender's sequence stays in order); every
// value whose send succeeded is received exactly once; each receiver sees each sender's values
// in increasing order; nothing received that was not sent; no value leaks.
TEST_P(ChanRingAdversarialTest, ValuesConservedAndInOrderUnderRetryChurn) {
  constexpr int senders = 4;
  constexpr int receivers = 4;
  const int per_sender = static_cast<int>(scaled(3000));
  const long live_before = live_payloads.load();
  {
    goro::runtime rt{opts()};
    chan<item> a(1);
    chan<item> b(2);
    chan<item> quiet(1);  // stays empty
    chaos_stop chaos;
    std::vector<std::atomic<std::uint8_t>> seen(static_cast<std::size_t>(senders) * per_sender);
    std::atomic<int> duplicates{0};
    std::atomic<int> order_errors{0};
    std::atomic<int> damaged_unsent{0};
    std::atomic<long> received{0};
    goro::wait_group sent;
    goro::wait_group drained;
    sent.add(senders);
    drained.add(receivers);
    chaos.start(rt, 20us);
    for (int s = 0; s < senders; ++s) {
      rt.go([&, s] {
        rng r(static_cast<std::uint64_t>(s) + 1);
        const chan<item>& mine = s % 2 == 0 ? a : b;
        for (int i = 0; i < per_sender; ++i) {
          item v(s, i);
          for (;;) {
            chan_status st = chan_status::ok;
            switch (r.below(6)) {
              case 0: mine.send(std::move(v)); break;
              case 1: st = mine.try_send(std::move(v)); break;
              case 2:
                st = mine.send_for(std::move(v), std::chrono::microseconds(r.below(30)));
                break;
              case 3: st = mine.send(std::move(v), chaos.token()); break;
              case 4:
                // Both rings locked together (in address order), the other one's case a
                // receive from a ring that stays empty.
                if (goro::select(on_send(mine, std::move(v)), on_recv(quiet),
                                 on_stop(chaos.token())) != 0) {
                  st = chan_status::cancelled;
                }
                break;
              default: {
                const std::size_t k =
                    goro::select(on_send(mine, std::move(v)), on_stop(chaos.token()));
                if (k != 0) st = chan_status::cancelled;
                break;
              }
            }
            if (st == chan_status::ok) break;
            if (v.empty() || v.sender() != s || v.seq() != i) {
              damaged_unsent.fetch_add(1);
              v = item(s, i);
            }
            if (r.below(4) == 0) goro::this_fiber::yield();
          }
        }
        sent.done();
      });
    }
    for (int q = 0; q < receivers; ++q) {
      rt.go([&, q] {
        rng r(static_cast<std::uint64_t>(q) + 100);
        std::vector<int> last(senders, -1);
        chan<item> ra = a;
        chan<item> rb = b;
        auto got = [&](item& v) {
          const std::size_t idx = static_cast<std::size_t>(v.sender()) * per_sender + v.seq();
          if (seen[idx].exchange(1) != 0) duplicates.fetch_add(1);
          received.fetch_add(1);
          if (v.seq() <= last[v.sender()]) order_errors.fetch_add(1);
          last[v.sender()] = v.seq();
        };
        while (ra || rb) {
          // Each receiver's own ring for the one-channel forms (a receiver parked on a ring
          // whose senders are done would wait for the close, and starve the other ring), and
          // both in a select.
          chan<item>& c = !ra ? rb : !rb ? ra : (q % 2 == 0 ? ra : rb);
          goro::recv_result<item> res{std::nullopt, chan_status::empty};
          switch (r.below(6)) {
            case 0: {
              std::optional<item> v = c.recv();
              res = {std::move(v), chan_status::ok};
              if (!res.value) res.status = chan_status::closed;
              break;
            }
            case 1: res = c.try_recv(); break;
            case 2: res = c.recv_for(std::chrono::microseconds(r.below(30))); break;
            case 3: res = c.recv(chaos.token()); break;
            default: {
              // Both rings (a nil handle for one already closed never fires) and a stop.
              int which = -1;
              std::optional<item> v;
              const std::size_t k = goro::select(on_recv(ra,
                                                         [&](std::optional<item> x) {
                                                           which = 0;
                                                           v = std::move(x);
                                                         }),
                                                 on_recv(rb,
                                                         [&](std::optional<item> x) {
                                                           which = 1;
                                                           v = std::move(x);
                                                         }),
                                                 on_stop(chaos.token()));
              if (k == 2) {
                res.status = chan_status::cancelled;
              } else if (v) {
                res = {std::move(v), chan_status::ok};
              } else {
                (which == 0 ? ra : rb) = nullptr;  // closed and drained
              }
              break;
            }
          }
          if (res.status == chan_status::ok) {
            got(*res.value);
          } else if (res.status == chan_status::closed) {
            c = nullptr;
          } else if (res.status == chan_status::empty) {
            goro::this_fiber::yield();
          }
        }
        drained.done();
      });
    }
    await(sent, 120s, "the senders");
    chaos.halt();
    a.close();
    b.close();
    await(drained, 60s, "the receivers, after the close");
    EXPECT_EQ(duplicates.load(), 0);
    EXPECT_EQ(order_errors.load(), 0) << "a receiver saw a sender's values out of order";
    EXPECT_EQ(damaged_unsent.load(), 0) << "a send that did not happen changed its value";
    EXPECT_EQ(received.load(), static_cast<long>(senders) * per_sender);
    for (std::size_t v = 0; v < seen.size(); ++v) {
      ASSERT_EQ(seen[v].load(), 1) << "value " << v << " lost";
    }
  }
  EXPECT_EQ(live_payloads.load(), live_before);
}

// Per-sender FIFO, checked strictly: senders use every form of send (retrying an unsent value),
// receivers every form of receive on one ring each, so no value ever goes back. Each receiver
// must see each sender's sequence numbers strictly increasing.
TEST_P(ChanRingAdversarialTest, FifoPerSenderWithEverySendForm) {
  constexpr int senders = 4;
  constexpr int receivers = 3;
  const int per_sender = static_cast<int>(scaled(4000));
  const long live_before = live_payloads.load();
  {
    goro::runtime rt{opts()};
    for (int cap : {1, 3}) {
      SCOPED_TRACE(cap);
      chan<item> ch(cap);
      chan<item> never(1);
      chaos_stop chaos;
      std::atomic<int> order_errors{0};
      std::atomic<long> received{0};
      goro::wait_group sent;
      goro::wait_group drained;
      sent.add(senders);
      drained.add(receivers);
      chaos.start(rt, 30us);
      for (int s = 0; s < senders; ++s) {
        rt.go([&, s] {
          rng r(static_cast<std::uint64_t>(s) + 7);
          for (int i = 0; i < per_sender; ++i) {
            item v(s, i);
            for (;;) {
              const chan_status st = send_some_way(ch, std::move(v), r, 20us, chaos, never);
              if (st == chan_status::ok) break;
              ASSERT_FALSE(v.empty());
              ASSERT_EQ(v.seq(), i);
            }
          }
          sent.done();
        });
      }
      for (int q = 0; q < receivers; ++q) {
        rt.go([&, q] {
          rng r(static_cast<std::uint64_t>(q) + 77);
          std::vector<int> last(senders, -1);
          for (;;) {
            goro::recv_result<item> res = recv_some_way(ch, r, 20us, chaos, &never);
            if (res.status == chan_status::closed) break;
            if (res.status != chan_status::ok) continue;
            const item& v = *res.value;
            if (v.seq() <= last[v.sender()]) order_errors.fetch_add(1);
            last[v.sender()] = v.seq();
            received.fetch_add(1);
          }
          drained.done();
        });
      }
      await(sent, 120s, "the senders");
      ch.close();
      await(drained, 60s, "the receivers, after the close");
      chaos.halt();
      EXPECT_EQ(order_errors.load(), 0);
      EXPECT_EQ(received.load(), static_cast<long>(senders) * per_sender);
    }
  }
  EXPECT_EQ(live_payloads.load(), live_before);
}

// Aimed at the retry path: on a ring of capacity 1, lock-free triers (try_recv, try_send) race
// parked parties that can be claimed by something else (selects over two rings, timed and
// cancellable operations), so a completer often claims a parked party and then finds the value
// (or the room) already taken by a trier: the party is woken to start over. Receive side and
// send side in turn. Every value is received exactly once; an unsent value is kept.
TEST_P(ChanRingAdversarialTest, RetryStormKeepsValuesExactlyOnce) {
  const int per_sender = static_cast<int>(scaled(sanitized_size(4000)));
  const long live_before = live_payloads.load();
  {
    goro::runtime rt{opts()};
    chaos_stop chaos;
    for (int side = 0; side < 2; ++side) {
      SCOPED_TRACE(side == 0 ? "parked receivers" : "parked senders");
      chan<item> ch(1);
      chan<item> other(1);  // a second ring for the selects; stays empty
      constexpr int senders = 3;
      constexpr int receivers = 3;
      std::vector<std::atomic<std::uint8_t>> seen(static_cast<std::size_t>(senders) * per_sender);
      std::atomic<int> duplicates{0};
      std::atomic<int> damaged{0};
      std::atomic<long> received{0};
      goro::wait_group sent;
      goro::wait_group drained;
      sent.add(senders);
      drained.add(receivers);
      chaos.start(rt, 50us);
      for (int s = 0; s < senders; ++s) {
        rt.go([&, s] {
          rng r(static_cast<std::uint64_t>(s) + 300);
          // Side 1: senders 1 and 2 park (a select, a timed send); sender 0 tries lock-free.
          const int form = side == 0 ? 0 : s;
          for (int i = 0; i < per_sender; ++i) {
            item v(s, i);
            for (;;) {
              chan_status st = chan_status::ok;
              if (form == 0) {
                send_trying_first(ch, std::move(v));
              } else if (form == 1) {
                if (goro::select(on_send(ch, std::move(v)), on_recv(other),
                                 on_stop(chaos.token())) != 0) {
                  st = chan_status::cancelled;
                }
              } else {
                st = ch.send_for(std::move(v), std::chrono::microseconds(20 + r.below(200)));
              }
              if (st == chan_status::ok) break;
              if (v.empty() || v.seq() != i) {
                damaged.fetch_add(1);
                v = item(s, i);
              }
            }
          }
          sent.done();
        });
      }
      for (int q = 0; q < receivers; ++q) {
        rt.go([&, q] {
          rng r(static_cast<std::uint64_t>(q) + 400);
          // Side 0: receivers 1 and 2 park (a select, a timed receive); receiver 0 tries.
          const int form = side == 0 ? q : 0;
          for (;;) {
            std::optional<item> v;
            bool closed = false;
            if (form == 0) {
              goro::recv_result<item> x = recv_trying_first(ch);
              closed = x.status == chan_status::closed;
              v = std::move(x.value);
            } else if (form == 1) {
              goro::select(on_recv(ch,
                                   [&](std::optional<item> x) {
                                     closed = !x;
                                     v = std::move(x);
                                   }),
                           on_recv(other), on_stop(chaos.token()));
            } else {
              goro::recv_result<item> x = ch.recv_for(std::chrono::microseconds(20 + r.below(200)));
              closed = x.status == chan_status::closed;
              v = std::move(x.value);
            }
            if (closed) break;
            if (!v) continue;
            const std::size_t idx = static_cast<std::size_t>(v->sender()) * per_sender + v->seq();
            if (seen[idx].exchange(1) != 0) duplicates.fetch_add(1);
            received.fetch_add(1);
          }
          drained.done();
        });
      }
      await(sent, 120s, "the senders");
      ch.close();
      await(drained, 60s, "the receivers, after the close");
      chaos.halt();
      EXPECT_EQ(duplicates.load(), 0);
      EXPECT_EQ(damaged.load(), 0);
      EXPECT_EQ(received.load(), static_cast<long>(senders) * per_sender);
    }
  }
  EXPECT_EQ(live_payloads.load(), live_before);
}

// ---- no lost wake-up ------------------------------------------------------------------------

// Only plain blocking operations and selects without a timeout or a default: a lost wake-up
// cannot be covered by a timeout's retry. Phase 1: more receivers than values ever buffered,
// parked on an empty ring while senders push in bursts. Phase 2: more senders than room,
// parked on a full ring while receivers drain in bursts. A watchdog: if progress stops for 3 s,
// the test prints len and the counts (a value left in the ring while receivers are parked, or
// room left while senders are) and every fiber, and aborts.
TEST_P(ChanRingAdversarialTest, NoLostWakeUpWithOnlyPlainBlockingParties) {
  const int per_party = static_cast<int>(scaled(1500));
  goro::runtime rt{opts()};
  for (int phase = 0; phase < 2; ++phase) {
    SCOPED_TRACE(phase);
    for (int cap : {1, 4}) {
      SCOPED_TRACE(cap);
      chan<long> ch(cap);
      chan<long> never(1);
      const int many = 6;
      const int few = 2;
      const int n_senders = phase == 0 ? few : many;
      const int n_receivers = phase == 0 ? many : few;
      const long total = static_cast<long>(per_party) * many;  // every value sent
      std::atomic<long> received{0};
      std::atomic<long> sum{0};
      goro::wait_group done;
      done.add(n_senders + n_receivers);
      for (int s = 0; s < n_senders; ++s) {
        rt.go([&, s] {
          rng r(static_cast<std::uint64_t>(s) + 5);
          const long mine = total / n_senders;
          for (long i = 0; i < mine; ++i) {
            if (r.below(3) == 0) {
              goro::select(on_send(ch, i), on_recv(never));
            } else {
              ch.send(i);
            }
            if (r.below(16) == 0) goro::this_fiber::yield();  // bursts
          }
          done.done();
        });
      }
      for (int q = 0; q < n_receivers; ++q) {
        rt.go([&, q] {
          rng r(static_cast<std::uint64_t>(q) + 50);
          for (;;) {
            std::optional<long> v;
            if (r.below(3) == 0) {
              goro::select(on_recv(ch, [&](std::optional<long> x) { v = x; }), on_recv(never));
            } else {
              v = ch.recv();
            }
            if (!v) break;
            sum.fetch_add(*v);
            if (received.fetch_add(1) + 1 == total) ch.close();
            if (r.below(16) == 0) goro::this_fiber::yield();
          }
          done.done();
        });
      }
      long last_seen = -1;
      while (!done.wait_for(3s)) {
        const long now = received.load();
        if (now == last_seen) {
          std::cerr << "no progress for 3 s: received " << now << " of " << total << ", len "
                    << ch.size() << " of cap " << ch.capacity() << "\n";
          goro::dump(std::cerr);
          std::abort();
        }
        last_seen = now;
      }
      EXPECT_EQ(received.load(), total);
      const long per = total / n_senders;
      EXPECT_EQ(sum.load(), static_cast<long>(n_senders) * per * (per - 1) / 2);
    }
  }
}

// ---- Go's memory model: a channel as a mutex, and as a counting semaphore ------------------

// "The kth receive on a channel with capacity C is synchronized before the completion of the
// k+Cth send from that channel." With C = 1 the channel is a mutex (send = lock, receive =
// unlock): a plain counter incremented inside is race-free (TSan checks the happens-before) and
// exact; with C = 3, at most 3 parties are inside at once. Every form of send and receive, at
// random, so the k+Cth send completes by each path (lock-free, served while parked, taken
// directly, under a select's locks).
TEST_P(ChanRingAdversarialTest, ChannelAsMutexAndSemaphore) {
  const int per_fiber = static_cast<int>(scaled(1500));
  constexpr int fibers = 6;
  goro::runtime rt{opts()};
  for (int cap : {1, 3}) {
    SCOPED_TRACE(cap);
    chan<int> sem(cap);
    chan<int> never(1);
    long counter = 0;  // guarded by sem when cap == 1
    std::atomic<int> inside{0};
    std::atomic<int> max_inside{0};
    goro::wait_group done;
    done.add(fibers);
    for (int f = 0; f < fibers; ++f) {
      rt.go([&, f] {
        rng r(static_cast<std::uint64_t>(f) + 11);
        for (int i = 0; i < per_fiber; ++i) {
          switch (r.below(4)) {  // acquire
            case 0: sem.send(f); break;
            case 1: send_trying_first(sem, int{f}); break;
            case 2:
              while (sem.send_for(f, std::chrono::microseconds(r.below(20))) != chan_status::ok) {
              }
              break;
            default: goro::select(on_send(sem, f), on_recv(never)); break;
          }
          const int now = inside.fetch_add(1) + 1;
          int prev = max_inside.load();
          while (now > prev && !max_inside.compare_exchange_weak(prev, now)) {
          }
          if (cap == 1) ++counter;
          if (r.below(8) == 0) goro::this_fiber::yield();
          inside.fetch_sub(1);
          switch (r.below(4)) {  // release: a value is buffered, so none of these waits long
            case 0: EXPECT_TRUE(sem.recv().has_value()); break;
            case 1: {
              EXPECT_TRUE(recv_trying_first(sem));
              break;
            }
            case 2: {
              goro::recv_result<int> v = sem.recv_for(30s);
              EXPECT_TRUE(v);
              break;
            }
            default: goro::select(on_recv(sem), on_recv(never)); break;
          }
        }
        done.done();
      });
    }
    await(done, 120s, "the semaphore's users");
    EXPECT_LE(max_inside.load(), cap);
    if (cap == 1) {
      EXPECT_EQ(counter, static_cast<long>(fibers) * per_fiber);
    }
    EXPECT_EQ(sem.size(), 0U);
  }
}

// "A close happens-before a receive that observes it": the closer writes a plain variable
// before closing; every receiver that sees the close, by any form, reads it (TSan checks). And
// a send's plain writes before it happen-before the receive of its value (a pointer to them).
TEST_P(ChanRingAdversarialTest, CloseAndSendHappenBeforeTheirObservers) {
  const int rounds = static_cast<int>(scaled(300));
  goro::runtime rt{opts()};
  for (int round = 0; round < rounds; ++round) {
    chan<long*> ch(1 + round % 3);
    long before_close = 0;
    std::atomic<int> wrong{0};
    goro::wait_group done;
    done.add(4);
    for (int q = 0; q < 3; ++q) {
      rt.go([&, q] {
        for (;;) {
          goro::recv_result<long*> v{std::nullopt, chan_status::empty};
          switch (q) {
            case 0: v = recv_trying_first(ch); break;
            case 1: v = ch.recv_for(30s); break;
            default: {
              std::optional<long*> x = ch.recv();
              v = {x, x ? chan_status::ok : chan_status::closed};
              break;
            }
          }
          if (v.status == chan_status::closed) {
            if (before_close != 42) wrong.fetch_add(1);
            break;
          }
          if (v) {
            if (**v.value != 7) wrong.fetch_add(1);
            delete *v.value;
          }
        }
        done.done();
      });
    }
    rt.go([&] {
      for (int i = 0; i < 4; ++i) ch.send(new long(7));
      before_close = 42;
      ch.close();
      done.done();
    });
    await(done, 60s, "the receivers and the closer");
    EXPECT_EQ(wrong.load(), 0);
  }
}

// ---- len and cap ------------------------------------------------------------------------------

// While senders and receivers churn, len stays within [0, cap] and cap never changes; once
// quiet, len is exact; after close it counts what is left, then 0 once drained.
TEST_P(ChanRingAdversarialTest, LenAndCapSnapshots) {
  const int per_sender = static_cast<int>(scaled(5000));
  goro::runtime rt{opts()};
  for (int cap : {1, 2, 5}) {
    SCOPED_TRACE(cap);
    chan<int> ch(cap);
    std::atomic<bool> stop{false};
    std::atomic<int> bad{0};
    goro::wait_group done;
    goro::wait_group sampler;
    done.add(4);
    sampler.add(1);
    rt.go([&] {
      while (!stop.load()) {
        const std::size_t n = ch.size();
        if (n > static_cast<std::size_t>(cap) || ch.capacity() != static_cast<std::size_t>(cap)) {
          bad.fetch_add(1);
        }
        goro::this_fiber::yield();
      }
      sampler.done();
    });
    for (int s = 0; s < 2; ++s) {
      rt.go([&] {
        for (int i = 0; i < per_sender; ++i) ch.send(i);
        done.done();
      });
      rt.go([&] {
        for (int i = 0; i < per_sender; ++i) {
          if (i % 2 == 0) {
            EXPECT_TRUE(ch.recv().has_value());
          } else {
            EXPECT_TRUE(recv_trying_first(ch));
          }
        }
        done.done();
      });
    }
    await(done, 120s, "the senders and receivers");
    stop.store(true);
    await(sampler, 10s, "the sampler");
    EXPECT_EQ(bad.load(), 0);
    EXPECT_EQ(ch.size(), 0U);
    for (int i = 0; i < cap; ++i) {
      EXPECT_EQ(ch.size(), static_cast<std::size_t>(i));
      ch.send(i);
    }
    EXPECT_EQ(ch.size(), static_cast<std::size_t>(cap));
    EXPECT_EQ(ch.try_send(99), chan_status::full);
    ch.close();
    EXPECT_EQ(ch.size(), static_cast<std::size_t>(cap));
    EXPECT_EQ(ch.capacity(), static_cast<std::size_t>(cap));
    for (int i = 0; i < cap; ++i) EXPECT_EQ(ch.recv(), i);
    EXPECT_EQ(ch.size(), 0U);
    EXPECT_EQ(ch.try_recv().status, chan_status::closed);
  }
}

// ---- close against everything ----------------------------------------------------------------

// close() lands at a random moment among lock-free and parked senders and receivers of every
// form, on rings of a non-trivial type, the value moves slowed a little: every value whose send
// succeeded is received exactly once, no value of a failed send is received and every failed
// send kept its value, and what is left when the channel goes is destroyed (no leak).
TEST_P(ChanRingAdversarialTest, CloseRacingEveryFormKeepsEveryValueAccountedFor) {
  const int rounds = static_cast<int>(scaled(120));
  constexpr int senders = 3;
  constexpr int receivers = 3;
  constexpr int per_sender = 200;
  const long live_before = live_payloads.load();
  move_spin.store(50);
  {
    goro::runtime rt{opts()};
    chaos_stop chaos;
    for (int round = 0; round < rounds; ++round) {
      chan<item> ch(1 + round % 3);
      chan<item> never(1);
      std::vector<std::atomic<std::uint8_t>> delivered(senders * per_sender);
      std::vector<std::atomic<std::uint8_t>> seen(senders * per_sender);
      std::atomic<int> bad{0};
      goro::wait_group done;
      done.add(senders + receivers + 1);
      for (int s = 0; s < senders; ++s) {
        rt.go([&, s, round] {
          rng r(static_cast<std::uint64_t>(round * 16 + s));
          for (int i = 0; i < per_sender; ++i) {
            item v(s, i);
            chan_status st = chan_status::ok;
            try {
              st = send_some_way(ch, std::move(v), r, 50us, chaos, never);
            } catch (const goro::closed_channel_error&) {
              st = chan_status::closed;
            }
            if (st == chan_status::ok) {
              delivered[static_cast<std::size_t>(s * per_sender + i)].store(1);
            } else if (v.empty() || v.seq() != i) {
              bad.fetch_add(1);
            }
            if (st == chan_status::closed) break;
          }
          done.done();
        });
      }
      for (int q = 0; q < receivers; ++q) {
        rt.go([&, q, round] {
          rng r(static_cast<std::uint64_t>(round * 16 + 8 + q));
          for (;;) {
            goro::recv_result<item> v = recv_some_way(ch, r, 50us, chaos);
            if (v.status == chan_status::closed) break;
            if (!v) {
              if (v.status == chan_status::empty) goro::this_fiber::yield();
              continue;
            }
            const std::size_t idx =
                static_cast<std::size_t>(v.value->sender() * per_sender + v.value->seq());
            if (seen[idx].exchange(1) != 0) bad.fetch_add(1);
          }
          done.done();
        });
      }
      rt.go([&, round] {
        for (int i = 0; i < round % 40; ++i) goro::this_fiber::yield();
        if (round % 5 == 0) chaos.trigger();
        ch.close();
        done.done();
      });
      await(done, 60s, "close racing, round " + std::to_string(round));
      EXPECT_EQ(bad.load(), 0) << "round " << round;
      for (std::size_t v = 0; v < seen.size(); ++v) {
        ASSERT_EQ(seen[v].load(), delivered[v].load()) << "value " << v << " round " << round;
      }
    }
  }
  move_spin.store(0);
  EXPECT_EQ(live_payloads.load(), live_before);
}

// A channel of many slots is made on the locked buffer, whose memory is touched only as values
// come: in the ring every slot's stamp was written at once (chan<int>(100'000'000) on two
// workers: 5.8 s and 1.5 GB). 10 million ints: 160 MB of ring slots against 40 MB untouched.
TEST_P(ChanRingAdversarialTest, LargeBufferedChannelsAreCheapToMake) {
  goro::runtime rt(opts());
  goro::chan<std::size_t> rss(1);
  rt.go([rss] {
    const std::size_t before = goro_test::resident_bytes();
    goro::chan<int> big(10'000'000);
    big.send(7);
    EXPECT_EQ(*big.recv(), 7);
    EXPECT_EQ(big.capacity(), 10'000'000u);
    rss.send(goro_test::resident_bytes() - before);
  });
  const std::size_t grown = *rss.recv();
  EXPECT_LT(grown, std::size_t{80} << 20) << "resident memory grew by " << (grown >> 20) << " MiB";
}

INSTANTIATE_TEST_SUITE_P(Workers, ChanRingAdversarialTest, goro_test::worker_counts(),
                         goro_test::worker_count_name);

}  // namespace
