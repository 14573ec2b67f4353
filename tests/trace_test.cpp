// SPDX-License-Identifier: Apache-2.0
// goro::trace_start and trace_stop (goro/trace.hpp, docs/diagnostics.md "Trace"): a trace of a
// known program parses as JSON and holds the expected slices: every fiber's run slices, on
// worker tracks where no two slices overlap; spawn arrows from a slice of the parent to the
// child's first slice, wake arrows from the waker's slice to the woken fiber's next slice; a
// trace stopped while fibers run is whole; nothing is recorded once the trace is off.
#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <stdexcept>
#include <streambuf>
#include <string>
#include <utility>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "goro/goro.hpp"
#include "goro/trace.hpp"
#include "test_support.hpp"

namespace {

using json = nlohmann::json;
using goro::chan;

// Microseconds with three decimals, back to whole nanoseconds.
std::int64_t ns(const json& v) { return std::llround(v.get<double>() * 1000.0); }

struct run_slice {
  std::uint64_t fiber;
  std::int64_t start;
  std::int64_t end;
  std::string site;
};
using track_key = std::pair<std::int64_t, std::int64_t>;  // pid (runtime), tid (worker)

// A parsed trace: the slices per track, in time order, and the arrows.
struct parsed_trace {
  std::map<track_key, std::vector<run_slice>> tracks;
  struct arrow {
    std::string name;
    track_key from_track;
    std::int64_t from_ts;
    track_key to_track;
    std::int64_t to_ts;
  };
  std::vector<arrow> arrows;

