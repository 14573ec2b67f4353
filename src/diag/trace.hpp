// SPDX-License-Identifier: Apache-2.0
// Layer: diag. May include: diag, api, chan, sync, net, park, sched, stack, time, platform.
// What the runtime asks of the trace (goro/trace.hpp, docs/diagnostics.md "Trace") beyond the
// public calls: starting one from the environment.
#pragma once

namespace goro::detail {

// GORO_TRACE=path: the first runtime made (the default one included) starts a trace to `path`,
// written when the process exits (or at an earlier goro::trace_stop()). A path that cannot be
// opened is reported on stderr, and the program runs untraced. Called when a scheduler is made;
// does something only the first time.
void start_trace_from_environment() noexcept;

}  // namespace goro::detail
