// SPDX-License-Identifier: Apache-2.0
/// @file
/// goro::trace_start and goro::trace_stop: a trace of every runtime's scheduling, switched on
/// and off at run time, written as Chrome trace-event JSON that Perfetto's UI
/// (ui.perfetto.dev) and chrome://tracing open: one track per worker with a slice per fiber
/// run, and arrows from a spawn to the child's first run and from a wake-up to the woken
/// fiber's next run. Without changing the program: GORO_TRACE=path traces from the first
/// runtime's creation to the process's exit. See docs/diagnostics.md, "Trace".
#pragma once

#include <cstddef>
#include <iosfwd>
#include <string>

namespace goro {

/// What a trace records and keeps.
struct trace_options {
  /// Events kept per worker (32 or 48 bytes each, allocated at the start). A worker that fills
  /// its buffer drops its later events and counts them (the JSON's "dropped_events").
  std::size_t events_per_worker = std::size_t{1} << 17;
};

/// Starts tracing every runtime, and every runtime made before trace_stop(); the JSON goes to
/// `out` when trace_stop() is called, so `out` must live until then. Throws std::logic_error
/// if a trace runs already, std::bad_alloc if the buffers cannot be had (std::length_error
/// for an events_per_worker past what a std::vector can hold). Callable from any thread or
/// fiber.
void trace_start(std::ostream& out, const trace_options& opts = {});
/// As trace_start(std::ostream&), to the file at `path`, created (or truncated) now; throws
/// std::runtime_error, naming it, if it cannot be opened.
void trace_start(const std::string& path, const trace_options& opts = {});
/// Stops the trace and writes it (a JSON object with "traceEvents"); returns false, writing
/// nothing, if no trace runs. Fibers running meanwhile go on; their slices are cut at the
/// stop. If writing throws (a stream with exceptions set, std::bad_alloc), the exception
/// propagates and the trace is stopped all the same. Callable from any thread or fiber.
bool trace_stop();

}  // namespace goro
