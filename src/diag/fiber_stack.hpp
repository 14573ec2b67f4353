// SPDX-License-Identifier: Apache-2.0
// Layer: diag. May include: diag, api, chan, sync, net, park, sched, stack, time, platform.
// A stack trace of a parked fiber, for the dump: its saved context turned into the register
// set an unwinder starts from, then walked by libunwind (Debian's libunwind-dev), not by hand.
// Where goro was built without libunwind, the trace says so. docs/diagnostics.md, "Fiber dump".
#pragma once

#include <string>

#include "sched/fiber.hpp"

namespace goro::detail {

// Appends "\t<function>+0x<offset>\n" per frame of the parked fiber `f`, innermost first.
// REQUIRES: f is parked and stays parked while this runs.
void append_parked_stack(std::string& out, const fiber& f);

}  // namespace goro::detail
