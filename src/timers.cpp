// SPDX-License-Identifier: Apache-2.0
// timer_start and timer_stop: the runtime-neutral face of the timer heap (goro/detail/timer_entry.hpp).
#include "goro/detail/timer_entry.hpp"
#include "scheduler.hpp"

namespace goro::detail {

void timer_start(timer_entry& entry, scheduler& sched) { sched.add_timer(entry); }

bool timer_stop(timer_entry& entry) noexcept {
  scheduler* s = entry.sched;
  return s != nullptr && s->remove_timer(entry);
}

}  // namespace goro::detail
