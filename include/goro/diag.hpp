// SPDX-License-Identifier: Apache-2.0
/// @file
/// goro::dump: what every fiber is doing, Go's goroutine dump (SIGQUIT). See
/// docs/diagnostics.md.
#pragma once

#include <iosfwd>

namespace goro {

/// Writes every live fiber of every runtime to `out`, one paragraph each: its id, state (and, if
/// parked, what it waits on, for how long, and the stack trace of where it parked), where it was
/// spawned; then every plain thread blocked in a goro call with no deadline. Callable from any
/// thread or fiber. Exact for fibers that stay parked while it runs: nothing is stopped, so a
/// fiber that wakes meanwhile is shown as it happened to be read (its trace may be cut short).
void dump(std::ostream& out);

}  // namespace goro
