// SPDX-License-Identifier: Apache-2.0
// Layer: sched. May include: sched, stack, time, platform.
// The workers' trace buffers and the trace session (trace_buffer.hpp): recording an event,
// starting and stopping a session over every live runtime, and runtimes that come and go
// while it runs. Design in docs/diagnostics.md, "Trace".
#include "sched/trace_buffer.hpp"

#include <chrono>
#include <new>

#include "sched/census.hpp"
#include "sched/scheduler.hpp"
#include "sched/worker.hpp"

namespace goro::detail {

std::uint64_t trace_now_ns() noexcept {
  return static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                        std::chrono::steady_clock::now().time_since_epoch())
                                        .count());
}

// ---- one worker's buffer ------------------------------------------------------------------

void trace_buffer::record(trace_kind kind, std::uint64_t fiber, const spawn_site& site) noexcept {
  const lock_guard lock(mu_);
  if (!active_) return;
  append({trace_now_ns(), fiber, site, kind});
}

void trace_buffer::record_switch(std::uint64_t from, std::uint64_t to, const spawn_site* to_site,
                                 bool spawned) noexcept {
  const lock_guard lock(mu_);
  if (!active_) return;
  const std::uint64_t now = trace_now_ns();
  if (spawned) append({now, to, {}, trace_kind::spawn});  // inside the parent's slice
  if (from != 0) append({now, from, {}, trace_kind::end});
  if (to != 0) append({now, to, *to_site, trace_kind::begin});
}

void trace_buffer::activate(std::uint64_t session, std::size_t capacity) {
  std::vector<trace_event> fresh;
  fresh.reserve(capacity);  // may throw, before the lock
  const lock_guard lock(mu_);
  if (active_ && session_ == session) return;
  events_.swap(fresh);
  dropped_ = 0;
  session_ = session;
  active_ = true;
}

void trace_buffer::drain(std::vector<trace_event>& events, std::uint64_t& dropped) noexcept {
  std::vector<trace_event> taken;
  {
    const lock_guard lock(mu_);
    active_ = false;
    taken.swap(events_);
    dropped = dropped_;
    dropped_ = 0;
  }
  events = std::move(taken);
}

// ---- the session --------------------------------------------------------------------------

trace_session& trace_session::get() noexcept {
  // Never destroyed: a runtime may leave during exit.
  alignas(trace_session) static unsigned char storage[sizeof(trace_session)];
  static trace_session* const instance = ::new (static_cast<void*>(storage)) trace_session;
  return *instance;
}

bool trace_session::start(std::size_t events_per_worker, std::uint64_t& start_ns) {
  const lock_guard lock(mu_);
  if (running_) return false;
  ++session_;
  capacity_ = events_per_worker;
  retired_.clear();
  {
    // The census's lock after ours, never the other way round (joined() and left() take only
    // ours; census::add and remove only the census's).
    std::lock_guard census_lock(census::get().mutex());
    for (scheduler* s : census::get().schedulers()) {
      for (const auto& w : s->workers_) w->trace().activate(session_, capacity_);
    }
  }
  running_ = true;
  start_ns = trace_now_ns();
  // seq_cst: a plain store would do (a worker that misses it for a moment misses an event or
  // two at the start), but a start is rare.
  trace_on.store(true, std::memory_order_seq_cst);
  return true;
}

std::vector<trace_track> trace_session::stop() {
  std::vector<trace_track> tracks;
  const lock_guard lock(mu_);
  if (!running_) return tracks;
  trace_on.store(false, std::memory_order_seq_cst);
  running_ = false;
  {
    std::lock_guard census_lock(census::get().mutex());
    for (scheduler* s : census::get().schedulers()) {
      for (std::size_t i = 0; i < s->workers_.size(); ++i) {
        trace_track t{s->id(), i, {}, 0};
        s->workers_[i]->trace().drain(t.events, t.dropped);
        tracks.push_back(std::move(t));
      }
    }
  }
  for (trace_track& t : retired_) tracks.push_back(std::move(t));
  retired_.clear();
  return tracks;
}

void trace_session::joined(scheduler& s) {
  const lock_guard lock(mu_);
  if (!running_) return;
  for (const auto& w : s.workers_) w->trace().activate(session_, capacity_);
}

void trace_session::left(scheduler& s) {
  const lock_guard lock(mu_);
  if (!running_) return;
  for (std::size_t i = 0; i < s.workers_.size(); ++i) {
    trace_track t{s.id(), i, {}, 0};
    s.workers_[i]->trace().drain(t.events, t.dropped);
    if (!t.events.empty() || t.dropped != 0) retired_.push_back(std::move(t));
  }
}

}  // namespace goro::detail
