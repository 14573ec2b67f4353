// SPDX-License-Identifier: Apache-2.0
// Layer: diag. May include: diag, api, chan, sync, net, park, sched, stack, time, platform.
// goro::trace_start and trace_stop (include/goro/trace.hpp): where the trace goes, and the
// workers' events (sched/trace_buffer.hpp) written as Chrome trace-event JSON: a complete
// ("X") event per run slice on its worker's track, and flow events ("s" in the slice that
// spawned or woke a fiber, "f" at that fiber's next slice) for the arrows. Format: the Trace
// Event Format document (Google), as Perfetto's JSON importer reads it. docs/diagnostics.md,
// "Trace", describes what a trace holds.
#include <algorithm>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <mutex>
#include <ostream>
#include <stdexcept>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "diag/trace.hpp"
#include "goro/trace.hpp"
#include "sched/trace_buffer.hpp"

namespace goro {
namespace {

using detail::trace_event;
using detail::trace_kind;
using detail::trace_track;

// Where a trace goes, from trace_start to trace_stop.
struct sink {
  std::mutex mu;
  std::ostream* out = nullptr;          // GUARDED_BY(mu)
  std::unique_ptr<std::ofstream> file;  // GUARDED_BY(mu); owns *out for trace_start(path)
  std::uint64_t start_ns = 0;           // GUARDED_BY(mu)
};

sink& the_sink() {
  static sink* const s = new sink;  // never destroyed: a trace may be stopped during exit
  return *s;
}

struct slice {
  std::uint64_t fiber;
  std::uint64_t start;
  std::uint64_t end;
  detail::spawn_site site;
  bool site_known;
  std::uint64_t runtime;
  std::size_t worker;
};

// A spawn or wake-up, inside slice `from` (an index into the slices).
struct flow {
  std::uint64_t ns;
  std::uint64_t target;
  std::size_t from;
  bool spawn;
};

void append_escaped(std::string& out, const char* text) {
  for (const char* p = text; p != nullptr && *p != '\0'; ++p) {
    const auto c = static_cast<unsigned char>(*p);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", c);
      out += buf;
    } else {
      out += static_cast<char>(c);
    }
  }
}

// Microseconds since the trace's start, to the nanosecond.
void append_us(std::string& out, std::uint64_t ns, std::uint64_t start_ns) {
  const std::uint64_t d = ns > start_ns ? ns - start_ns : 0;
  char buf[32];
  std::snprintf(buf, sizeof buf, "%" PRIu64 ".%03" PRIu64, d / 1000, d % 1000);
  out += buf;
}

// The slices and flows of one worker's events. A slice that began before the trace started
// begins at the start; one still running at the stop ends there. Events lost to a full buffer
// may leave a slice without its end: the next begin on the track ends it.
void cut_slices(const trace_track& t, std::uint64_t start_ns, std::uint64_t stop_ns,
                std::vector<slice>& slices, std::vector<flow>& flows) {
  bool open = false;
  bool any = false;
  slice cur{};
  std::vector<flow> pending;
  const auto close = [&](std::uint64_t ns) {
    cur.end = std::max(ns, cur.start);
    for (flow& f : pending) {
      f.from = slices.size();
      flows.push_back(f);
    }
    pending.clear();
    slices.push_back(cur);
    open = false;
  };
  for (const trace_event& e : t.events) {
    switch (e.kind) {
      case trace_kind::begin:
        if (open) close(e.ns);
        cur = slice{e.fiber, e.ns, e.ns, e.site, true, t.runtime, t.worker};
        open = true;
        any = true;
        break;
      case trace_kind::end:
        if (open && cur.fiber == e.fiber) {
          close(e.ns);
        } else if (!open && !any) {  // began before the trace did
          cur = slice{e.fiber, start_ns, e.ns, {}, false, t.runtime, t.worker};
          open = true;
          close(e.ns);
        }
        any = true;
        break;
      case trace_kind::spawn:
      case trace_kind::wake:
        if (open) pending.push_back({e.ns, e.fiber, 0, e.kind == trace_kind::spawn});
        break;
    }
  }
  if (open) close(std::max(stop_ns, cur.start));
}

std::string to_json(std::vector<trace_track>& tracks, std::uint64_t start_ns,
                    std::uint64_t stop_ns) {
  std::vector<slice> slices;
  std::vector<flow> flows;
  std::uint64_t dropped = 0;
  for (const trace_track& t : tracks) {
    cut_slices(t, start_ns, stop_ns, slices, flows);
    dropped += t.dropped;
  }
  // Each fiber's slices in time order, to find the one a flow ends at.
  std::unordered_map<std::uint64_t, std::vector<std::size_t>> by_fiber;
  for (std::size_t i = 0; i < slices.size(); ++i) by_fiber[slices[i].fiber].push_back(i);
  for (auto& entry : by_fiber) {
    std::sort(entry.second.begin(), entry.second.end(), [&slices](std::size_t a, std::size_t b) {
      return slices[a].start < slices[b].start;
    });
  }

  std::string out = "{\"displayTimeUnit\":\"ns\",\"otherData\":{\"dropped_events\":";
  out += std::to_string(dropped);
  out += "},\"traceEvents\":[\n";
  bool first = true;
  const auto begin_event = [&out, &first] {
    if (!first) out += ",\n";
    first = false;
  };
  // Names of the tracks: a process per runtime, a thread per worker.
  std::vector<std::uint64_t> runtimes;
  for (const trace_track& t : tracks) {
    if (std::find(runtimes.begin(), runtimes.end(), t.runtime) == runtimes.end()) {
      runtimes.push_back(t.runtime);
      begin_event();
      out += "{\"ph\":\"M\",\"name\":\"process_name\",\"pid\":" + std::to_string(t.runtime) +
             ",\"args\":{\"name\":\"goro runtime " + std::to_string(t.runtime) + "\"}}";
    }
    begin_event();
    out += "{\"ph\":\"M\",\"name\":\"thread_name\",\"pid\":" + std::to_string(t.runtime) +
           ",\"tid\":" + std::to_string(t.worker) + ",\"args\":{\"name\":\"worker " +
           std::to_string(t.worker) + "\"}}";
  }
  for (const slice& s : slices) {
    begin_event();
    out += "{\"ph\":\"X\",\"cat\":\"goro\",\"name\":\"fiber " + std::to_string(s.fiber) +
           "\",\"pid\":" + std::to_string(s.runtime) + ",\"tid\":" + std::to_string(s.worker) +
           ",\"ts\":";
    append_us(out, s.start, start_ns);
    out += ",\"dur\":";
    append_us(out, s.end - s.start + start_ns, start_ns);
    out += ",\"args\":{\"fiber\":" + std::to_string(s.fiber);
    if (s.site_known) {
      out += ",\"site\":\"";
      append_escaped(out, s.site.file_name());
      out += ':' + std::to_string(s.site.line()) + "\",\"function\":\"";
      append_escaped(out, s.site.function_name());
      out += '"';
    }
    out += "}}";
  }
  // Arrows. "s" lies inside the slice it leaves (not at its very end, where the next slice on
  // the track begins); "f" at the start of the slice it enters, which it binds to as the next
  // slice of that track (the default binding point).
  std::uint64_t id = 0;
  for (const flow& f : flows) {
    const auto found = by_fiber.find(f.target);
    if (found == by_fiber.end()) continue;
    const std::vector<std::size_t>& runs = found->second;
    // The first run at or after the flow: runs are in time order, so a binary search (a linear
    // one made writing a long trace quadratic: 3 s of a ping-pong took minutes).
    const auto next = std::partition_point(runs.begin(), runs.end(),
                                           [&](std::size_t i) { return slices[i].start < f.ns; });
    if (next == runs.end()) continue;  // not run again before the stop
    const slice& from = slices[f.from];
    const slice& to = slices[*next];
    std::uint64_t at = std::clamp(f.ns, from.start, from.end);
    if (at == from.end && from.end > from.start) --at;
    ++id;
    const char* name = f.spawn ? "spawn" : "wake";
    begin_event();
    out += std::string("{\"ph\":\"s\",\"cat\":\"goro\",\"name\":\"") + name +
           "\",\"id\":" + std::to_string(id) + ",\"pid\":" + std::to_string(from.runtime) +
           ",\"tid\":" + std::to_string(from.worker) + ",\"ts\":";
    append_us(out, at, start_ns);
    out += "},\n";
    out += std::string("{\"ph\":\"f\",\"cat\":\"goro\",\"name\":\"") + name +
           "\",\"id\":" + std::to_string(id) + ",\"pid\":" + std::to_string(to.runtime) +
           ",\"tid\":" + std::to_string(to.worker) + ",\"ts\":";
    append_us(out, to.start, start_ns);
    out += '}';
  }
  out += "\n]}\n";
  return out;
}

}  // namespace

