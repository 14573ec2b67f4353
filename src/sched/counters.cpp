// SPDX-License-Identifier: Apache-2.0
// Layer: sched. May include: sched, stack, time, platform.
// scheduler::metrics(): the workers' counters (counters.hpp) summed into a
// goro::runtime_metrics, and the gauges read from the queues. What a snapshot promises is said
// in include/goro/metrics.hpp; docs/diagnostics.md, "Metrics", says what it costs.
#include <algorithm>

#include "sched/counters.hpp"
#include "sched/scheduler.hpp"
#include "sched/worker.hpp"

namespace goro::detail {

runtime_metrics scheduler::metrics() const noexcept {
  runtime_metrics m;
  m.workers = workers_.size();
  m.events_counted = metrics_enabled;
  const auto sum = [this](auto&& read) {
    std::uint64_t total = read(outside_);
    for (const auto& w : workers_) total += read(w->counts_);
    return total;
  };
  const auto event = [&sum](sched_event e) {
    return sum([e](const sched_counters& c) { return c[e].load(std::memory_order_relaxed); });
  };
  // Finished before created, each finish with acquire, as no_live_fibers() reads them: a finish
  // seen has its creation seen, so spawns >= finished (fiber.cpp says why).
  m.finished =
      sum([](const sched_counters& c) { return c.finished.load(std::memory_order_acquire); });
  m.spawns = sum([](const sched_counters& c) { return c.created.load(std::memory_order_relaxed); });
  m.fibers_alive = m.spawns - m.finished;
  // Wake-ups before parks, so that a park whose wake-up is seen is likely seen too; the
  // counts are relaxed, so the gauge is clamped rather than trusted to be in range.
  const std::uint64_t unparks = event(sched_event::unparks);
  m.parks = event(sched_event::parks);
  m.fibers_parked = m.parks > unparks ? std::min(m.parks - unparks, m.fibers_alive) : 0;
  std::uint64_t queued = global_size_.load(std::memory_order_relaxed);
  for (const auto& w : workers_) queued += w->runq_.size();
  m.fibers_runnable = std::min(queued, m.fibers_alive);
  m.context_switches = event(sched_event::switches);
  m.steals = event(sched_event::steals);
  // A worker counts a wake-up after the sleep it ends: reading the wake-ups first keeps
  // worker_wakeups <= worker_sleeps. (A select's wake-up may be counted on another worker than
  // its start, so the same order is only a likelihood for those two.)
  m.worker_wakeups = event(sched_event::wakeups);
  m.worker_sleeps = event(sched_event::sleeps);
  m.chan_sends = event(sched_event::chan_sends);
  m.chan_receives = event(sched_event::chan_receives);
  m.select_wakeups = event(sched_event::select_wakeups);
  m.selects = event(sched_event::selects);
  return m;
}

}  // namespace goro::detail
