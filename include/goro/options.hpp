// SPDX-License-Identifier: Apache-2.0
/// @file
/// goro::options, what a runtime is made with, and the limits on it. Includes nothing of goro's,
/// so the scheduler, below the API, can take it too. Design: docs/scheduler.md.
#pragma once

#include <cstddef>

namespace goro {

/// Largest worker count a runtime accepts.
inline constexpr std::size_t max_workers = 1024;
/// Smallest fiber stack accepted, and the default (sanitized builds use 4x the default).
inline constexpr std::size_t min_stack_size = 16 * 1024;
inline constexpr std::size_t default_stack_size = 64 * 1024;
/// With options::compact_stacks: the smallest stack accepted, and the default (sanitized and
/// unoptimised builds use 6x the default, as their frames need up to 8 KiB). Compact stacks are
/// smaller than min_stack_size.
inline constexpr std::size_t min_compact_stack_size = 1024;
inline constexpr std::size_t default_compact_stack_size = 2 * 1024;

/// What happens when every fiber and every thread of the process is blocked in goro with nothing
/// left that could wake one (Go's "all goroutines are asleep - deadlock!"); see
/// docs/diagnostics.md. The process follows the weakest mode among its live runtimes.
enum class deadlock_mode : unsigned char {
  abort,             ///< print the report (every fiber, what it waits on) and abort, as Go does
  report,            ///< print the report once per deadlock, and keep waiting
  off,               ///< look for none
  from_environment,  ///< GORO_DEADLOCK: "abort" (also when unset), "report" or "off"
};

struct options {
  /// Worker threads. 0: the environment variable GORO_MAXPROCS if set, else
  /// std::thread::hardware_concurrency().
  std::size_t workers = 0;
  /// Bytes of stack per fiber, rounded up to whole pages. 0: default_stack_size.
  /// With compact_stacks: rounded up to a multiple of 256 bytes; 0: default_compact_stack_size.
  std::size_t stack_size = 0;
  /// Compact stacks, for very many fibers with known shallow call chains: stacks smaller than a
  /// page, packed several to a page, so a parked fiber costs about stack_size + 64 bytes instead
  /// of a 4 KiB page. There are no guard pages: an overflow is detected (best effort) by a canary
  /// below each stack at the fiber's next switch, when the stack below may already be damaged.
  /// Deep recursion, large locals, exceptions, stdio and signal handlers not installed with
  /// SA_ONSTACK need more room than these stacks have, and so does the dynamic linker's lazy
  /// binding: the runtime refuses compact stacks unless binding is eager (LD_BIND_NOW=1, or
  /// every loaded object linked with -z now). See docs/scheduler.md, "Compact stacks".
  bool compact_stacks = false;
  /// What a deadlock of the whole process does (deadlock_mode). The default reads GORO_DEADLOCK;
  /// a value there other than abort, report or off makes the constructor throw
  /// std::invalid_argument.
  deadlock_mode on_deadlock = deadlock_mode::from_environment;
  /// Makes SIGQUIT (Ctrl-\\) write every fiber, with stack traces, to stderr, as Go does, the
  /// process going on afterwards; only if the application has not set SIGQUIT's disposition
  /// itself. Also set by GORO_DUMP_ON_SIGQUIT=1. See docs/diagnostics.md.
  bool dump_on_sigquit = false;
  /// Measures how much stack each fiber used, and keeps the most per spawn site, so stacks can
  /// be sized: goro::stack_high_water() and goro::dump report it. Each stack is filled with a
  /// pattern when its fiber is made (which commits all of its pages) and scanned when the
  /// fiber finishes; off, it costs one predictable branch per spawn and per exit. Also set by
  /// GORO_STACK_WATERMARK=1 (0 or unset: off; another value makes the constructor throw
  /// std::invalid_argument). See docs/diagnostics.md, "Stack use".
  bool stack_watermark = false;
};

}  // namespace goro
