// SPDX-License-Identifier: Apache-2.0
/// @file
/// goro::dump: what every fiber is doing, Go's goroutine dump (SIGQUIT). See
/// docs/diagnostics.md.
#pragma once

#include <iosfwd>

namespace goro {

/// Writes every live fiber of every runtime to `out`, one paragraph each: its id, state (and, if
/// parked, what it waits on and for how long), where it was spawned; then every plain thread
/// blocked in a goro call with no deadline. Callable from any thread or fiber. Exact for fibers
/// that stay parked while it runs; one that runs meanwhile is shown as it happened to be read.
void dump(std::ostream& out);

}  // namespace goro
