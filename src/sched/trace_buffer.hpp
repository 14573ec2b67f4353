// SPDX-License-Identifier: Apache-2.0
// Layer: sched. May include: sched, stack, time, platform.
// The scheduler's side of goro::trace_start (include/goro/trace.hpp): each worker's buffer of
// trace events (run slices beginning and ending, spawns, wake-ups) and the trace session that
// switches them on and off for every runtime. The events become Chrome/Perfetto JSON in
// src/diag/trace.cpp; docs/diagnostics.md, "Trace", has the design and the costs.
//
// Invariants:
//   - trace_on is true only between a session's start and its stop. Off, a worker's hooks read
//     it (relaxed) and do nothing else.
//   - A buffer's events are written only under its lock, by its own worker's thread, and only
//     while the buffer is active for the session that runs; a session activates and drains the
//     buffers under the same lock, so a worker that read trace_on just before the stop either
//     appends before the drain or finds the buffer inactive. The lock is taken only while a
//     trace runs (or a hook that read trace_on true races the stop).
//   - A buffer holds at most its capacity of events; past it, events are counted as dropped.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "goro/detail/spawn_site.hpp"
#include "goro/detail/spinlock.hpp"
#include "goro/detail/thread_safety.hpp"
#include "platform/thread_mutex.hpp"

namespace goro::detail {

class scheduler;

// Whether a trace runs; read on every switch. Hidden, so that the read is one instruction
// relative to the instruction pointer, not a load of its address from the GOT first.
__attribute__((visibility("hidden"))) inline std::atomic<bool> trace_on{false};

enum class trace_kind : std::uint8_t {
  begin,  // a run slice of `fiber` begins on this worker
  end,    // the run slice of `fiber` ends
  spawn,  // the running fiber spawned `fiber`
  wake,   // the running fiber made the parked `fiber` runnable
};

struct trace_event {
  std::uint64_t ns;     // steady_clock, in nanoseconds
  std::uint64_t fiber;  // see trace_kind
  spawn_site site;      // begin: where `fiber` was spawned
  trace_kind kind;
};

// The events of one worker.
class trace_buffer {
 public:
  // Appends an event if the buffer is active; counts it dropped if the buffer is full. Only on
  // the buffer's worker's thread.
  void record(trace_kind kind, std::uint64_t fiber, const spawn_site& site) noexcept;
  // The end of one slice and the beginning of the next, with one timestamp (a switch).
  // `from` or `to` may be null: the worker's own loop. `spawned`: `to` is a child that `from`
  // spawned, which runs first.
  void record_switch(std::uint64_t from, std::uint64_t to, const spawn_site* to_site,
                     bool spawned) noexcept;

  // Empties the buffer and makes it record for `session`, up to `capacity` events (allocated
  // now, off the workers' paths). A buffer already active for `session` is left as it is.
  void activate(std::uint64_t session, std::size_t capacity);
  // Deactivates the buffer and hands over its events and the count dropped.
  void drain(std::vector<trace_event>& events, std::uint64_t& dropped) noexcept;

 private:
  // Appends `e` if there is room (then it cannot throw: the capacity was reserved), else
  // counts it dropped.
  void append(const trace_event& e) noexcept GORO_REQUIRES(mu_) {
    if (events_.size() == events_.capacity()) {
      ++dropped_;
    } else {
      events_.push_back(e);
    }
  }

  spinlock mu_;
  std::vector<trace_event> events_ GORO_GUARDED_BY(mu_);
  std::uint64_t dropped_ GORO_GUARDED_BY(mu_) = 0;
  std::uint64_t session_ GORO_GUARDED_BY(mu_) = 0;
  bool active_ GORO_GUARDED_BY(mu_) = false;
};

// What a session collected of one worker.
struct trace_track {
  std::uint64_t runtime;  // scheduler::id()
  std::size_t worker;     // its index
  std::vector<trace_event> events;
  std::uint64_t dropped = 0;
};

// The one trace session of the process. Runtimes made while it runs join it; a runtime
// destroyed while it runs leaves its events with it.
class trace_session {
 public:
  static trace_session& get() noexcept;

  // Starts a session over every live runtime: false if one runs already. Returns the
  // session's start time (steady_clock nanoseconds) in `start_ns`.
  bool start(std::size_t events_per_worker, std::uint64_t& start_ns);
  // Ends the session; returns every worker's events. Empty if none ran.
  std::vector<trace_track> stop();

  // Called by a scheduler once its workers run, and once they have stopped.
  void joined(scheduler& s);
  void left(scheduler& s);

 private:
  trace_session() = default;
  thread_mutex mu_;
  bool running_ GORO_GUARDED_BY(mu_) = false;
  std::uint64_t session_ GORO_GUARDED_BY(mu_) = 0;
  std::size_t capacity_ GORO_GUARDED_BY(mu_) = 0;
  std::vector<trace_track> retired_ GORO_GUARDED_BY(mu_);  // of runtimes destroyed meanwhile
};

// steady_clock now, in nanoseconds.
std::uint64_t trace_now_ns() noexcept;

}  // namespace goro::detail
