// SPDX-License-Identifier: Apache-2.0
// A model-based fuzzer for goro::chan<T> and goro::select (docs/channels.md, "Model-based
// fuzzing"): seeded random programs of sends, receives (blocking, non-blocking, timed and
// cancellable), selects (with and without a default, over several channels, nil ones included)
// and closes, on buffered and unbuffered channels of a copyable and a move-only type, checked
// against a model of Go's channel semantics. Two phases:
//   - sequential: one party (a fiber, or the test's thread) runs a program whose every outcome
//     a FIFO queue per channel predicts exactly;
//   - concurrent: fibers on runtimes of 1, 2 and 4 workers, plain threads, and fibers of a second
//     one-worker runtime run random programs in epochs. Each operation is checked against what
//     holds in every interleaving (values conserved, FIFO per sender, the close rules, bounds);
//     between epochs, when every actor has returned, the coordinator checks exact outcomes
//     against the model's counts, and at the end it drains every channel and accounts for every
//     value.
// Seeded by GORO_FUZZ_SEED, sized by GORO_FUZZ_ITERATIONS (else GORO_STRESS_SCALE). A failure
// prints the seed and round, and GORO_FUZZ_ROUND replays that round alone.
//
// Not checked: that a move-only value stays with the caller when send(v, stop_token) is
// cancelled or an on_send case is not chosen (both take the value by parameter today, so it is
// gone); the value must only never be received.
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cinttypes>
#include <cstdarg>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <exception>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <stop_token>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

#include "goro/goro.hpp"

#include "test_support.hpp"

