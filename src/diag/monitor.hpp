// SPDX-License-Identifier: Apache-2.0
// Layer: diag. May include: diag, api, chan, sync, net, park, sched, stack, time, platform.
// The diagnostics' one thread (Go's sysmon, for diagnostics only): it looks for a deadlock of
// the whole process a few times a second, and writes the fiber dump that SIGQUIT asks for.
// What it decides and why: docs/diagnostics.md ("Deadlock detection").
//
// Invariants:
//   - At most one monitor thread runs; it starts with the first runtime, or with the first
//     plain thread blocking in goro while no runtime exists (the census's hook), and lives
//     until the process ends (detached). It is one of the threads goro knows of (census.hpp).
//   - It reports a deadlock only when two looks, monitor_confirm apart, found every known
//     thread blocked and unchanged, no thread unknown to goro, and every runtime quiescent
//     (scheduler::quiescent); and once per such episode.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

#include "goro/options.hpp"

namespace goro::detail {

// How often the monitor looks, and how long a deadlock must hold still to be reported.
inline constexpr std::chrono::milliseconds monitor_period{200};
inline constexpr std::chrono::milliseconds monitor_confirm{100};

// Starts the monitor thread if it is not running. Called when a scheduler is made (and by the
// census's hook, monitor.cpp).
void start_monitor();

// Whether GORO_DUMP_ON_SIGQUIT=1 asks for the SIGQUIT dump.
bool dump_on_sigquit_from_environment() noexcept;
// Makes SIGQUIT write the dump of every fiber to stderr (the process goes on), unless the
// application set a disposition of its own for it; returns whether SIGQUIT now dumps.
bool install_sigquit_dump() noexcept;

// The deadlock mode that GORO_DEADLOCK names ("abort", "report", "off"; unset: abort). Throws
// std::invalid_argument for any other value.
deadlock_mode deadlock_mode_from_environment();

// Seconds between coarse_clock_ms value `then` and now.
double seconds_since(std::uint64_t then) noexcept;

// Appends one paragraph per live fiber of every runtime, and one per plain thread blocked in
// goro, to `out`, Go's traceback style; `with_state` adds each fiber's state (the dump), and
// `with_stacks` a stack trace of each parked fiber (fiber_stack.cpp). REQUIRES: the census's
// mutex held.
void describe_fibers(std::string& out, bool with_state, bool with_stacks);

}  // namespace goro::detail
