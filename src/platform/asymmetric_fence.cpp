// SPDX-License-Identifier: Apache-2.0
// Layer: platform. May include: platform.
// heavy_fence() over membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED) (Linux 4.14), and the one-time
// choice between it and plain seq_cst fences. See docs/scheduler.md, "Asymmetric fences".
#include "platform/asymmetric_fence.hpp"

#include <linux/membarrier.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "platform/fatal.hpp"

namespace goro::detail {
namespace {

long membarrier(int command) noexcept { return syscall(__NR_membarrier, command, 0, 0); }

bool choose_asymmetric_fences() noexcept {
  const char* off = std::getenv("GORO_NO_MEMBARRIER");
  if (off != nullptr && *off != '\0') return false;
  const long supported = membarrier(MEMBARRIER_CMD_QUERY);
  if (supported < 0 || (supported & MEMBARRIER_CMD_PRIVATE_EXPEDITED) == 0) return false;
  // Registration is per process and must precede the first expedited call.
  return membarrier(MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED) == 0;
}

}  // namespace

bool init_asymmetric_fences() noexcept {
  static const bool chosen = [] {
    const bool on = choose_asymmetric_fences();
    asymmetric_fences_on.store(on, std::memory_order_relaxed);
    return on;
  }();
  return chosen;
}

void heavy_fence() noexcept {
  // The seq_cst fences order this thread's own accesses around the call in the language's
  // terms; the kernel's barriers on the other threads are what light_fence() relies on.
  std::atomic_thread_fence(std::memory_order_seq_cst);
  if (asymmetric_fences() && membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED) != 0) {
    // Only a seccomp filter installed after the first runtime started (EPERM) or a kernel out
    // of memory (ENOMEM) makes a registered command fail. Light fences are then no longer
    // enough, and falling back is not safe while other threads rely on them.
    fatal("membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED): %s", std::strerror(errno));
  }
  std::atomic_thread_fence(std::memory_order_seq_cst);
}

}  // namespace goro::detail
