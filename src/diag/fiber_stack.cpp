// SPDX-License-Identifier: Apache-2.0
// Layer: diag. May include: diag, api, chan, sync, net, park, sched, stack, time, platform.
// Stack traces of parked fibers (fiber_stack.hpp).
#include "diag/fiber_stack.hpp"

namespace goro::detail {

void append_parked_stack(std::string& out, const fiber&) {
  out += "\t(no stack trace: goro was built without libunwind)\n";
}

}  // namespace goro::detail
