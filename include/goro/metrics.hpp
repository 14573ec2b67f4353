// SPDX-License-Identifier: Apache-2.0
/// @file
/// goro::runtime_metrics: what a runtime has done and holds now, read at run time as a plain
/// struct (Go's runtime/metrics, Tokio's RuntimeMetrics). Always on: each worker counts on its
/// own cache line with plain stores, and a read sums the workers. Includes nothing of goro's,
/// so the scheduler, below the API, fills it in. See docs/diagnostics.md, "Metrics".
#pragma once

#include <cstddef>
#include <cstdint>

namespace goro {

/// A snapshot of one runtime's counters and gauges, from goro::runtime::metrics() or
/// goro::metrics().
///
/// Counters only grow over the runtime's life. Each worker's counters are read one after the
/// other while the workers go on, so a snapshot is not one instant: two counters of one
/// snapshot may differ by the work done while it was read. These always hold in a snapshot:
/// `spawns == finished + fibers_alive`; fibers_runnable and fibers_parked are each at most
/// fibers_alive; worker_wakeups <= worker_sleeps. Once the runtime is at rest (every fiber
/// finished, or parked with nothing left to wake it), a snapshot is exact: then also
/// select_wakeups <= selects and fibers_runnable + fibers_parked <= fibers_alive.
///
/// Work done by a plain thread (not a fiber), such as a channel operation in main or a fiber
/// spawned from main, is counted as described for each field.
struct runtime_metrics {
  /// Worker threads of the runtime (options::workers, resolved).
  std::size_t workers = 0;
  /// False where goro was built with the CMake option GORO_METRICS=OFF: the event counters
  /// (context_switches to select_wakeups) and fibers_parked then read 0. The other fields
  /// are always kept.
  bool events_counted = true;

  // ---- Gauges: how many now.

  /// Fibers spawned and not yet finished, whatever their state (Go's
  /// runtime.NumGoroutine for one runtime; /sched/goroutines:goroutines).
  std::uint64_t fibers_alive = 0;
  /// Fibers waiting in a queue for a worker: the workers' run queues (the next slots included)
  /// and the global queue. A fiber being handed from one queue to another (stolen, moved to
  /// the global queue) may be missed for that moment. Not counted: fibers running.
  std::uint64_t fibers_runnable = 0;
  /// Fibers parked in a blocking call (a channel, a lock, a sleep, I/O...): parks minus
  /// wake-ups, summed over the workers. A park or wake-up in progress while the snapshot is
  /// read may be counted on one side only; the value is clamped to [0, fibers_alive].
  std::uint64_t fibers_parked = 0;

  // ---- Counters: how many since the runtime started.

  /// Fibers spawned on the runtime, by its fibers or by plain threads (go(), runtime::go).
  std::uint64_t spawns = 0;
  /// Fibers that have finished (returned from their function).
  std::uint64_t finished = 0;
  /// Times a worker switched to a fiber: each start or resumption of a fiber, that is each run
  /// slice (Go's scheduler "schedule()" calls that ran a goroutine). A ping-pong round trip
  /// between two fibers on one worker is two.
  std::uint64_t context_switches = 0;
  /// Times a worker with nothing to run took fibers from another worker's run queue (one
  /// batch of one or more fibers each; Tokio's steal_operations).
  std::uint64_t steals = 0;
  /// Times a worker put its thread to sleep, on its futex or in the I/O poller, because it
  /// found no work (Tokio's worker_park_count).
  std::uint64_t worker_sleeps = 0;
  /// Worker sleeps ended by another thread's wake-up (new work, a new timer, a stop), as
  /// opposed to the sleeper's own timer deadline, an I/O event or a spurious return.
  std::uint64_t worker_wakeups = 0;
  /// Fiber parks: switches away from a fiber that blocks (every blocking call that waits).
  std::uint64_t parks = 0;
  /// Sends begun on a channel by the runtime's fibers (send, try_send, send_until...),
  /// whatever their outcome: completed, closed, would block or timed out. A select's send
  /// case is not counted here, nor a send by a plain thread, nor one on a nil channel.
  std::uint64_t chan_sends = 0;
  /// Receives begun on a channel by the runtime's fibers, as chan_sends.
  std::uint64_t chan_receives = 0;
  /// goro::select calls made by the runtime's fibers (with a default case or not).
  std::uint64_t selects = 0;
  /// Selects by the runtime's fibers that found no case ready, parked, and were woken (by a
  /// case's completion or a stop request).
  std::uint64_t select_wakeups = 0;
};

/// The metrics of the calling fiber's runtime; on a plain thread, of the default runtime
/// (starting it if it has not started, which throws what goro::runtime's constructor throws
/// for a bad GORO_MAXPROCS). Callable from any thread or fiber; see runtime_metrics for what
/// a snapshot promises. runtime::metrics() reads a given runtime.
runtime_metrics metrics();

}  // namespace goro
