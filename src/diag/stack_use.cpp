// SPDX-License-Identifier: Apache-2.0
// Layer: diag. May include: diag, api, chan, sync, net, park, sched, stack, time, platform.
// goro::stack_high_water (include/goro/diag.hpp): the table of src/stack/stack_watermark.hpp,
// in the public type.
#include <vector>

#include "goro/diag.hpp"
#include "stack/stack_watermark.hpp"

namespace goro {

std::vector<stack_use> stack_high_water() {
  std::vector<stack_use> out;
  for (const detail::stack_use_entry& e : detail::stack_use_by_site()) {
    out.push_back({e.file, e.function, e.line, e.max_bytes, e.stack_size, e.fibers});
  }
  return out;
}

}  // namespace goro
