// SPDX-License-Identifier: Apache-2.0
/// @file
/// goro's diagnostics on request: goro::dump, what every fiber is doing (Go's goroutine dump,
/// SIGQUIT), and goro::stack_high_water, how much stack each spawn site's fibers used. See
/// docs/diagnostics.md.
#pragma once

#include <cstddef>
#include <cstdint>
#include <iosfwd>
#include <vector>

namespace goro {

/// Writes every live fiber of every runtime to `out`, one paragraph each: its id, state (and, if
/// parked, what it waits on, for how long, and the stack trace of where it parked), where it was
/// spawned; then every plain thread blocked in a goro call with no deadline; then, where a
/// runtime measures stack use (options::stack_watermark), stack_high_water(). Callable from any
/// thread or fiber. Exact for fibers that stay parked while it runs: nothing is stopped, so a
/// fiber that wakes meanwhile is shown as it happened to be read (its trace may be cut short).
/// Slow: about 2 ms per parked fiber (its stack trace), during which a plain thread about to
/// block in goro, and a runtime being made or destroyed, wait for it (docs/diagnostics.md).
void dump(std::ostream& out);

/// The most stack the finished fibers of one spawn site used, as measured with
/// options::stack_watermark (or GORO_STACK_WATERMARK=1).
struct stack_use {
  const char* file;        ///< the spawn site, as goro::dump names it
  const char* function;    ///< the function that called go()
  unsigned line;           ///< its line
  std::size_t max_bytes;   ///< the most stack any one of its fibers used, fiber record included
  std::size_t stack_size;  ///< the size of the stack that fiber had
  std::uint64_t fibers;    ///< how many of its fibers have finished and been measured
};

/// Every spawn site whose fibers were measured, deepest use first: fibers of runtimes made with
/// options::stack_watermark (or with GORO_STACK_WATERMARK=1 set) are measured when they finish.
/// Empty where no runtime measures. Callable from any thread or fiber.
std::vector<stack_use> stack_high_water();

}  // namespace goro