void trace_start(std::ostream& out, const trace_options& opts) {
  sink& s = the_sink();
  std::lock_guard lock(s.mu);
  if (s.out != nullptr || !detail::trace_session::get().start(opts.events_per_worker, s.start_ns)) {
    throw std::logic_error("goro::trace_start: a trace is already running");
  }
  s.out = &out;
}

void trace_start(const std::string& path, const trace_options& opts) {
  sink& s = the_sink();
  std::lock_guard lock(s.mu);
  // Checked before opening: a second start must not truncate the file of the trace running.
  if (s.out != nullptr) throw std::logic_error("goro::trace_start: a trace is already running");
  auto file = std::make_unique<std::ofstream>(path, std::ios::out | std::ios::trunc);
  if (!*file) throw std::runtime_error("goro::trace_start: cannot open \"" + path + "\"");
  if (!detail::trace_session::get().start(opts.events_per_worker, s.start_ns)) {
    throw std::logic_error("goro::trace_start: a trace is already running");
  }
  s.file = std::move(file);
  s.out = s.file.get();
}

bool trace_stop() {
  sink& s = the_sink();
  std::lock_guard lock(s.mu);
  if (s.out == nullptr) return false;
  // The sink is let go of before the writing, which may throw (the stream's exceptions, or no
  // memory for the JSON): the trace is over either way, and the next trace_start starts one.
  std::ostream& out = *std::exchange(s.out, nullptr);
  const std::unique_ptr<std::ofstream> file = std::move(s.file);
  std::vector<trace_track> tracks = detail::trace_session::get().stop();
  const std::uint64_t stop_ns = detail::trace_now_ns();
  out << to_json(tracks, s.start_ns, stop_ns);
  out.flush();
  return true;
}

namespace detail {

void start_trace_from_environment() noexcept {
  static std::once_flag once;
  std::call_once(once, [] {
    const char* path = std::getenv("GORO_TRACE");
    if (path == nullptr || *path == '\0') return;
    try {
      trace_start(std::string(path));
      // Registered after the sink and the session exist, so it runs before they are destroyed;
      // and after the default runtime's stop_at_exit, so it runs first, with its workers still
      // there to be cut at the stop.
      std::atexit([] {
        try {
          trace_stop();
        } catch (const std::exception& e) {  // an exception may not leave an atexit handler
          std::fprintf(stderr, "goro: GORO_TRACE: %s; trace not written\n", e.what());
        }
      });
    } catch (const std::exception& e) {
      std::fprintf(stderr, "goro: GORO_TRACE=%s: %s; not tracing\n", path, e.what());
    }
  });
}

}  // namespace detail
}  // namespace goro
