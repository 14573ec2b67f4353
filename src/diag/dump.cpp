// SPDX-License-Identifier: Apache-2.0
// Layer: diag. May include: diag, api, chan, sync, net, park, sched, stack, time, platform.
// goro::dump (include/goro/diag.hpp): the census's fibers and threads, described.
#include <mutex>
#include <ostream>
#include <string>
#include <vector>

#include "diag/monitor.hpp"
#include "goro/diag.hpp"
#include "sched/census.hpp"

namespace goro {

void dump(std::ostream& out) {
  std::string text;
  {
    std::lock_guard lock(detail::census::get().mutex());
    detail::describe_fibers(text, /*with_state=*/true, /*with_stacks=*/true);
  }
  out << "goro: dump of every fiber\n" << text;
  const std::vector<stack_use> sites = stack_high_water();
  if (!sites.empty()) {
    out << "\nstack use (the most any finished fiber used, per spawn site):\n";
    for (const stack_use& s : sites) {
      out << "\t" << s.max_bytes << " of " << s.stack_size << " bytes, " << s.fibers
          << (s.fibers == 1 ? " fiber" : " fibers") << ": " << s.file << ":" << s.line << " in "
          << s.function << "\n";
    }
  }
  out.flush();
}

}  // namespace goro
