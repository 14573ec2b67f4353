// SPDX-License-Identifier: Apache-2.0
// Layer: chan. May include: chan, sync, park, sched, stack, time, platform.
// Revoking a biased_lock's bias; the protocol is in docs/channels.md, "The lock, biased to a lone
// worker".
#include "chan/biased_lock.hpp"

#include "platform/asymmetric_fence.hpp"
#include "platform/cpu.hpp"
#include "sched/worker.hpp"

namespace goro::detail {

bool may_claim_bias() noexcept {
  const worker* w = worker::current();
  return w != nullptr && w->may_claim_bias();
}

void biased_lock::revoke() noexcept {
  const std::uintptr_t owner = bias_.exchange(revoked, std::memory_order_relaxed);
  // Unclaimed: nobody can claim it now, so nobody is inside.
  if (owner == unclaimed || owner == revoked) return;
  // Dekker with the owner's lock(): we stored bias_, heavy fence, load owner_in_. Either the
  // owner sees the revocation and backs out, or we see it inside and wait; its unlock's release
  // makes its critical section happen-before ours.
  heavy_fence();
  // A short spin, then yield, in case the OS preempted the owner inside.
  backoff wait;
  while (owner_in_.load(std::memory_order_acquire)) wait.pause();
  fast_ = false;  // the owner's last unlock happened-before: no one will set it again
}

}  // namespace goro::detail
