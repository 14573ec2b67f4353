// SPDX-License-Identifier: Apache-2.0
// Layer: sched. May include: sched, stack, time, platform.
// The counts one worker keeps of what it did: fibers created and finished (which ~runtime()
// waits on, docs/scheduler.md "Counting live fibers") and the events goro::runtime_metrics
// reports (include/goro/metrics.hpp, docs/diagnostics.md "Metrics"). scheduler::metrics()
// (census.cpp) sums them over the workers.
//
// Invariants:
//   - Every count only grows.
//   - A worker's counts are written only by its own thread, by a relaxed load and a relaxed
//     store (add): one writer needs no read-modify-write, and the line is its own, so counting
//     costs an increment of a line already in the writer's cache. scheduler::outside_, written
//     by any thread not a worker of the scheduler, is the one set counted with fetch_add
//     (add_shared).
//   - Readers (metrics(), wait_for_fibers) load with relaxed order, except where fiber.cpp
//     says why the finished count needs acquire.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "goro/detail/hardware.hpp"

// Set by CMake's GORO_METRICS option (on by default): whether the events below are counted.
#ifndef GORO_METRICS
#define GORO_METRICS 1
#endif

namespace goro::detail {

inline constexpr bool metrics_enabled = GORO_METRICS != 0;

// What runtime_metrics counts beside creations and finishes; one counter each.
enum class sched_event : std::uint8_t {
  switches,        // a worker switched to a fiber (a run slice began)
  steals,          // a steal took one or more fibers
  sleeps,          // the worker's thread went to sleep
  wakeups,         // ... and was woken by another thread
  parks,           // a fiber parked
  unparks,         // a parked fiber was made runnable
  chan_sends,      // a channel send began
  chan_receives,   // a channel receive began
  selects,         // a select began
  select_wakeups,  // a parked select was woken
  count_,
};

// Created and finished fibers and the events above, for one worker (or, as
// scheduler::outside_, for the threads that are not the scheduler's workers). Its own cache
// lines: its worker writes them on every spawn, exit and switch, and other threads read them
// only to report (metrics, wait_for_fibers).
struct sched_counters {
  alignas(cache_line_size) std::atomic<std::uint64_t> created{0};
  std::atomic<std::uint64_t> finished{0};
  std::atomic<std::uint64_t> events[static_cast<std::size_t>(sched_event::count_)] = {};

  std::atomic<std::uint64_t>& operator[](sched_event e) noexcept {
    return events[static_cast<std::size_t>(e)];
  }
  const std::atomic<std::uint64_t>& operator[](sched_event e) const noexcept {
    return events[static_cast<std::size_t>(e)];
  }
  // By the one writer (the worker's own thread). Relaxed: the count orders nothing.
  // Nothing when built without GORO_METRICS.
  void add(sched_event e) noexcept {
    if constexpr (metrics_enabled) {
      std::atomic<std::uint64_t>& c = (*this)[e];
      c.store(c.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
    }
  }
  // By any thread (scheduler::outside_).
  void add_shared(sched_event e) noexcept {
    if constexpr (metrics_enabled) (*this)[e].fetch_add(1, std::memory_order_relaxed);
  }
};

}  // namespace goro::detail
