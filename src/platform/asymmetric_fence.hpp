// SPDX-License-Identifier: Apache-2.0
// Layer: platform. May include: platform.
// Asymmetric fences for goro's Dekker-shaped protocols (a store then a load on each of two
// sides): light_fence() goes on the side that runs on every hand-off and costs a compiler
// barrier; heavy_fence() goes on the rare side (a worker about to sleep, a thief) and makes
// every running thread of the process execute a full barrier, through Linux's membarrier(2).
// Where the kernel lacks that command, both are seq_cst fences. The argument, and why each
// protocol may use them, is in docs/scheduler.md, "Asymmetric fences".
#pragma once

#include <atomic>

namespace goro::detail {

// Set once, by init_asymmetric_fences(), before any worker of any runtime starts; never
// cleared. Relaxed reads suffice: every thread that fences reaches the flag through a runtime
// built after it was set.
inline std::atomic<bool> asymmetric_fences_on{false};

// Chooses asymmetric fences if membarrier's private expedited command registers and
// GORO_NO_MEMBARRIER is not set to a non-empty value. Each scheduler calls it before starting
// its workers; only the first call decides. Returns the choice.
bool init_asymmetric_fences() noexcept;

inline bool asymmetric_fences() noexcept {
  return asymmetric_fences_on.load(std::memory_order_relaxed);
}

// The cheap side of a pair: orders this thread's earlier stores before its later loads against
// a heavy_fence() on another thread.
inline void light_fence() noexcept {
  if (asymmetric_fences()) {
    std::atomic_signal_fence(std::memory_order_seq_cst);
  } else {
    std::atomic_thread_fence(std::memory_order_seq_cst);
  }
}

// The dear side: ~0.45 us with another core busy (membarrier), against light fences anywhere.
void heavy_fence() noexcept;

}  // namespace goro::detail