namespace {

using namespace std::chrono_literals;
using clock_type = std::chrono::steady_clock;
using goro::chan;
using goro::chan_status;
using goro::closed_channel_error;

// ---- formatting ------------------------------------------------------------------------------

__attribute__((format(printf, 1, 2))) std::string str(const char* fmt, ...) {
  char buf[1024];
  va_list ap;
  va_start(ap, fmt);
  std::vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  return buf;
}

const char* name_of(chan_status s) {
  switch (s) {
    case chan_status::ok: return "ok";
    case chan_status::closed: return "closed";
    case chan_status::full: return "full";
    case chan_status::empty: return "empty";
    case chan_status::timeout: return "timeout";
    case chan_status::cancelled: return "cancelled";
  }
  return "?";
}

// ---- seeds and sizes -------------------------------------------------------------------------

// The run's seed when GORO_FUZZ_SEED is unset: fixed, so CI runs the same programs every time.
constexpr std::uint64_t default_seed = 0x60a0'f022'0000'0001ULL;

std::optional<std::uint64_t> env_number(const char* name) {
  const char* s = std::getenv(name);
  if (s == nullptr || *s == '\0') return std::nullopt;
  char* end = nullptr;
  errno = 0;
  const unsigned long long v = std::strtoull(s, &end, 0);
  if (end == s || *end != '\0' || errno != 0) {
    std::fprintf(stderr, "%s=\"%s\" is not a number; ignored\n", name, s);
    return std::nullopt;
  }
  return static_cast<std::uint64_t>(v);
}

std::uint64_t run_seed() {
  static const std::uint64_t seed = env_number("GORO_FUZZ_SEED").value_or(default_seed);
  return seed;
}

// splitmix64's finaliser over a + b: a round's seed from the test's, an actor's from the round's.
std::uint64_t mix(std::uint64_t a, std::uint64_t b) {
  std::uint64_t z = a + 0x9E3779B97F4A7C15ULL * (b + 1);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

std::uint64_t hash_name(std::string_view s) {  // FNV-1a
  std::uint64_t h = 0xcbf29ce484222325ULL;
  for (const char c : s) h = (h ^ static_cast<unsigned char>(c)) * 0x100000001b3ULL;
  return h;
}

// splitmix64: the same seed gives the same program with every standard library, which
// std::uniform_int_distribution does not promise.
class rng {
 public:
  explicit rng(std::uint64_t seed) : state_(seed) {}
  std::uint64_t next() { return mix(state_++, 0); }
  std::size_t below(std::size_t n) { return static_cast<std::size_t>(next() % n); }
  bool chance(unsigned percent) { return below(100) < percent; }
  template <class U, std::size_t N>
  U one_of(const U (&options)[N]) {
    return options[below(N)];
  }
  // How many cases a select gets: mostly 1 to 4, sometimes 9 to 20 (select keeps up to 8 on
  // its stack and sorts more than 16 channels differently).
  std::size_t select_cases() { return chance(90) ? 1 + below(4) : 9 + below(12); }

 private:
  std::uint64_t state_;
};

// ---- outcome counts --------------------------------------------------------------------------
//
// How often each outcome occurred in a test's rounds, printed at its end: an outcome the
// programs never reach is one the fuzzer never checks.

enum class outcome : std::size_t {
  sent,
  send_closed,
  send_full,
  send_timeout,
  send_cancelled,
  received,
  recv_closed,
  recv_empty,
  recv_timeout,
  recv_cancelled,
  select_case,
  select_default,
  select_stop,
  select_threw,
  close_ok,
  close_threw,
  stall_close,
  stall_cancel,
};
constexpr const char* outcome_names[] = {
    "sent",        "send closed",    "send full",      "send timeout", "send cancelled",
    "received",    "recv closed",    "recv empty",     "recv timeout", "recv cancelled",
    "select case", "select default", "select on_stop", "select threw", "close",
    "close threw", "stall: close",   "stall: cancel"};
constexpr std::size_t outcome_kinds = std::size(outcome_names);
std::array<std::atomic<std::uint64_t>, outcome_kinds> outcome_counts{};

void tally(outcome o) {
  // Relaxed: a statistic, read once every party has returned.
  outcome_counts[static_cast<std::size_t>(o)].fetch_add(1, std::memory_order_relaxed);
}
void tally(bool send, chan_status s) {
  switch (s) {
    case chan_status::ok: return tally(send ? outcome::sent : outcome::received);
    case chan_status::closed: return tally(send ? outcome::send_closed : outcome::recv_closed);
    case chan_status::full: return tally(outcome::send_full);
    case chan_status::empty: return tally(outcome::recv_empty);
    case chan_status::timeout: return tally(send ? outcome::send_timeout : outcome::recv_timeout);
    case chan_status::cancelled:
      return tally(send ? outcome::send_cancelled : outcome::recv_cancelled);
  }
}
std::string outcome_summary() {
  std::string s;
  for (std::size_t i = 0; i < outcome_kinds; ++i) {
    s += str("%s%s %" PRIu64, i == 0 ? "" : ", ", outcome_names[i], outcome_counts[i].load());
  }
  return s;
}

// What a failing round prints to be replayed; also printed by the deadlock watchdog.
std::string replay_line;  // NOLINT: written by the test's thread only, between rounds

std::string self_path() {
  char buf[4096];
  const ssize_t n = ::readlink("/proc/self/exe", buf, sizeof buf - 1);
  return n > 0 ? std::string(buf, static_cast<std::size_t>(n)) : std::string("chan_fuzz_test");
}

// Runs the test's rounds: round(index, seed) returns a description of the first failure, if
// any, and the run stops there. Which rounds:
//   GORO_FUZZ_ROUND=r       round r alone (a replay);
//   GORO_FUZZ_ITERATIONS=n  rounds [0, n * per_iteration), however long they take (long runs);
//   neither                 rounds [0, max(scaled(ci_rounds), ci_floor)), but no new round after
//                           ci_budget (CI, where the sanitizer presets set GORO_STRESS_SCALE; the
//                           floor keeps a few rounds where the scale would leave one).
constexpr auto ci_budget = 60s;

template <class Round>
void run_rounds(std::size_t ci_rounds, std::size_t ci_floor, std::size_t per_iteration,
                Round round) {
  const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
  const std::string test = std::string(info->test_suite_name()) + "." + info->name();
  const std::uint64_t test_seed = mix(run_seed(), hash_name(test));
  std::size_t first = 0;
  std::size_t count = std::max(goro_test::scaled(ci_rounds), ci_floor);
  bool budgeted = true;
  if (const auto n = env_number("GORO_FUZZ_ITERATIONS")) {
    count = static_cast<std::size_t>(*n) * per_iteration;
    budgeted = false;
  }
  if (const auto r = env_number("GORO_FUZZ_ROUND")) {
    first = static_cast<std::size_t>(*r);
    count = 1;
    budgeted = false;
  }
  for (auto& n : outcome_counts) n.store(0);
  const auto start = clock_type::now();
  std::size_t done = 0;
  for (std::size_t i = first; i < first + count; ++i) {
    if (budgeted && clock_type::now() - start > ci_budget) break;
    replay_line = str("seed GORO_FUZZ_SEED=0x%" PRIx64
                      ", round %zu; replay it alone with\n  "
                      "GORO_FUZZ_SEED=0x%" PRIx64 " GORO_FUZZ_ROUND=%zu %s --gtest_filter='%s'",
                      run_seed(), i, run_seed(), i, self_path().c_str(), test.c_str());
    if (std::optional<std::string> failure = round(i, mix(test_seed, i))) {
      ADD_FAILURE() << *failure << "\n" << replay_line;
      return;
    }
    ++done;
  }
  std::printf("[   fuzz   ] %s: %zu rounds from seed 0x%" PRIx64 " in %.1f s\n[   fuzz   ] %s\n",
              test.c_str(), done, run_seed(), goro_test::ms_since(start) / 1000.0,
              outcome_summary().c_str());
}

// ---- values ----------------------------------------------------------------------------------

// Every value sent carries a tag naming its sender, its channel and its place in the sender's
// sequence of values for that channel: bits 40-63 the sender, 32-39 the channel, 0-31 the
// sequence number.
using tag = std::uint64_t;

constexpr tag make_tag(std::uint32_t sender, std::size_t ch, std::uint32_t seq) {
  return (std::uint64_t{sender} << 40) | (std::uint64_t{ch & 0xff} << 32) | seq;
}
constexpr std::uint32_t sender_of(tag t) { return static_cast<std::uint32_t>(t >> 40); }
constexpr std::size_t chan_of(tag t) { return static_cast<std::size_t>((t >> 32) & 0xff); }
constexpr std::uint32_t seq_of(tag t) { return static_cast<std::uint32_t>(t); }
// The tag of values sent on nil channels, which nobody may ever receive.
constexpr tag nil_tag = make_tag(0xffffff, 0xff, 0);

std::string tag_text(tag t) { return str("s%u.c%zu#%u", sender_of(t), chan_of(t), seq_of(t)); }
std::string tag_text(std::optional<tag> t) {
  return t ? tag_text(*t) : std::string("<moved-from>");
}

// A move-only value whose tag lives on the heap: a value lost or destroyed twice shows under
// ASan, and one moved from shows as null.
using boxed = std::unique_ptr<std::uint64_t>;

template <class T>
struct value_traits;

template <>
struct value_traits<std::uint64_t> {
  static std::uint64_t make(tag t) { return t; }
  static std::optional<tag> tag_of(const std::uint64_t& v) { return v; }
};

template <>
struct value_traits<boxed> {
  static boxed make(tag t) { return std::make_unique<std::uint64_t>(t); }
  static std::optional<tag> tag_of(const boxed& v) {
    return v ? std::optional<tag>(*v) : std::nullopt;
  }
};

template <class T>
std::optional<tag> tag_of(const std::optional<T>& v) {
  return v ? value_traits<T>::tag_of(*v) : std::nullopt;
}

// ---- select cases, built alike in both phases -----------------------------------------------

enum class case_kind { recv, send, otherwise, stop };

struct case_plan {
  case_kind kind;
  int ch;  // -1: nil
  tag t;
  bool closed_before = false;   // concurrent phase: the channel was closed before the select
  bool drained_before = false;  // and drained
};

// What each case's handler saw: whether it ran, and a receive's value.
template <class T>
struct select_record {
  explicit select_record(std::size_t n) : ran(n), got(n) {}
  std::vector<char> ran;
  std::vector<std::optional<T>> got;
};

// The run-time form's cases for `cases` (no stop case), each handler recording into rec;
// chan_of(plan) is the case's channel.
template <class T, class ChanOf>
std::vector<goro::select_case> build_select(const std::vector<case_plan>& cases,
                                            select_record<T>& rec, ChanOf chan_of) {
  std::vector<goro::select_case> built;
  for (std::size_t k = 0; k < cases.size(); ++k) {
    const case_plan& p = cases[k];
    switch (p.kind) {
      case case_kind::recv:
        built.emplace_back(goro::on_recv(chan_of(p), [&rec, k](std::optional<T> v) {
          rec.ran[k] = 1;
          rec.got[k] = std::move(v);
        }));
        break;
      case case_kind::send:
        built.emplace_back(
            goro::on_send(chan_of(p), value_traits<T>::make(p.t), [&rec, k] { rec.ran[k] = 1; }));
        break;
      default: built.emplace_back(goro::otherwise([&rec, k] { rec.ran[k] = 1; })); break;
    }
  }
  return built;
}

// The variadic form over a receive on a (case 0) and a send of tag t on b (case 1), the third
// case otherwise() or, given a token, on_stop(*stop); handlers record into rec. nullopt if it
// threw.
template <class T>
std::optional<std::size_t> run_variadic_select(const chan<T>& a, const chan<T>& b, tag t,
                                               select_record<T>& rec, const std::stop_token* stop) {
  auto on_a = [&rec](std::optional<T> v) {
    rec.ran[0] = 1;
    rec.got[0] = std::move(v);
  };
  auto on_b = [&rec] { rec.ran[1] = 1; };
  auto third = [&rec] { rec.ran[2] = 1; };
  try {
    if (stop == nullptr) {
      return goro::select(goro::on_recv(a, on_a), goro::on_send(b, value_traits<T>::make(t), on_b),
                          goro::otherwise(third));
    }
    return goro::select(goro::on_recv(a, on_a), goro::on_send(b, value_traits<T>::make(t), on_b),
                        goro::on_stop(*stop, third));
  } catch (const closed_channel_error&) {
    return std::nullopt;
  }
}

// ---- sequential phase ------------------------------------------------------------------------
//
// One party, so every outcome is determined: a channel is a FIFO queue of tags with a capacity
// and a closed flag (an unbuffered channel with nobody on the other side is a queue of capacity
// 0). Blocking operations are issued only where the model says they complete at once (a send
// with room or on a closed channel, a receive with a value or on a closed channel); timed and
// cancellable ones also where they must time out or be cancelled. Where Go leaves a choice
// (select among several ready cases, a cancellable operation both ready and cancelled), any
// allowed outcome is accepted and the model follows the one taken.

struct mismatch {
  std::string what;
};

template <class T>
class sequential_program {
  using traits = value_traits<T>;

 public:
  explicit sequential_program(std::uint64_t seed) : rng_(seed) {
    static constexpr std::size_t caps[] = {0, 1, 1, 2, 3, 4, 7};
    const std::size_t n = 1 + rng_.below(4);
    for (std::size_t i = 0; i < n; ++i) {
      const std::size_t cap = rng_.one_of(caps);
      chans_.push_back(channel{chan<T>(cap), cap, {}, false, 0});
    }
    length_ = 10 + rng_.below(150);
    stopped_.request_stop();
  }

  // Runs the program: the first outcome the model did not allow, with the program so far.
  std::optional<std::string> run() {
    try {
      for (std::size_t i = 0; i < length_; ++i) step();
      return std::nullopt;
    } catch (const mismatch& m) {
      std::string text = m.what + "\nprogram (channel capacities:";
      for (std::size_t i = 0; i < chans_.size(); ++i) text += str(" c%zu=%zu", i, chans_[i].cap);
      text += "):\n";
      for (const std::string& line : trace_) text += "  " + line + "\n";
      return text;
    }
  }

 private:
  struct channel {
    chan<T> ch;
    std::size_t cap;
    std::deque<tag> model;
    bool closed;
    std::uint32_t next_seq;
  };
  // A select case: a receive or a send on channel ch (-1: nil), or the default or stop case.
  using select_record = ::select_record<T>;

  void step() {
    switch (rng_.below(18)) {
      case 0:
      case 1:
      case 2: try_send(); break;
      case 3: send(); break;
      case 4: send_for(); break;
      case 5: send_stop(); break;
      case 6:
      case 7:
      case 8: try_recv(); break;
      case 9: recv(); break;
      case 10: recv_for(); break;
      case 11: recv_stop(); break;
      case 12: range(); break;
      case 13:
      case 14: select_run_time(); break;
      case 15: select_variadic(); break;
      case 16: rng_.chance(35) ? close() : size(); break;
      default: nil_probe(); break;
    }
  }

  void note(std::string line) { trace_.push_back(std::move(line)); }
  void expect(bool ok, const std::string& what) {
    if (!ok) {
      throw mismatch{str("model mismatch at step %zu: ", trace_.size()) + trace_.back() + ": " +
                     what};
    }
  }
  std::size_t pick() { return rng_.below(chans_.size()); }
  tag next_tag(std::size_t i) { return make_tag(0, i, chans_[i].next_seq++); }
  static std::string value_text(const std::optional<tag>& t) {
    return t ? str(" %s", tag_text(*t).c_str()) : std::string();
  }
  bool has_room(const channel& c) const { return c.model.size() < c.cap; }
  std::chrono::microseconds short_timeout() {
    static constexpr long us[] = {0, 1, 10};
    return std::chrono::microseconds(rng_.one_of(us));
  }
  // A token for a cancellable operation: requested when the operation would block, else either.
  std::stop_token token_for(bool ready) {
    if (!ready || rng_.chance(50)) return stopped_.get_token();
    return std::stop_token{};
  }
  void expect_front(channel& c, const std::optional<tag>& got) {
    expect(got.has_value() && !c.model.empty() && *got == c.model.front(),
           "expected " + (c.model.empty() ? std::string("no value") : tag_text(c.model.front())));
    c.model.pop_front();
  }
  void expect_intact(const T& v, tag t) {
    expect(traits::tag_of(v) == std::optional<tag>(t), "a send that failed moved its value from");
  }
  void expect_elapsed(clock_type::time_point start, std::chrono::microseconds d) {
    expect(clock_type::now() - start >= d, "timed out before its timeout had elapsed");
  }

  void try_send() {
    const std::size_t i = pick();
    channel& c = chans_[i];
    const tag t = next_tag(i);
    T v = traits::make(t);
    const chan_status want = c.closed      ? chan_status::closed
                             : has_room(c) ? chan_status::ok
                                           : chan_status::full;
    const chan_status got = c.ch.try_send(std::move(v));
    note(str("c%zu.try_send(%s) -> %s", i, tag_text(t).c_str(), name_of(got)));
    tally(true, got);
    expect(got == want, str("expected %s", name_of(want)));
    if (got == chan_status::ok) {
      c.model.push_back(t);
    } else {
      expect_intact(v, t);  // NOLINT(bugprone-use-after-move): not moved from unless ok
    }
  }

  void send() {
    const std::size_t i = pick();
    channel& c = chans_[i];
    if (!c.closed && !has_room(c)) return try_send();  // would block forever
    const tag t = next_tag(i);
    bool threw = false;
    try {
      c.ch.send(traits::make(t));
    } catch (const closed_channel_error&) {
      threw = true;
    }
    note(str("c%zu.send(%s) -> %s", i, tag_text(t).c_str(), threw ? "throws" : "returns"));
    tally(true, threw ? chan_status::closed : chan_status::ok);
    expect(threw == c.closed, c.closed ? "expected closed_channel_error" : "expected to send");
    if (!threw) c.model.push_back(t);
  }

  void send_for() {
    const std::size_t i = pick();
    channel& c = chans_[i];
    const tag t = next_tag(i);
    const auto d = short_timeout();
    T v = traits::make(t);
    std::optional<chan_status> got;
    const auto start = clock_type::now();
    try {
      got = c.ch.send_for(std::move(v), d);
    } catch (const closed_channel_error&) {
    }
    note(str("c%zu.send_for(%s, %ldus) -> %s", i, tag_text(t).c_str(), static_cast<long>(d.count()),
             got ? name_of(*got) : "throws"));
    tally(true, got.value_or(chan_status::closed));
    if (c.closed) return expect(!got, "expected closed_channel_error");
    const chan_status want = has_room(c) ? chan_status::ok : chan_status::timeout;
    expect(got == want, str("expected %s", name_of(want)));
    if (*got == chan_status::ok) return c.model.push_back(t);
    expect_elapsed(start, d);
    expect_intact(v, t);  // NOLINT(bugprone-use-after-move): not moved from unless ok
  }

  void send_stop() {
    const std::size_t i = pick();
    channel& c = chans_[i];
    const tag t = next_tag(i);
    const bool ready = c.closed || has_room(c);
    const std::stop_token token = token_for(ready);
    std::optional<chan_status> got;
    try {
      got = c.ch.send(traits::make(t), token);
    } catch (const closed_channel_error&) {
    }
    note(str("c%zu.send(%s, %s token) -> %s", i, tag_text(t).c_str(),
             token.stop_requested() ? "stopped" : "live", got ? name_of(*got) : "throws"));
    tally(true, got.value_or(chan_status::closed));
    if (got == chan_status::cancelled) {
      return expect(token.stop_requested(), "cancelled without a stop request");
    }
    if (c.closed) return expect(!got, "expected closed_channel_error (or cancelled)");
    expect(ready && got == chan_status::ok,
           ready ? "expected ok (or cancelled)" : "expected cancelled");
    c.model.push_back(t);
  }

  void try_recv() {
    const std::size_t i = pick();
    channel& c = chans_[i];
    goro::recv_result<T> r = c.ch.try_recv();
    const std::optional<tag> got = tag_of(r.value);
    note(str("c%zu.try_recv() -> %s%s", i, name_of(r.status), value_text(got).c_str()));
    tally(false, r.status);
    if (!c.model.empty()) {
      expect(r.status == chan_status::ok, "expected ok");
      return expect_front(c, got);
    }
    const chan_status want = c.closed ? chan_status::closed : chan_status::empty;
    expect(r.status == want && !r.value, str("expected %s", name_of(want)));
  }

  void recv() {
    const std::size_t i = pick();
    channel& c = chans_[i];
    if (c.model.empty() && !c.closed) return try_recv();  // would block forever
    const std::optional<tag> got = tag_of(c.ch.recv());
    note(str("c%zu.recv() -> %s", i, got ? tag_text(got).c_str() : "nullopt"));
    tally(false, got ? chan_status::ok : chan_status::closed);
    if (c.model.empty()) return expect(!got, "expected nullopt");
    expect_front(c, got);
  }

  void recv_for() {
    const std::size_t i = pick();
    channel& c = chans_[i];
    const auto d = short_timeout();
    const auto start = clock_type::now();
    goro::recv_result<T> r = c.ch.recv_for(d);
    const std::optional<tag> got = tag_of(r.value);
    note(str("c%zu.recv_for(%ldus) -> %s%s", i, static_cast<long>(d.count()), name_of(r.status),
             value_text(got).c_str()));
    tally(false, r.status);
    if (!c.model.empty()) {
      expect(r.status == chan_status::ok, "expected ok");
      return expect_front(c, got);
    }
    const chan_status want = c.closed ? chan_status::closed : chan_status::timeout;
    expect(r.status == want && !r.value, str("expected %s", name_of(want)));
    if (want == chan_status::timeout) expect_elapsed(start, d);
  }

  void recv_stop() {
    const std::size_t i = pick();
    channel& c = chans_[i];
    const bool ready = c.closed || !c.model.empty();
    const std::stop_token token = token_for(ready);
    goro::recv_result<T> r = c.ch.recv(token);
    const std::optional<tag> got = tag_of(r.value);
    note(str("c%zu.recv(%s token) -> %s%s", i, token.stop_requested() ? "stopped" : "live",
             name_of(r.status), value_text(got).c_str()));
    tally(false, r.status);
    if (r.status == chan_status::cancelled) {
      return expect(token.stop_requested() && !r.value, "cancelled without a stop request");
    }
    expect(ready, "expected cancelled");
    if (!c.model.empty()) {
      expect(r.status == chan_status::ok, "expected ok (or cancelled)");
      return expect_front(c, got);
    }
    expect(r.status == chan_status::closed && !r.value, "expected closed (or cancelled)");
  }

  // for (T v : ch): to the end on a closed channel, else breaking out before it would block.
  void range() {
    const std::size_t i = pick();
    channel& c = chans_[i];
    if (!c.closed && c.model.empty()) return size();
    const std::size_t stop_after = c.closed ? SIZE_MAX : 1 + rng_.below(c.model.size());
    std::vector<std::optional<tag>> got;
    for (auto&& v : c.ch) {
      got.push_back(traits::tag_of(v));
      if (got.size() == stop_after) break;
    }
    std::string text;
    for (const auto& t : got) {
      text += ' ';
      text += tag_text(t);
    }
    note(str("for (v : c%zu)%s -> %zu values:%s", i,
             c.closed ? "" : str(" (break after %zu)", stop_after).c_str(), got.size(),
             text.c_str()));
    const std::size_t want = std::min(stop_after, c.model.size());
    expect(got.size() == want, str("expected %zu values", want));
    for (const auto& t : got) expect_front(c, t);
  }

  void close() {
    const std::size_t i = pick();
    channel& c = chans_[i];
    bool threw = false;
    try {
      c.ch.close();
    } catch (const closed_channel_error&) {
      threw = true;
    }
    note(str("c%zu.close() -> %s", i, threw ? "throws" : "returns"));
    tally(threw ? outcome::close_threw : outcome::close_ok);
    expect(threw == c.closed, c.closed ? "expected closed_channel_error" : "expected to close");
    c.closed = true;
  }

  void size() {
    const std::size_t i = pick();
    channel& c = chans_[i];
    const std::size_t n = c.ch.size();
    const std::size_t cap = c.ch.capacity();
    note(str("c%zu.size() -> %zu, capacity() -> %zu", i, n, cap));
    expect(n == c.model.size() && cap == c.cap, str("expected %zu and %zu", c.model.size(), c.cap));
  }

  void nil_probe() {
    const chan<T>& nil = nil_;
    switch (rng_.below(6)) {
      case 0: {
        T v = traits::make(nil_tag);
        const chan_status s = nil.try_send(std::move(v));
        note(str("nil.try_send() -> %s", name_of(s)));
        expect(s == chan_status::full, "expected full");
        return expect_intact(v, nil_tag);  // NOLINT(bugprone-use-after-move)
      }
      case 1: {
        const goro::recv_result<T> r = nil.try_recv();
        note(str("nil.try_recv() -> %s", name_of(r.status)));
        return expect(r.status == chan_status::empty && !r.value, "expected empty");
      }
      case 2: {
        T v = traits::make(nil_tag);
        const chan_status s = nil.send_for(std::move(v), 1us);
        note(str("nil.send_for(1us) -> %s", name_of(s)));
        expect(s == chan_status::timeout, "expected timeout");
        return expect_intact(v, nil_tag);  // NOLINT(bugprone-use-after-move)
      }
      case 3: {
        const goro::recv_result<T> r = nil.recv_for(1us);
        note(str("nil.recv_for(1us) -> %s", name_of(r.status)));
        return expect(r.status == chan_status::timeout && !r.value, "expected timeout");
      }
      case 4: {
        bool threw = false;
        try {
          nil.close();
        } catch (const closed_channel_error&) {
          threw = true;
        }
        note(str("nil.close() -> %s", threw ? "throws" : "returns"));
        return expect(threw, "expected closed_channel_error");
      }
      default:
        note(str("nil.size() -> %zu, capacity() -> %zu", nil.size(), nil.capacity()));
        return expect(nil.size() == 0 && nil.capacity() == 0, "expected 0 and 0");
    }
  }

  case_plan random_case(case_kind kind) {
    if (rng_.chance(10)) return {kind, -1, nil_tag};
    const std::size_t i = pick();
    return {kind, static_cast<int>(i), kind == case_kind::send ? next_tag(i) : 0};
  }
  const chan<T>& chan_of_case(const case_plan& p) const {
    return p.ch < 0 ? nil_ : chans_[static_cast<std::size_t>(p.ch)].ch;
  }
  bool ready(const case_plan& p) const {
    if (p.ch < 0) return false;
    const channel& c = chans_[static_cast<std::size_t>(p.ch)];
    if (p.kind == case_kind::recv) return c.closed || !c.model.empty();
    return c.closed || has_room(c);  // a send on a closed channel is ready: it throws
  }
  std::string describe(const std::vector<case_plan>& cases) const {
    std::string s = "select(";
    for (std::size_t k = 0; k < cases.size(); ++k) {
      const case_plan& p = cases[k];
      if (k > 0) s += ", ";
      const std::string ch = p.ch < 0 ? std::string("nil") : str("c%d", p.ch);
      switch (p.kind) {
        case case_kind::recv: s += "on_recv(" + ch + ")"; break;
        case case_kind::send: s += "on_send(" + ch + ", " + tag_text(p.t) + ")"; break;
        case case_kind::otherwise: s += "otherwise()"; break;
        case case_kind::stop: s += "on_stop(stopped token)"; break;
      }
    }
    return s + ")";
  }

  // Checks the outcome of a select over `cases` (the index it returned, or nullopt if it threw)
  // and moves the model along.
  void check_select(const std::vector<case_plan>& cases, std::optional<std::size_t> chosen,
                    select_record& rec, bool stop_requested) {
    std::string text = describe(cases) + " -> ";
    if (!chosen) {
      text += "throws";
    } else {
      text += str("%zu", *chosen);
      if (cases[*chosen].kind == case_kind::recv) {
        text +=
            " " + (rec.got[*chosen] ? tag_text(tag_of(rec.got[*chosen])) : std::string("nullopt"));
      }
    }
    note(std::move(text));
    bool any_ready = false;
    bool closed_send = false;
    for (const case_plan& p : cases) {
      any_ready = any_ready || ready(p);
      closed_send = closed_send || (p.kind == case_kind::send && p.ch >= 0 &&
                                    chans_[static_cast<std::size_t>(p.ch)].closed);
    }
    std::size_t handlers = 0;
    for (const char r : rec.ran) handlers += r != 0 ? 1 : 0;
    tally(!chosen                                       ? outcome::select_threw
          : cases[*chosen].kind == case_kind::otherwise ? outcome::select_default
          : cases[*chosen].kind == case_kind::stop      ? outcome::select_stop
                                                        : outcome::select_case);
    if (!chosen) {
      expect(closed_send, "threw without a send case on a closed channel");
      return expect(handlers == 0, "a handler ran although select threw");
    }
    const std::size_t k = *chosen;
    expect(k < cases.size() && handlers == 1 && rec.ran[k] != 0,
           "the handler run is not the case returned");
    const case_plan& p = cases[k];
    switch (p.kind) {
      case case_kind::otherwise:
        return expect(!any_ready, "took the default although a case was ready");
      case case_kind::stop: return expect(stop_requested, "took on_stop without a stop request");
      case case_kind::send:
        expect(ready(p) && !chans_[static_cast<std::size_t>(p.ch)].closed,
               "performed a send case that was not ready");
        return chans_[static_cast<std::size_t>(p.ch)].model.push_back(p.t);
      case case_kind::recv: {
        expect(ready(p), "performed a receive case that was not ready");
        channel& c = chans_[static_cast<std::size_t>(p.ch)];
        if (c.model.empty()) return expect(!rec.got[k], "expected nullopt");
        return expect_front(c, tag_of(rec.got[k]));
      }
    }
  }

  // The run-time form, goro::select(std::span<select_case>), over random cases.
  void select_run_time() {
    std::vector<case_plan> cases;
    const std::size_t n = rng_.select_cases();
    bool any_ready = false;
    for (std::size_t k = 0; k < n; ++k) {
      cases.push_back(random_case(rng_.chance(50) ? case_kind::send : case_kind::recv));
      any_ready = any_ready || ready(cases.back());
    }
    if (!any_ready || rng_.chance(50)) {
      const std::size_t at = rng_.below(n + 1);
      cases.insert(cases.begin() + static_cast<std::ptrdiff_t>(at),
                   case_plan{case_kind::otherwise, -1, 0});
    }
    select_record rec(cases.size());
    std::vector<goro::select_case> built = build_select(
        cases, rec, [this](const case_plan& p) -> const chan<T>& { return chan_of_case(p); });
    std::optional<std::size_t> chosen;
    try {
      chosen = goro::select(std::span(built));
    } catch (const closed_channel_error&) {
    }
    check_select(cases, chosen, rec, false);
  }

  // The variadic form: (on_recv, on_send, otherwise) or (on_recv, on_send, on_stop).
  void select_variadic() {
    std::vector<case_plan> cases{random_case(case_kind::recv), random_case(case_kind::send)};
    const chan<T>& a = chan_of_case(cases[0]);
    const chan<T>& b = chan_of_case(cases[1]);
    const bool any_ready = ready(cases[0]) || ready(cases[1]);
    select_record rec(3);
    std::optional<std::size_t> chosen;
    bool stop_requested = false;
    if (rng_.chance(50)) {
      cases.push_back({case_kind::otherwise, -1, 0});
      chosen = run_variadic_select(a, b, cases[1].t, rec, nullptr);
    } else {
      cases.push_back({case_kind::stop, -1, 0});
      const std::stop_token token = token_for(any_ready);
      stop_requested = token.stop_requested();
      chosen = run_variadic_select(a, b, cases[1].t, rec, &token);
    }
    check_select(cases, chosen, rec, stop_requested);
  }

  rng rng_;
  std::vector<channel> chans_;
  const chan<T> nil_{nullptr};
  std::size_t length_ = 0;
  std::stop_source stopped_;  // requested: cancels an operation that would block
  std::vector<std::string> trace_;
};

// Runs the sequential rounds, alternately in a fiber of a one-worker runtime and on the test's
// own thread.
template <class T>
void run_sequential() {
  goro::runtime rt{goro::options{.workers = 1}};
  run_rounds(4000, 200, 20, [&rt](std::size_t index, std::uint64_t seed) {
    sequential_program<T> program(seed);
    if (index % 2 == 1) return program.run();
    std::optional<std::string> result;
    goro::wait_group done;
    done.add(1);
    rt.go([&] {
      result = program.run();
      done.done();
    });
    done.wait();
    return result;
  });
}

// ---- concurrent phase ------------------------------------------------------------------------
//
// Actors (fibers, fibers of a second one-worker runtime, and plain threads) run random programs
// over up to four channels, in epochs; the test's thread coordinates. What each operation's outcome
// is checked against, whatever the interleaving:
//   - a send that succeeds must not have begun after a close() of its channel returned; one that
//     reports closed (returns closed, or throws) must come after a close() began; a try_send
//     that reports full, or a send_for that times out, must not have begun after a close()
//     returned (it must report closed);
//   - a received value carries its channel's number, arrives after the sender's earlier values on
//     that channel (FIFO per sender, per receiver), and not after a receive of that channel
//     reported closed (closed and drained is final);
//   - a receive that reports closed comes after a close() began; try_recv never reports empty,
//     nor recv_for a timeout, on a channel closed before it began;
//   - timeouts only once their time has passed, cancellation only after a stop request;
//   - select runs exactly the handler of the case it returns, never fires a nil case, never takes
//     the default when one of its channels was closed before it began (such a case is ready);
//   - size() <= capacity().
// Between epochs, with every actor returned and so nobody blocked, the values in each buffer
// are exactly the successful sends less the receives, and the coordinator checks size() and
// the outcome of non-blocking probes against that count, then drains each closed channel and puts
// a new one in its place, so that every epoch starts with open channels. At the end it closes and
// drains every channel and accounts for every value: each successful send received exactly once,
// no failed send's value, nor any other, received; and exactly one close() of each channel
// returned.
//
// When no operation completes for a while (every actor blocked, or too slow), the coordinator
// cancels an actor's stop token or closes a channel, which releases blocked parties: that too
// is an operation the programs could have made. A run in which nothing completes for
// deadlock_limit after every channel is closed is a deadlock: it prints what each actor was
// doing and aborts.

constexpr std::size_t max_chans = 4;
// How long nothing may complete before the coordinator releases a blocked actor: well above
// an operation's cost in each build, so that it seldom acts on a run that is only slow.
#if defined(GORO_TEST_TSAN)
constexpr auto stall_limit = 20ms;
#elif defined(GORO_TEST_ASAN)
constexpr auto stall_limit = 5ms;
#else
constexpr auto stall_limit = 1ms;
#endif
// How long nothing may complete, once every channel is closed, before the run is a deadlock.
constexpr auto deadlock_limit = goro_test::sanitized ? 60s : 20s;

enum class op_kind : std::uint8_t {
  send,
  try_send,
  send_for,
  send_stop,
  recv,
  try_recv,
  recv_for,
  recv_stop,
  range,
  select_block,
  select_default,
  select_stop,
  close,
  size,
  cancel,
  nil_probe,
  probe,
  drain,  // the coordinator's
};
constexpr std::size_t actor_op_kinds = 16;
constexpr const char* op_names[] = {
    "send",           "try_send",        "send_for",   "send(stop)", "recv",
    "try_recv",       "recv_for",        "recv(stop)", "range-for",  "select",
    "select+default", "select+on_stop",  "close",      "size",       "cancel",
    "nil probe",      "quiescent probe", "drain"};
const char* name_of(op_kind k) { return op_names[static_cast<std::size_t>(k)]; }

struct send_entry {
  tag t;
  bool ok;
  op_kind how;
};
struct recv_entry {
  tag t;
  std::size_t ch;
  op_kind how;
};

// One party's record; written only by the party, read by the coordinator once it has returned.
struct party_log {
  std::uint32_t id = 0;
  std::vector<send_entry> sends;
  std::vector<recv_entry> recvs;
  std::unordered_map<std::uint64_t, std::uint32_t> last_seq;  // (sender, channel) -> seq
  std::array<std::uint32_t, max_chans> next_seq{};
};

// What the parties publish about a channel's closing. Every store happens after the event it
// reports, and every check reads before (or after) the operation it judges, so a check never
// depends on which of two racing parties wins.
struct chan_flags {
  std::atomic<bool> closing{false};  // a close() has begun
  std::atomic<bool> closed{false};   // a close() has returned
  std::atomic<bool> drained{false};  // a receive has reported closed
  std::atomic<int> close_calls{0};   // close() calls begun
  std::atomic<int> closes{0};        // close() calls that returned
  std::atomic<int> close_throws{0};  // close() calls that threw closed_channel_error
};

// One actor of one epoch.
struct actor {
  party_log log;
  std::uint64_t seed = 0;
  enum class place { fiber, other_runtime, thread } where = place::fiber;
  std::array<std::stop_source, 3> stops;  // used in turn, once requested
  std::atomic<std::size_t> stop_at{0};
  std::atomic<int> doing{-1};  // the op_kind running, -1 between operations
  std::atomic<int> doing_chan{-1};
  std::atomic<bool> finished{false};
};

struct round_plan {
  std::vector<std::size_t> caps;
  std::size_t epochs = 1;
  std::size_t actors = 2;  // per epoch
  std::size_t ops = 10;    // per actor
  unsigned thread_percent = 0;
  unsigned other_percent = 0;  // of fibers, on a second runtime (one worker) sharing the channels
  unsigned close_weight = 0;   // against a total of about 100

  explicit round_plan(rng& r) {
    static constexpr std::size_t cap_choices[] = {0, 0, 1, 2, 3, 8};
    static constexpr unsigned thread_choices[] = {0, 20, 50};
    static constexpr unsigned other_choices[] = {0, 0, 30};
    static constexpr unsigned close_choices[] = {0, 1, 2};
    const std::size_t n = 1 + r.below(max_chans);
    for (std::size_t i = 0; i < n; ++i) caps.push_back(r.one_of(cap_choices));
    epochs = 1 + r.below(4);
    actors = 2 + r.below(5);
    ops = 5 + r.below(40);
    thread_percent = r.one_of(thread_choices);
    other_percent = r.one_of(other_choices);
    close_weight = r.one_of(close_choices);
  }
  std::string describe(std::size_t workers, const char* type) const {
    std::string s = str("%s values, %zu workers, channels of capacity", type, workers);
    for (const std::size_t c : caps) s += str(" %zu", c);
    return s + str("; %zu epochs of %zu actors (%u%% threads, %u%% of fibers on a second runtime)"
                   " x %zu operations, close weight %u",
                   epochs, actors, thread_percent, other_percent, ops, close_weight);
  }
};

// The state of one round: its channels and their flags, its actors, and failures found.
template <class T>
struct world {
  world(const round_plan& p, std::string text) : plan(p), description(std::move(text)) {
    for (const std::size_t cap : p.caps) chans.emplace_back(cap);
  }
  world(const world&) = delete;
  world& operator=(const world&) = delete;

  void fail(std::string what) {
    const std::lock_guard<std::mutex> lock(failures_mu);  // never held across a goro call
    if (failures.size() < 30) failures.push_back(std::move(what));
    failed.store(true);
  }

  const round_plan& plan;
  const std::string description;  // the plan, for messages
  std::vector<chan<T>> chans;
  const chan<T> nil{nullptr};
  std::array<chan_flags, max_chans> flags;
  std::atomic<std::uint64_t> progress{0};      // operations completed
  std::vector<std::unique_ptr<actor>> actors;  // every epoch's; grown only between epochs
  std::size_t epoch_begin = 0;                 // the current epoch's first actor
  std::mutex failures_mu;
  std::vector<std::string> failures;
  std::atomic<bool> failed{false};
};

// What actors and coordinator share: recording outcomes, and the checks that hold in every
// interleaving.
template <class T>
class party {
 protected:
  using traits = value_traits<T>;
  party(world<T>& w, party_log& log) : w_(w), log_(log) {}

  using select_record = ::select_record<T>;

  void fail(op_kind how, int ch, const std::string& what) {
    w_.fail(
        str("party %u, %s%s: ", log_.id, name_of(how), ch < 0 ? "" : str(" on c%d", ch).c_str()) +
        what);
  }
  void fail(op_kind how, std::size_t ch, const std::string& what) {
    fail(how, static_cast<int>(ch), what);
  }
  chan_flags& flags(std::size_t c) { return w_.flags[c]; }
  bool closed_now(std::size_t c) { return flags(c).closed.load(); }
  bool drained_now(std::size_t c) { return flags(c).drained.load(); }
  tag next_tag(std::size_t c) { return make_tag(log_.id, c, log_.next_seq[c]++); }

  // A send reported success.
  void sent(std::size_t c, tag t, op_kind how, bool closed_before) {
    if (closed_before) {
      fail(how, c, "a send succeeded on a channel closed before it began: " + tag_text(t));
    }
    tally(outcome::sent);
    log_.sends.push_back({t, true, how});
  }
  void not_sent(tag t, op_kind how) { log_.sends.push_back({t, false, how}); }
  // A send reported the channel closed (status closed, or closed_channel_error).
  void send_saw_closed(std::size_t c, tag t, op_kind how) {
    if (!flags(c).closing.load()) fail(how, c, "a send reported closed, but no close() had begun");
    tally(outcome::send_closed);
    not_sent(t, how);
  }
  // A receive got a value.
  void received(std::size_t c, std::optional<tag> t, op_kind how, bool drained_before) {
    if (!t) return fail(how, c, "received a moved-from value");
    tally(outcome::received);
    if (chan_of(*t) != c) {
      fail(how, c, "received " + tag_text(*t) + ", which was sent on another channel");
    }
    if (drained_before) {
      fail(how, c,
           "received " + tag_text(*t) +
               " although a receive had reported the channel closed and drained before this one "
               "began");
    }
    const std::uint64_t key = (std::uint64_t{sender_of(*t)} << 8) | chan_of(*t);
    const auto [it, fresh] = log_.last_seq.try_emplace(key, seq_of(*t));
    if (!fresh) {
      if (seq_of(*t) <= it->second) {
        fail(
            how, c,
            str("FIFO per sender broken: received %s after #%u", tag_text(*t).c_str(), it->second));
      }
      it->second = seq_of(*t);
    }
    log_.recvs.push_back({*t, c, how});
  }
  // A receive reported the channel closed and drained.
  void recv_saw_closed(std::size_t c, op_kind how) {
    if (!flags(c).closing.load()) {
      fail(how, c, "a receive reported closed, but no close() had begun");
    }
    tally(outcome::recv_closed);
    flags(c).drained.store(true);
  }
  void check_timeout(std::size_t c, op_kind how, clock_type::time_point start,
                     std::chrono::microseconds d) {
    if (clock_type::now() - start < d) fail(how, c, "timed out before its timeout had elapsed");
  }
  void check_intact(std::size_t c, op_kind how, const T& v, tag t) {
    if (traits::tag_of(v) != std::optional<tag>(t)) {
      fail(how, c, "a send that failed moved its value from");
    }
  }
  // close(); returns whether it returned (false: it threw closed_channel_error).
  bool do_close(std::size_t c) {
    chan_flags& f = flags(c);
    f.closing.store(true);
    f.close_calls.fetch_add(1);
    try {
      w_.chans[c].close();
    } catch (const closed_channel_error&) {
      f.close_throws.fetch_add(1);
      tally(outcome::close_threw);
      return false;
    }
    tally(outcome::close_ok);
    f.closes.fetch_add(1);
    f.closed.store(true);
    return true;
  }

  const chan<T>& chan_of_case(const case_plan& p) const {
    return p.ch < 0 ? w_.nil : w_.chans[static_cast<std::size_t>(p.ch)];
  }
  case_plan make_case(case_kind kind, int ch) {
    const bool real = ch >= 0 && (kind == case_kind::recv || kind == case_kind::send);
    const std::size_t c = static_cast<std::size_t>(real ? ch : 0);
    return {kind, ch, kind == case_kind::send ? (real ? next_tag(c) : nil_tag) : 0,
            real && closed_now(c), real && drained_now(c)};
  }

  // Runs the run-time form of select over `cases` (no stop case); nullopt if it threw.
  std::optional<std::size_t> run_select(const std::vector<case_plan>& cases, select_record& rec) {
    std::vector<goro::select_case> built = build_select(
        cases, rec, [this](const case_plan& p) -> const chan<T>& { return chan_of_case(p); });
    try {
      return goro::select(std::span(built));
    } catch (const closed_channel_error&) {
      return std::nullopt;
    }
  }

  // Checks a select's outcome whatever the interleaving, and records it.
  void finish_select(const std::vector<case_plan>& cases, std::optional<std::size_t> chosen,
                     select_record& rec, op_kind how, bool stop_requested) {
    std::size_t handlers = 0;
    for (const char r : rec.ran) handlers += r != 0 ? 1 : 0;
    tally(!chosen ? outcome::select_threw
          : *chosen >= cases.size() || cases[*chosen].kind == case_kind::recv ||
                  cases[*chosen].kind == case_kind::send
              ? outcome::select_case
          : cases[*chosen].kind == case_kind::otherwise ? outcome::select_default
                                                        : outcome::select_stop);
    for (std::size_t k = 0; k < cases.size(); ++k) {
      const case_plan& p = cases[k];
      if (p.kind == case_kind::send && (!chosen || k != *chosen)) not_sent(p.t, how);
    }
    if (!chosen) {
      bool closing = false;
      for (const case_plan& p : cases) {
        closing = closing || (p.kind == case_kind::send && p.ch >= 0 &&
                              flags(static_cast<std::size_t>(p.ch)).closing.load());
      }
      if (!closing) {
        fail(how, -1,
             "select threw closed_channel_error, but no send case's channel was being closed");
      }
      if (handlers != 0) fail(how, -1, "a handler ran although select threw");
      return;
    }
    const std::size_t k = *chosen;
    if (k >= cases.size() || handlers != 1 || rec.ran[k] == 0) {
      return fail(how, -1,
                  str("select returned %zu but ran %zu handlers, not that case's", k, handlers));
    }
    const case_plan& p = cases[k];
    switch (p.kind) {
      case case_kind::otherwise:
        for (const case_plan& q : cases) {
          if ((q.kind == case_kind::recv || q.kind == case_kind::send) && q.ch >= 0 &&
              q.closed_before) {
            fail(how, q.ch,
                 "select took the default although this case's channel was closed before it began");
          }
        }
        return;
      case case_kind::stop:
        if (!stop_requested) fail(how, -1, "select took on_stop without a stop request");
        return;
      case case_kind::send:
        if (p.ch < 0) return fail(how, -1, "select performed a send case on the nil channel");
        return sent(static_cast<std::size_t>(p.ch), p.t, how, p.closed_before);
      case case_kind::recv: {
        if (p.ch < 0) return fail(how, -1, "select performed a receive case on the nil channel");
        const std::size_t c = static_cast<std::size_t>(p.ch);
        if (rec.got[k]) return received(c, tag_of(rec.got[k]), how, p.drained_before);
        return recv_saw_closed(c, how);
      }
    }
  }

  world<T>& w_;
  party_log& log_;
};

// One actor's random program.
template <class T>
class actor_program : party<T> {
  using base = party<T>;
  using traits = typename base::traits;
  using select_record = typename base::select_record;

 public:
  actor_program(world<T>& w, actor& me) : base(w, me.log), me_(me), rng_(me.seed) {
    // Roles: mixed, producer, consumer, selector.
    static constexpr unsigned base_weights[actor_op_kinds] = {10, 8, 6, 4, 10, 8, 6, 4,
                                                              2,  6, 6, 3, 0,  2, 4, 1};
    const std::size_t role = rng_.below(4);
    for (std::size_t k = 0; k < actor_op_kinds; ++k) {
      unsigned wk = base_weights[k];
      if (role == 1 && k <= 3) wk *= 3;
      if (role == 2 && k >= 4 && k <= 8) wk *= 3;
      if (role == 3 && k >= 9 && k <= 11) wk *= 4;
      weights_[k] = wk;
    }
    weights_[static_cast<std::size_t>(op_kind::close)] = w.plan.close_weight;
    for (const unsigned wk : weights_) total_weight_ += wk;
    favourite_ = rng_.below(w.chans.size());
  }

  void run() {
    try {
      for (std::size_t i = 0; i < this->w_.plan.ops; ++i) {
        step();
        this->w_.progress.fetch_add(1, std::memory_order_relaxed);
      }
    } catch (const std::exception& e) {
      this->w_.fail(str("party %u: unexpected exception: %s", me_.log.id, e.what()));
    }
    me_.doing.store(-1);
  }

 private:
  op_kind draw() {
    std::size_t r = rng_.below(total_weight_);
    for (std::size_t k = 0; k < actor_op_kinds; ++k) {
      if (r < weights_[k]) return static_cast<op_kind>(k);
      r -= weights_[k];
    }
    return op_kind::size;
  }
  std::size_t pick() { return rng_.chance(60) ? favourite_ : rng_.below(this->w_.chans.size()); }
  int pick_or_nil() { return rng_.chance(8) ? -1 : static_cast<int>(pick()); }
  std::chrono::microseconds timeout() {
    static constexpr long us[] = {0, 0, 20, 200, 1000};
    return std::chrono::microseconds(rng_.one_of(us));
  }
  // The first of this actor's stop sources not yet requested (the last once all are).
  std::stop_token token() {
    std::size_t i = me_.stop_at.load();
    while (i + 1 < me_.stops.size() && me_.stops[i].stop_requested()) ++i;
    me_.stop_at.store(i);
    if (rng_.chance(10)) me_.stops[i].request_stop();  // cancelled before it begins
    return me_.stops[i].get_token();
  }
  void doing(op_kind k, int c) {
    me_.doing_chan.store(c);
    me_.doing.store(static_cast<int>(k));
  }

  void step() {
    const op_kind k = draw();
    switch (k) {
      case op_kind::send: return send();
      case op_kind::try_send: return try_send();
      case op_kind::send_for: return send_for();
      case op_kind::send_stop: return send_stop();
      case op_kind::recv: return recv();
      case op_kind::try_recv: return try_recv();
      case op_kind::recv_for: return recv_for();
      case op_kind::recv_stop: return recv_stop();
      case op_kind::range: return range();
      case op_kind::select_block:
      case op_kind::select_default: return select_run_time(k);
      case op_kind::select_stop: return select_variadic();
      case op_kind::close: {
        const std::size_t c = pick();
        doing(k, static_cast<int>(c));
        this->do_close(c);
        return;
      }
      case op_kind::size: return size();
      case op_kind::cancel: return cancel();
      default: return nil_probe();
    }
  }

  void send() {
    const std::size_t c = pick();
    doing(op_kind::send, static_cast<int>(c));
    const tag t = this->next_tag(c);
    const bool closed_before = this->closed_now(c);
    try {
      this->w_.chans[c].send(traits::make(t));
    } catch (const closed_channel_error&) {
      return this->send_saw_closed(c, t, op_kind::send);
    }
    this->sent(c, t, op_kind::send, closed_before);
  }

  void try_send() {
    const std::size_t c = pick();
    doing(op_kind::try_send, static_cast<int>(c));
    const tag t = this->next_tag(c);
    const bool closed_before = this->closed_now(c);
    T v = traits::make(t);
    const chan_status s = this->w_.chans[c].try_send(std::move(v));
    if (s == chan_status::ok) return this->sent(c, t, op_kind::try_send, closed_before);
    this->check_intact(c, op_kind::try_send, v, t);  // NOLINT(bugprone-use-after-move)
    if (s == chan_status::closed) return this->send_saw_closed(c, t, op_kind::try_send);
    if (s != chan_status::full) this->fail(op_kind::try_send, c, str("returned %s", name_of(s)));
    if (closed_before) {
      this->fail(op_kind::try_send, c, "reported full on a channel closed before it began");
    }
    tally(true, s);
    this->not_sent(t, op_kind::try_send);
  }

  void send_for() {
    const std::size_t c = pick();
    doing(op_kind::send_for, static_cast<int>(c));
    const tag t = this->next_tag(c);
    const auto d = timeout();
    const bool closed_before = this->closed_now(c);
    T v = traits::make(t);
    const auto start = clock_type::now();
    chan_status s;
    try {
      s = this->w_.chans[c].send_for(std::move(v), d);
    } catch (const closed_channel_error&) {
      return this->send_saw_closed(c, t, op_kind::send_for);
    }
    if (s == chan_status::ok) return this->sent(c, t, op_kind::send_for, closed_before);
    this->check_intact(c, op_kind::send_for, v, t);  // NOLINT(bugprone-use-after-move)
    if (s != chan_status::timeout) this->fail(op_kind::send_for, c, str("returned %s", name_of(s)));
    if (closed_before) {
      this->fail(op_kind::send_for, c, "timed out on a channel closed before it began");
    }
    this->check_timeout(c, op_kind::send_for, start, d);
    tally(true, s);
    this->not_sent(t, op_kind::send_for);
  }

  void send_stop() {
    const std::size_t c = pick();
    doing(op_kind::send_stop, static_cast<int>(c));
    const tag t = this->next_tag(c);
    const std::stop_token tok = token();
    const bool closed_before = this->closed_now(c);
    chan_status s;
    try {
      s = this->w_.chans[c].send(traits::make(t), tok);
    } catch (const closed_channel_error&) {
      return this->send_saw_closed(c, t, op_kind::send_stop);
    }
    if (s == chan_status::ok) return this->sent(c, t, op_kind::send_stop, closed_before);
    if (s != chan_status::cancelled) {
      this->fail(op_kind::send_stop, c, str("returned %s", name_of(s)));
    }
    if (!tok.stop_requested()) {
      this->fail(op_kind::send_stop, c, "cancelled without a stop request");
    }
    tally(true, s);
    this->not_sent(t, op_kind::send_stop);
  }

  void recv() {
    const std::size_t c = pick();
    doing(op_kind::recv, static_cast<int>(c));
    const bool drained_before = this->drained_now(c);
    const std::optional<T> v = this->w_.chans[c].recv();
    if (v) return this->received(c, traits::tag_of(*v), op_kind::recv, drained_before);
    this->recv_saw_closed(c, op_kind::recv);
  }

  // The checks common to every receive that returns a recv_result.
  void finish_recv(std::size_t c, op_kind how, const goro::recv_result<T>& r, bool closed_before,
                   bool drained_before, chan_status would_block) {
    if (r.status == chan_status::ok) {
      if (!r.value) return this->fail(how, c, "ok without a value");
      return this->received(c, traits::tag_of(*r.value), how, drained_before);
    }
    if (r.value) this->fail(how, c, str("a value with status %s", name_of(r.status)));
    if (r.status == chan_status::closed) return this->recv_saw_closed(c, how);
    if (r.status != would_block) return this->fail(how, c, str("returned %s", name_of(r.status)));
    tally(false, r.status);
    if (closed_before && would_block != chan_status::cancelled) {
      this->fail(how, c, str("reported %s on a channel closed before it began", name_of(r.status)));
    }
  }

  void try_recv() {
    const std::size_t c = pick();
    doing(op_kind::try_recv, static_cast<int>(c));
    const bool closed_before = this->closed_now(c);
    const bool drained_before = this->drained_now(c);
    const goro::recv_result<T> r = this->w_.chans[c].try_recv();
    finish_recv(c, op_kind::try_recv, r, closed_before, drained_before, chan_status::empty);
  }

  void recv_for() {
    const std::size_t c = pick();
    doing(op_kind::recv_for, static_cast<int>(c));
    const auto d = timeout();
    const bool closed_before = this->closed_now(c);
    const bool drained_before = this->drained_now(c);
    const auto start = clock_type::now();
    const goro::recv_result<T> r = this->w_.chans[c].recv_for(d);
    if (r.status == chan_status::timeout) this->check_timeout(c, op_kind::recv_for, start, d);
    finish_recv(c, op_kind::recv_for, r, closed_before, drained_before, chan_status::timeout);
  }

  void recv_stop() {
    const std::size_t c = pick();
    doing(op_kind::recv_stop, static_cast<int>(c));
    const std::stop_token tok = token();
    const bool drained_before = this->drained_now(c);
    const goro::recv_result<T> r = this->w_.chans[c].recv(tok);
    if (r.status == chan_status::cancelled && !tok.stop_requested()) {
      this->fail(op_kind::recv_stop, c, "cancelled without a stop request");
    }
    finish_recv(c, op_kind::recv_stop, r, false, drained_before, chan_status::cancelled);
  }

  // for (T v : ch), breaking out after a few values.
  void range() {
    const std::size_t c = pick();
    doing(op_kind::range, static_cast<int>(c));
    const std::size_t stop_after = 1 + rng_.below(4);
    const bool drained_before = this->drained_now(c);
    std::size_t n = 0;
    for (auto&& v : this->w_.chans[c]) {
      this->received(c, traits::tag_of(v), op_kind::range, drained_before);
      if (++n == stop_after) return;
    }
    this->recv_saw_closed(c, op_kind::range);
  }

  // The run-time form, with a default (select_default) or blocking.
  void select_run_time(op_kind how) {
    const std::size_t n = rng_.select_cases();
    std::vector<case_plan> cases;
    bool real = false;
    for (std::size_t k = 0; k < n; ++k) {
      int ch = pick_or_nil();
      if (k + 1 == n && !real && how == op_kind::select_block) ch = static_cast<int>(pick());
      real = real || ch >= 0;
      cases.push_back(this->make_case(rng_.chance(50) ? case_kind::send : case_kind::recv, ch));
    }
    if (how == op_kind::select_default) {
      const std::size_t at = rng_.below(n + 1);
      cases.insert(cases.begin() + static_cast<std::ptrdiff_t>(at),
                   this->make_case(case_kind::otherwise, -1));
    }
    doing(how, cases.front().ch);
    select_record rec(cases.size());
    const std::optional<std::size_t> chosen = this->run_select(cases, rec);
    this->finish_select(cases, chosen, rec, how, false);
  }

  // The variadic form: select(on_recv(a), on_send(b, v), on_stop(token)) or with otherwise().
  void select_variadic() {
    std::vector<case_plan> cases{this->make_case(case_kind::recv, pick_or_nil()),
                                 this->make_case(case_kind::send, pick_or_nil())};
    doing(op_kind::select_stop, cases[0].ch);
    const chan<T>& a = this->chan_of_case(cases[0]);
    const chan<T>& b = this->chan_of_case(cases[1]);
    select_record rec(3);
    std::optional<std::size_t> chosen;
    bool stop_requested = false;
    if (rng_.chance(30)) {
      cases.push_back(this->make_case(case_kind::otherwise, -1));
      chosen = run_variadic_select(a, b, cases[1].t, rec, nullptr);
    } else {
      cases.push_back(this->make_case(case_kind::stop, -1));
      const std::stop_token tok = token();
      chosen = run_variadic_select(a, b, cases[1].t, rec, &tok);
      stop_requested = tok.stop_requested();
    }
    this->finish_select(cases, chosen, rec, op_kind::select_stop, stop_requested);
  }

  void size() {
    const std::size_t c = pick();
    doing(op_kind::size, static_cast<int>(c));
    const std::size_t n = this->w_.chans[c].size();
    const std::size_t cap = this->w_.chans[c].capacity();
    if (cap != this->w_.plan.caps[c]) this->fail(op_kind::size, c, str("capacity() is %zu", cap));
    if (n > cap) this->fail(op_kind::size, c, str("size() %zu exceeds capacity() %zu", n, cap));
  }

  // Requests stop on a stop source of an actor of this epoch (perhaps this one).
  void cancel() {
    doing(op_kind::cancel, -1);
    const std::size_t n = this->w_.actors.size() - this->w_.epoch_begin;
    actor& other = *this->w_.actors[this->w_.epoch_begin + rng_.below(n)];
    other.stops[rng_.below(other.stops.size())].request_stop();
  }

  void nil_probe() {
    doing(op_kind::nil_probe, -1);
    const chan<T>& nil = this->w_.nil;
    const op_kind how = op_kind::nil_probe;
    switch (rng_.below(4)) {
      case 0: {
        T v = traits::make(nil_tag);
        const chan_status s = nil.try_send(std::move(v));
        if (s != chan_status::full) {
          this->fail(how, -1, str("try_send returned %s, not full", name_of(s)));
        }
        if (traits::tag_of(v) != std::optional<tag>(nil_tag)) {
          this->fail(how, -1, "try_send moved from its value");  // NOLINT
        }
        return;
      }
      case 1: {
        const goro::recv_result<T> r = nil.try_recv();
        if (r.status != chan_status::empty) {
          this->fail(how, -1, str("try_recv returned %s, not empty", name_of(r.status)));
        }
        return;
      }
      case 2: {
        const auto d = timeout();
        const auto start = clock_type::now();
        const goro::recv_result<T> r = nil.recv_for(d);
        if (r.status != chan_status::timeout) {
          this->fail(how, -1, str("recv_for returned %s, not timeout", name_of(r.status)));
        }
        if (clock_type::now() - start < d) this->fail(how, -1, "recv_for timed out early");
        return;
      }
      default: {
        bool threw = false;
        try {
          nil.close();
        } catch (const closed_channel_error&) {
          threw = true;
        }
        if (!threw) this->fail(how, -1, "close() of the nil channel did not throw");
        return;
      }
    }
  }

  actor& me_;
  rng rng_;
  std::array<unsigned, actor_op_kinds> weights_{};
  std::size_t total_weight_ = 0;
  std::size_t favourite_ = 0;
};

// The test's thread: runs the epochs, unblocks stalls, checks quiescent states exactly, drains
// and accounts for every value.
template <class T>
class coordinator : party<T> {
  using base = party<T>;
  using traits = typename base::traits;
  using select_record = typename base::select_record;

 public:
  coordinator(goro::runtime& rt, goro::runtime& other, world<T>& w, party_log& log,
              std::uint64_t seed)
      : base(w, log), rt_(rt), other_(other), rng_(seed) {}

  void run() {
    world<T>& wd = w();
    for (std::size_t e = 0; e < wd.plan.epochs && !wd.failed.load(); ++e) {
      run_epoch();
      quiescent_checks();
      if (e + 1 < wd.plan.epochs) renew_closed();
    }
    if (wd.failed.load()) return;
    const std::array<std::size_t, max_chans> n = held();
    for (std::size_t c = 0; c < wd.chans.size(); ++c) {
      if (this->flags(c).closes.load() == 0 && !this->do_close(c)) {
        this->fail(op_kind::drain, c, "close() of an open channel threw");
      }
      drain(c, n[c]);
    }
    quiescent_checks();
    account();
  }

 private:
  world<T>& w() { return this->w_; }

  void run_epoch() {
    world<T>& wd = w();
    wd.epoch_begin = wd.actors.size();
    for (std::size_t i = 0; i < wd.plan.actors; ++i) {
      auto a = std::make_unique<actor>();
      a->log.id = static_cast<std::uint32_t>(wd.actors.size() + 1);
      a->seed = mix(seed_base_, wd.actors.size());
      a->where = rng_.chance(wd.plan.thread_percent)  ? actor::place::thread
                 : rng_.chance(wd.plan.other_percent) ? actor::place::other_runtime
                                                      : actor::place::fiber;
      wd.actors.push_back(std::move(a));
    }
    std::vector<std::thread> threads;
    for (std::size_t i = wd.epoch_begin; i < wd.actors.size(); ++i) {
      actor* a = wd.actors[i].get();
      auto body = [&wd, a] {
        actor_program<T>(wd, *a).run();
        wd.progress.fetch_add(1);
        // Last: the coordinator may read the log, and then free the world, once it sees this.
        a->finished.store(true);
      };
      switch (a->where) {
        case actor::place::thread: threads.emplace_back(body); break;
        case actor::place::other_runtime: other_.go(body); break;
        case actor::place::fiber: rt_.go(body); break;
      }
    }
    wait_for_actors();
    for (std::thread& t : threads) t.join();
  }

  // Waits until every actor of the epoch has returned. While nothing completes for
  // stall_limit, releases blocked actors: cancels one's stop token, or closes a channel.
  void wait_for_actors() {
    world<T>& wd = w();
    std::uint64_t seen = wd.progress.load();
    auto last_progress = clock_type::now();
    auto last_move = last_progress;
    for (;;) {
      std::vector<actor*> running;
      for (std::size_t i = wd.epoch_begin; i < wd.actors.size(); ++i) {
        if (!wd.actors[i]->finished.load()) running.push_back(wd.actors[i].get());
      }
      if (running.empty()) return;
      std::this_thread::sleep_for(200us);  // the test's thread, not a worker: sleeping is fine
      const auto now = clock_type::now();
      const std::uint64_t p = wd.progress.load();
      if (p != seen) {
        seen = p;
        last_progress = last_move = now;
        continue;
      }
      if (now - last_move < stall_limit) continue;
      last_move = now;
      std::vector<std::size_t> open;
      for (std::size_t c = 0; c < wd.chans.size(); ++c) {
        if (!this->flags(c).closing.load()) open.push_back(c);
      }
      if (!open.empty() && rng_.chance(60)) {
        tally(outcome::stall_close);
        this->do_close(open[rng_.below(open.size())]);
        continue;
      }
      actor& a = *running[rng_.below(running.size())];
      if (!open.empty()) {
        tally(outcome::stall_cancel);
        a.stops[a.stop_at.load()].request_stop();
        continue;
      }
      for (actor* r : running) {
        for (std::stop_source& s : r->stops) s.request_stop();
      }
      if (now - last_progress > deadlock_limit) deadlock(running);
    }
  }

  [[noreturn]] void deadlock(const std::vector<actor*>& running) {
    std::fprintf(stderr,
                 "chan_fuzz_test: deadlock: no operation completed for %lld s, with every channel "
                 "closed and every stop token requested\nround: %s\n",
                 static_cast<long long>(
                     std::chrono::duration_cast<std::chrono::seconds>(deadlock_limit).count()),
                 w().description.c_str());
    for (const actor* a : running) {
      const int k = a->doing.load();
      std::fprintf(stderr, "  party %u (%s) blocked in %s on %s\n", a->log.id,
                   a->where == actor::place::thread          ? "thread"
                   : a->where == actor::place::other_runtime ? "fiber of the second runtime"
                                                             : "fiber",
                   k < 0 ? "-" : name_of(static_cast<op_kind>(k)),
                   a->doing_chan.load() < 0 ? "nil/-" : str("c%d", a->doing_chan.load()).c_str());
    }
    std::fprintf(stderr, "%s\n", replay_line.c_str());
    std::abort();
  }

  // The values each channel's buffer holds: successful sends less receives, over every party.
  std::array<std::size_t, max_chans> held() {
    std::array<std::int64_t, max_chans> n{};
    auto count = [&n](const party_log& record) {
      for (const send_entry& s : record.sends) {
        if (s.ok) n[chan_of(s.t)] += 1;  // only real channels' sends succeed
      }
      for (const recv_entry& r : record.recvs) n[r.ch] -= 1;
    };
    for (const auto& a : w().actors) count(a->log);
    count(this->log_);
    std::array<std::size_t, max_chans> out{};
    for (std::size_t c = 0; c < max_chans; ++c) {
      if (n[c] < 0) {
        this->fail(op_kind::probe, c,
                   str("more values received than sent (%lld)", static_cast<long long>(n[c])));
      }
      out[c] = n[c] < 0 ? 0 : static_cast<std::size_t>(n[c]);
    }
    return out;
  }

  // With nobody blocked, every outcome is determined by the counts: checks size() and the
  // close counts, non-blocking probes, a select with default, and a few operations that must
  // complete.
  void quiescent_checks() {
    world<T>& wd = w();
    const op_kind how = op_kind::probe;
    std::array<std::size_t, max_chans> n = held();
    for (std::size_t c = 0; c < wd.chans.size(); ++c) {
      const chan<T>& ch = wd.chans[c];
      const std::size_t cap = wd.plan.caps[c];
      chan_flags& f = this->flags(c);
      const int calls = f.close_calls.load();
      const int closes = f.closes.load();
      if (closes > 1) this->fail(how, c, str("close() returned %d times", closes));
      if (calls != closes + f.close_throws.load()) {
        this->fail(how, c, "a close() neither returned nor threw");
      }
      if (calls > 0 && closes != 1) {
        this->fail(how, c, str("%d close() calls and none returned", calls));
      }
      const bool closed = closes > 0;
      if (ch.size() != n[c]) {
        this->fail(how, c, str("size() is %zu but the buffer holds %zu values", ch.size(), n[c]));
      }
      if (ch.capacity() != cap) {
        this->fail(how, c, str("capacity() is %zu, not %zu", ch.capacity(), cap));
      }
      if (n[c] > cap) {
        this->fail(how, c, str("%zu values buffered in a capacity of %zu", n[c], cap));
      }
      if (!closed && n[c] == 0) {
        const goro::recv_result<T> r = ch.try_recv();
        if (r.status != chan_status::empty) {
          this->fail(how, c, str("try_recv on an empty open channel: %s", name_of(r.status)));
        }
        const goro::recv_result<T> r2 = ch.recv_for(0us);
        if (r2.status != chan_status::timeout) {
          this->fail(how, c, str("recv_for(0) on an empty open channel: %s", name_of(r2.status)));
        }
      }
      if (!closed && n[c] == cap) {
        const tag t = this->next_tag(c);
        T v = traits::make(t);
        const chan_status s = ch.try_send(std::move(v));
        if (s != chan_status::full) {
          this->fail(how, c,
                     str("try_send on a full open channel (capacity %zu, no receiver): %s", cap,
                         name_of(s)));
        }
        if (s == chan_status::ok) {
          this->sent(c, t, how, false);
        } else {
          this->not_sent(t, how);
          this->check_intact(c, how, v, t);  // NOLINT(bugprone-use-after-move)
        }
        const tag t2 = this->next_tag(c);
        const chan_status s2 = ch.send_for(traits::make(t2), 0us);
        if (s2 != chan_status::timeout) {
          this->fail(how, c, str("send_for(0) on a full open channel: %s", name_of(s2)));
        }
        if (s2 == chan_status::ok) {
          this->sent(c, t2, how, false);
        } else {
          this->not_sent(t2, how);
        }
      }
      if (closed) {
        const tag t = this->next_tag(c);
        T v = traits::make(t);
        const chan_status s = ch.try_send(std::move(v));
        if (s != chan_status::closed) {
          this->fail(how, c, str("try_send on a closed channel: %s", name_of(s)));
        }
        if (s == chan_status::ok) {
          this->sent(c, t, how, true);
        } else {
          this->not_sent(t, how);
          this->check_intact(c, how, v, t);  // NOLINT(bugprone-use-after-move)
        }
        const tag t2 = this->next_tag(c);
        try {
          ch.send(traits::make(t2));
          this->sent(c, t2, how, true);  // fails: closed before it began
        } catch (const closed_channel_error&) {
          this->not_sent(t2, how);
        }
        if (this->do_close(c)) this->fail(how, c, "close() of a closed channel did not throw");
        if (n[c] == 0) {
          const goro::recv_result<T> r = ch.try_recv();
          if (r.status != chan_status::closed) {
            this->fail(how, c, str("try_recv on a closed, drained channel: %s", name_of(r.status)));
          }
          if (ch.recv()) this->fail(how, c, "recv on a closed, drained channel returned a value");
        }
      }
    }
    if (wd.failed.load()) return;
    for (int i = 0; i < 3; ++i) quiescent_select(n);
    // Operations that must complete now: a try_send with room, a try_recv with a value.
    for (int i = 0; i < 2; ++i) {
      const std::size_t c = rng_.below(wd.chans.size());
      const bool closed = this->flags(c).closes.load() > 0;
      if (!closed && n[c] < wd.plan.caps[c]) {
        const tag t = this->next_tag(c);
        const chan_status s = wd.chans[c].try_send(traits::make(t));
        if (s != chan_status::ok) {
          this->fail(how, c,
                     str("try_send with room in the buffer (%zu of %zu): %s", n[c], wd.plan.caps[c],
                         name_of(s)));
          this->not_sent(t, how);
        } else {
          this->sent(c, t, how, false);
          ++n[c];
        }
      }
      if (n[c] > 0) {
        goro::recv_result<T> r = wd.chans[c].try_recv();
        if (r.status != chan_status::ok || !r.value) {
          this->fail(how, c, str("try_recv with %zu values buffered: %s", n[c], name_of(r.status)));
        } else {
          this->received(c, traits::tag_of(*r.value), how, false);
          --n[c];
        }
      }
    }
  }

  // A select with default whose readiness the counts decide: the default exactly when no case
  // is ready.
  void quiescent_select(std::array<std::size_t, max_chans>& n) {
    world<T>& wd = w();
    const op_kind how = op_kind::probe;
    const std::size_t count = rng_.select_cases();
    std::vector<case_plan> cases;
    bool any_ready = false;
    for (std::size_t k = 0; k < count; ++k) {
      const int ch = rng_.chance(10) ? -1 : static_cast<int>(rng_.below(wd.chans.size()));
      const case_kind kind = rng_.chance(50) ? case_kind::send : case_kind::recv;
      if (ch >= 0) {
        const std::size_t c = static_cast<std::size_t>(ch);
        const bool closed = this->flags(c).closes.load() > 0;
        any_ready =
            any_ready || closed || (kind == case_kind::recv ? n[c] > 0 : n[c] < wd.plan.caps[c]);
      }
      cases.push_back(this->make_case(kind, ch));
    }
    cases.insert(cases.begin() + static_cast<std::ptrdiff_t>(rng_.below(count + 1)),
                 this->make_case(case_kind::otherwise, -1));
    select_record rec(cases.size());
    const std::optional<std::size_t> chosen = this->run_select(cases, rec);
    const bool took_default = chosen && cases[*chosen].kind == case_kind::otherwise;
    if (took_default && any_ready) {
      this->fail(how, -1, "a select with default took the default although a case was ready");
    }
    if (chosen && !took_default && !any_ready) {
      this->fail(how, -1, "a select with default performed a case although none was ready");
    }
    this->finish_select(cases, chosen, rec, how, false);
    if (chosen && !took_default && cases[*chosen].ch >= 0) {
      const std::size_t c = static_cast<std::size_t>(cases[*chosen].ch);
      const bool closed = this->flags(c).closes.load() > 0;
      if (cases[*chosen].kind == case_kind::send) {
        if (closed || n[c] >= wd.plan.caps[c]) {
          this->fail(how, c, "select performed a send case that was not ready");
        }
        ++n[c];
      } else if (rec.got[*chosen]) {
        if (n[c] == 0) this->fail(how, c, "select received from an empty channel");
        --n[c];
      } else if (n[c] > 0) {
        this->fail(how, c, str("select's receive reported closed with %zu values buffered", n[c]));
      }
    }
  }

  // Drains every closed channel and puts a new one of the same capacity in its place, so that
  // each epoch starts with open channels (values and flags of the old one are all accounted for).
  void renew_closed() {
    world<T>& wd = w();
    const std::array<std::size_t, max_chans> n = held();
    for (std::size_t c = 0; c < wd.chans.size() && !wd.failed.load(); ++c) {
      chan_flags& f = this->flags(c);
      if (f.closes.load() == 0) continue;
      drain(c, n[c]);
      wd.chans[c] = chan<T>(wd.plan.caps[c]);
      f.closing.store(false);
      f.closed.store(false);
      f.drained.store(false);
      f.close_calls.store(0);
      f.closes.store(0);
      f.close_throws.store(0);
    }
  }

  // Receives what closed channel c holds, `held` values by the counts, by a random mix of the
  // receive forms: exactly those, then closed.
  void drain(std::size_t c, std::size_t held) {
    const op_kind how = op_kind::drain;
    const chan<T>& ch = w().chans[c];
    std::size_t got = 0;
    bool closed_seen = false;
    while (!closed_seen && got <= held) {
      std::optional<T> v;
      switch (rng_.below(4)) {
        case 0: v = ch.recv(); break;
        case 1: v = std::move(ch.try_recv().value); break;
        case 2: v = std::move(ch.recv_for(1ms).value); break;
        default:
          for (auto&& x : ch) {
            this->received(c, traits::tag_of(x), how, false);
            ++got;
          }
          closed_seen = true;
          continue;
      }
      if (v) {
        this->received(c, traits::tag_of(*v), how, false);
        ++got;
      } else {
        closed_seen = true;
      }
    }
    if (got != held) {
      this->fail(how, c, str("drained %zu values after close, but %zu were buffered", got, held));
    }
    const goro::recv_result<T> r = ch.try_recv();
    if (r.status != chan_status::closed) {
      this->fail(how, c, str("try_recv after the drain: %s", name_of(r.status)));
    }
  }

  // Every value sent successfully was received exactly once; nothing else was received.
  void account() {
    struct fate {
      bool ok;
      op_kind how;
      int received;
    };
    std::unordered_map<tag, fate> fates;
    std::vector<const party_log*> logs;
    for (const auto& a : w().actors) logs.push_back(&a->log);
    logs.push_back(&this->log_);
    for (const party_log* record : logs) {
      for (const send_entry& s : record->sends) {
        if (s.t == nil_tag) continue;
        if (!fates.try_emplace(s.t, fate{s.ok, s.how, 0}).second) {
          this->fail(s.how, chan_of(s.t), "the fuzzer sent tag " + tag_text(s.t) + " twice");
        }
      }
    }
    for (const party_log* record : logs) {
      for (const recv_entry& r : record->recvs) {
        const auto it = fates.find(r.t);
        if (it == fates.end()) {
          this->fail(
              r.how, r.ch,
              str("party %u received %s, which nobody sent", record->id, tag_text(r.t).c_str()));
          continue;
        }
        if (!it->second.ok) {
          this->fail(r.how, r.ch,
                     str("party %u received %s, whose %s reported that it did not send it",
                         record->id, tag_text(r.t).c_str(), name_of(it->second.how)));
        }
        if (++it->second.received == 2) {
          this->fail(r.how, r.ch,
                     str("party %u received %s a second time", record->id, tag_text(r.t).c_str()));
        }
      }
    }
    for (const auto& [t, f] : fates) {
      if (f.ok && f.received == 0) {
        this->fail(f.how, chan_of(t),
                   "lost " + tag_text(t) + ": its send reported success but nobody received it");
      }
    }
  }

  goro::runtime& rt_;
  goro::runtime& other_;
  rng rng_;
  std::uint64_t seed_base_ = rng_.next();
};

template <class T>
void run_concurrent(std::size_t workers, const char* type) {
  goro::runtime rt{goro::options{.workers = workers}};
  goro::runtime other{goro::options{.workers = 1}};
  run_rounds(
      150, 10, 1,
      [&rt, &other, workers, type](std::size_t, std::uint64_t seed) -> std::optional<std::string> {
        rng r(seed);
        const round_plan plan(r);
        world<T> w(plan, plan.describe(workers, type));
        party_log coordinator_log;  // id 0
        coordinator<T>(rt, other, w, coordinator_log, r.next()).run();
        if (!w.failed.load()) return std::nullopt;
        std::string text = "round: " + w.description;
        for (const std::string& f : w.failures) text += "\n  " + f;
        return text;
      });
}

// ---- tests -----------------------------------------------------------------------------------

TEST(ChanFuzz, SequentialCopyable) { run_sequential<std::uint64_t>(); }
TEST(ChanFuzz, SequentialMoveOnly) { run_sequential<boxed>(); }

class ChanFuzzConcurrent : public ::testing::TestWithParam<std::size_t> {};

TEST_P(ChanFuzzConcurrent, Copyable) { run_concurrent<std::uint64_t>(GetParam(), "copyable"); }
TEST_P(ChanFuzzConcurrent, MoveOnly) { run_concurrent<boxed>(GetParam(), "move-only"); }

INSTANTIATE_TEST_SUITE_P(Workers, ChanFuzzConcurrent,
                         ::testing::Values(std::size_t{1}, std::size_t{2}, std::size_t{4}),
                         goro_test::worker_count_name);

}  // namespace