  // The slice of `track` that holds `ts` (for an arrow's start), or null.
  // REQUIRES: the tracks sorted by start (parse() sorts them).
  const run_slice* enclosing(const track_key& track, std::int64_t ts) const {
    const run_slice* s = last_starting_by(track, ts);
    return s != nullptr && ts < s->end ? s : nullptr;
  }
  // The slice of `track` that begins at `ts` (an arrow's end binds to the next slice), or null.
  const run_slice* starting(const track_key& track, std::int64_t ts) const {
    const run_slice* s = last_starting_by(track, ts);
    return s != nullptr && s->start == ts ? s : nullptr;
  }
  // The last slice of `track` that begins at or before `ts`, or null.
  const run_slice* last_starting_by(const track_key& track, std::int64_t ts) const {
    const auto t = tracks.find(track);
    if (t == tracks.end()) return nullptr;
    const auto after =
        std::upper_bound(t->second.begin(), t->second.end(), ts,
                         [](std::int64_t v, const run_slice& s) { return v < s.start; });
    return after == t->second.begin() ? nullptr : &*(after - 1);
  }
  std::size_t slices_of(std::uint64_t fiber) const {
    std::size_t n = 0;
    for (const auto& t : tracks) {
      n += static_cast<std::size_t>(
          std::count_if(t.second.begin(), t.second.end(),
                        [fiber](const run_slice& s) { return s.fiber == fiber; }));
    }
    return n;
  }
};

parsed_trace parse(const std::string& text) {
  parsed_trace out;
  const json doc = json::parse(text);  // throws, failing the test, if it is not JSON
  EXPECT_TRUE(doc.contains("traceEvents"));
  std::map<std::int64_t, std::pair<track_key, std::int64_t>> starts;  // flow id -> "s"
  std::map<std::int64_t, std::string> names;
  std::vector<std::pair<std::int64_t, std::pair<track_key, std::int64_t>>> finishes;
  for (const json& e : doc.at("traceEvents")) {
    const std::string ph = e.at("ph").get<std::string>();
    if (ph == "M") continue;
    const track_key key{e.at("pid").get<std::int64_t>(), e.at("tid").get<std::int64_t>()};
    if (ph == "X") {
      const std::int64_t start = ns(e.at("ts"));
      const auto& args = e.at("args");
      EXPECT_EQ(e.at("name").get<std::string>(),
                "fiber " + std::to_string(args.at("fiber").get<std::uint64_t>()));
      out.tracks[key].push_back({args.at("fiber").get<std::uint64_t>(), start,
                                 start + ns(e.at("dur")),
                                 args.contains("site") ? args.at("site").get<std::string>() : ""});
    } else if (ph == "s") {
      starts[e.at("id").get<std::int64_t>()] = {key, ns(e.at("ts"))};
      names[e.at("id").get<std::int64_t>()] = e.at("name").get<std::string>();
    } else if (ph == "f") {
      finishes.push_back({e.at("id").get<std::int64_t>(), {key, ns(e.at("ts"))}});
    } else {
      ADD_FAILURE() << "unexpected event " << e.dump();
    }
  }
  for (auto& t : out.tracks) {
    std::sort(t.second.begin(), t.second.end(),
              [](const run_slice& a, const run_slice& b) { return a.start < b.start; });
  }
  EXPECT_EQ(starts.size(), finishes.size());
  for (const auto& f : finishes) {
    const auto s = starts.find(f.first);
    if (s == starts.end()) {
      ADD_FAILURE() << "flow " << f.first << " ends but never starts";
      continue;
    }
    out.arrows.push_back(
        {names[f.first], s->second.first, s->second.second, f.second.first, f.second.second});
  }
  return out;
}

// Every track's slices follow one another without overlapping, and every arrow leaves from
// inside a slice and enters one at its start.
void expect_well_formed(const parsed_trace& t) {
  for (const auto& track : t.tracks) {
    for (std::size_t i = 0; i < track.second.size(); ++i) {
      EXPECT_LE(track.second[i].start, track.second[i].end);
      if (i > 0) {
        EXPECT_LE(track.second[i - 1].end, track.second[i].start)
            << "overlap on worker " << track.first.second << ": fiber " << track.second[i - 1].fiber
            << " and fiber " << track.second[i].fiber;
      }
    }
  }
  for (const auto& a : t.arrows) {
    EXPECT_NE(t.enclosing(a.from_track, a.from_ts), nullptr) << a.name << " from nowhere";
    EXPECT_NE(t.starting(a.to_track, a.to_ts), nullptr) << a.name << " to nowhere";
  }
}

std::string stop_trace(std::ostringstream& out) {
  EXPECT_TRUE(goro::trace_stop());
  return out.str();
}

class TraceTest : public goro_test::workers_test {};

TEST_P(TraceTest, PingPongHasEachFibersSlicesAndWakeArrows) {
  constexpr int rounds = 50;
  goro::runtime rt(opts());
  std::ostringstream out;
  goro::trace_start(out);
  std::atomic<std::uint64_t> ping_id{0};
  std::atomic<std::uint64_t> pong_id{0};
  std::atomic<std::uint64_t> parent_id{0};
  goro::wait_group wg;
  wg.add(1);
  rt.go([&] {
    parent_id = goro::this_fiber::get_id();
    chan<int> ping;
    chan<int> pong;
    goro::wait_group both;
    both.add(2);
    goro::go([&] {
      ping_id = goro::this_fiber::get_id();
      for (int i = 0; i < rounds; ++i) {
        ping.send(i);
        EXPECT_TRUE(pong.recv().has_value());
      }
      both.done();
    });
    goro::go([&] {
      pong_id = goro::this_fiber::get_id();
      for (int i = 0; i < rounds; ++i) {
        EXPECT_TRUE(ping.recv().has_value());
        pong.send(i);
      }
      both.done();
    });
    both.wait();
    wg.done();
  });
  wg.wait();
  const parsed_trace t = parse(stop_trace(out));
  expect_well_formed(t);
  // Each round has two rendezvous, and in each one side parks and later runs again: two
  // slices per round between them. Not one per side: on several workers one side can find the
  // other already waiting at both of a round's rendezvous (49 against 50 for pong, once, under
  // TSan at 4 workers).
  EXPECT_GE(t.slices_of(ping_id) + t.slices_of(pong_id), static_cast<std::size_t>(2 * rounds));
  EXPECT_GE(t.slices_of(ping_id), 1u);
  EXPECT_GE(t.slices_of(pong_id), 1u);
  EXPECT_GE(t.slices_of(parent_id), 1u);
  std::size_t ping_pong_wakes = 0;
  std::set<std::uint64_t> spawned;
  for (const auto& a : t.arrows) {
    const run_slice* from = t.enclosing(a.from_track, a.from_ts);
    const run_slice* to = t.starting(a.to_track, a.to_ts);
    if (from == nullptr || to == nullptr) continue;
    if (a.name == "wake" && (from->fiber == ping_id || from->fiber == pong_id) &&
        (to->fiber == ping_id || to->fiber == pong_id)) {
      EXPECT_NE(from->fiber, to->fiber);
      ++ping_pong_wakes;
    }
    if (a.name == "spawn") {
      EXPECT_EQ(from->fiber, parent_id);
      spawned.insert(to->fiber);
    }
  }
  EXPECT_GE(ping_pong_wakes, static_cast<std::size_t>(rounds));
  EXPECT_EQ(spawned, (std::set<std::uint64_t>{ping_id, pong_id}));
  // The slices name where each fiber was spawned.
  bool site_named = false;
  for (const auto& track : t.tracks) {
    for (const run_slice& s : track.second) {
      if (s.fiber == ping_id && s.site.find("trace_test.cpp:") != std::string::npos) {
        site_named = true;
      }
    }
  }
  EXPECT_TRUE(site_named);
}

// A tree: the root spawns three children, each spawns three grandchildren. Every spawn has its
// arrow, from a slice of the parent to the child's first slice.
TEST_P(TraceTest, SpawnTreeHasAnArrowPerSpawn) {
  goro::runtime rt(opts());
  std::ostringstream out;
  goro::trace_start(out);
  goro::mutex mu;
  std::map<std::uint64_t, std::uint64_t> parent_of;  // guarded by mu
  goro::wait_group wg;
  wg.add(1 + 3 + 9);
  const auto note = [&mu, &parent_of](std::uint64_t parent) {
    std::lock_guard lock(mu);
    parent_of[goro::this_fiber::get_id()] = parent;
  };
  rt.go([&] {
    const std::uint64_t root = goro::this_fiber::get_id();
    for (int i = 0; i < 3; ++i) {
      goro::go([&, root] {
        note(root);
        const std::uint64_t child = goro::this_fiber::get_id();
        for (int j = 0; j < 3; ++j) {
          goro::go([&, child] {
            note(child);
            wg.done();
          });
        }
        wg.done();
      });
    }
    wg.done();
  });
  wg.wait();
  const parsed_trace t = parse(stop_trace(out));
  expect_well_formed(t);
  std::map<std::uint64_t, std::uint64_t> traced_parent;
  for (const auto& a : t.arrows) {
    if (a.name != "spawn") continue;
    const run_slice* from = t.enclosing(a.from_track, a.from_ts);
    const run_slice* to = t.starting(a.to_track, a.to_ts);
    ASSERT_NE(from, nullptr);
    ASSERT_NE(to, nullptr);
    traced_parent[to->fiber] = from->fiber;
  }
  std::lock_guard lock(mu);
  EXPECT_EQ(parent_of.size(), 12u);
  EXPECT_EQ(traced_parent, parent_of);
}

// trace_stop() while fibers hand off on every worker: the trace is whole, and it is not
// recording any more afterwards (a new trace holds none of what ran in between).
TEST_P(TraceTest, StopWhileFibersRunThenNothingMore) {
  goro::runtime rt(opts());
  std::atomic<bool> stop{false};
  goro::wait_group wg;
  const std::size_t pairs = workers();
  wg.add(static_cast<std::int64_t>(pairs));
  std::ostringstream out;
  // Small buffers: they fill, and what does not fit is dropped (and counted).
  goro::trace_start(out, goro::trace_options{.events_per_worker = 1024});
  std::atomic<int> rounds{0};
  for (std::size_t p = 0; p < pairs; ++p) {
    rt.go([&] {
      chan<int> ch;
      goro::wait_group inner;
      inner.add(1);
      goro::go([ch, &inner] {
        while (ch.recv()) {
        }
        inner.done();
      });
      while (!stop.load(std::memory_order_relaxed)) {
        ch.send(1);
        rounds.fetch_add(1, std::memory_order_relaxed);
      }
      ch.close();
      inner.wait();
      wg.done();
    });
  }
  // Hand-offs enough to fill every worker's buffer (each is several events).
  const int enough = static_cast<int>(2000 * pairs);
  while (rounds.load(std::memory_order_relaxed) < enough) goro::this_fiber::yield();
  const std::string text = stop_trace(out);
  EXPECT_GT(json::parse(text).at("otherData").at("dropped_events").get<std::uint64_t>(), 0u);
  const parsed_trace during = parse(text);
  expect_well_formed(during);
  EXPECT_FALSE(during.tracks.empty());
  EXPECT_FALSE(goro::trace_stop());  // none runs now

  // Between the traces: the fibers go on for a while untraced.
  const int seen = rounds.load();
  while (rounds.load(std::memory_order_relaxed) < seen + 1000) goro::this_fiber::yield();
  stop = true;
  wg.wait();
  // Until every fiber has made its last switch (wg.done() comes just before it).
  while (rt.metrics().fibers_alive != 0) goro::this_fiber::yield();
  std::ostringstream after;
  goro::trace_start(after);
  const parsed_trace empty = parse(stop_trace(after));
  std::size_t slices = 0;
  for (const auto& track : empty.tracks) slices += track.second.size();
  EXPECT_EQ(slices, 0u);  // the fibers ended before this trace began: nothing left over
}

INSTANTIATE_TEST_SUITE_P(Workers, TraceTest, goro_test::worker_counts(),
                         goro_test::worker_count_name);

TEST(TraceApiTest, SecondStartThrowsAndAFileIsWritten) {
  const std::string path = ::testing::TempDir() + "goro_trace_test.json";
  goro::trace_start(path);
  std::ostringstream other;
  EXPECT_THROW(goro::trace_start(other), std::logic_error);
  {
    goro::runtime rt(goro::options{.workers = 1});  // a runtime made while the trace runs
    goro::wait_group wg;
    wg.add(1);
    rt.go([&wg] { wg.done(); });
    wg.wait();
  }
  EXPECT_TRUE(goro::trace_stop());
  std::ifstream in(path);
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const parsed_trace t = parse(text);
  expect_well_formed(t);
  EXPECT_FALSE(t.tracks.empty());  // the runtime destroyed meanwhile left its slices
  std::remove(path.c_str());
  EXPECT_THROW(goro::trace_start("/nonexistent-dir/trace.json"), std::runtime_error);
}

// A trace_stop whose writing throws (a stream that reports its errors by exceptions) still
// stops the trace: the exception propagates, and the next trace_start starts a new trace. The
// stream was kept as the running trace's, so every later trace_start threw "a trace is
// already running" and every trace_stop wrote an empty trace to the broken stream again.
TEST(TraceApiTest, AStopWhoseWritingThrowsStillEndsTheTrace) {
  struct failing_buffer : std::streambuf {
    int_type overflow(int_type) override { return traits_type::eof(); }
    std::streamsize xsputn(const char*, std::streamsize) override { return 0; }
  };
  failing_buffer buffer;
  std::ostream broken(&buffer);
  broken.exceptions(std::ios::badbit);
  goro::trace_start(broken);
  EXPECT_THROW(goro::trace_stop(), std::ios_base::failure);
  EXPECT_FALSE(goro::trace_stop());  // no trace runs
  std::ostringstream next;
  ASSERT_NO_THROW(goro::trace_start(next));
  EXPECT_TRUE(goro::trace_stop());
  expect_well_formed(parse(next.str()));
}

// GORO_TRACE=path traces a program that never calls trace_start, from its first runtime to its
// exit; a path that cannot be opened is reported and the program runs on untraced.
TEST(TraceApiTest, EnvironmentVariableTracesAWholeProgram) {
  const std::string path = ::testing::TempDir() + "goro_trace_env_test.json";
  std::remove(path.c_str());
  const goro_test::process_result r =
      goro_test::run_program(goro_test::program_path("timer_recv_loop"), {"2", "50", "after"},
                             std::chrono::seconds(30), {"GORO_TRACE=" + path});
  ASSERT_TRUE(r.exited && r.exit_code == 0) << r.describe();
  std::ifstream in(path);
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  ASSERT_FALSE(text.empty()) << "no trace written to " << path;
  const parsed_trace t = parse(text);
  expect_well_formed(t);
  EXPECT_FALSE(t.tracks.empty());
  std::remove(path.c_str());

  const goro_test::process_result bad =
      goro_test::run_program(goro_test::program_path("timer_recv_loop"), {"2", "5", "after"},
                             std::chrono::seconds(30), {"GORO_TRACE=/nonexistent-dir/t.json"});
  EXPECT_TRUE(bad.exited && bad.exit_code == 0) << bad.describe();
  EXPECT_NE(bad.err.find("GORO_TRACE"), std::string::npos) << bad.describe();
}

}  // namespace
