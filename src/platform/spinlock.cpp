// SPDX-License-Identifier: Apache-2.0
// Layer: platform. May include: platform.
// The spinlock's contended path (goro/detail/spinlock.hpp), out of line: it spins anyway, so a
// call costs it nothing, and the CPU's pause instruction stays out of the public header.
#include "goro/detail/spinlock.hpp"

#include "platform/cpu.hpp"

namespace goro::detail {

void spinlock::lock_slow() noexcept {
  backoff wait;
  for (;;) {
    // Relaxed: a free lock seen here is only a hint; the exchange decides, with acquire.
    while (locked_.load(std::memory_order_relaxed)) wait.pause();
    if (!locked_.exchange(true, std::memory_order_acquire)) return;
  }
}

}  // namespace goro::detail
