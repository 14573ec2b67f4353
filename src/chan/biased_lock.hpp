// SPDX-License-Identifier: Apache-2.0
// Layer: chan. May include: chan, sync, park, sched, stack, time, platform.
// The channel's lock: a spinlock biased to the thread of the one worker of a one-worker
// runtime, which then takes and releases it with plain stores, until another thread takes it
// and revokes the bias for good. The protocol and why it excludes are in docs/channels.md,
// "The lock, biased to a lone worker".
#pragma once

#include <atomic>
#include <cstdint>

#include "goro/detail/hardware.hpp"
#include "goro/detail/spinlock.hpp"
#include "goro/detail/thread_safety.hpp"
#include "platform/cpu.hpp"

namespace goro::detail {

// Whether the calling thread may claim a biased lock: only the worker of a one-worker runtime,
// and only where asymmetric fences are on (src/sched/scheduler.cpp).
bool may_claim_bias() noexcept;

// A bias's owner is named by this_thread_identity() (platform/cpu.hpp): its thread pointer,
// read afresh at every call. Live threads have distinct ones, no fiber switch comes between
// reading it and using it, and a lock is released on the thread that took it (a park's arrival
// hook runs there); a thread that inherits a dead owner's pointer and so holds the bias is
// harmless, since the dead owner is out.

// The tests' way in (tests/biased_lock_stress_test.cpp): takes the lock as a caller that names
// its own identity, to pit several "owners" against each other in one process.
struct biased_lock_test_peer;

class GORO_CAPABILITY("mutex") biased_lock {
 public:
  void lock() noexcept GORO_ACQUIRE() {
    // Once revoked, for good: only the load. Relaxed: whatever it reads only picks a path, and
    // each path decides again: enter_biased reloads after its fence, lock_shared under shared_.
    const std::uintptr_t bias = bias_.load(std::memory_order_relaxed);
    if (bias != revoked) {
      const std::uintptr_t me = this_thread_identity();
      if (bias == me) {  // the owner, as usual once it has claimed the bias
        if (enter_biased(me)) return;
      } else if (bias == unclaimed && may_claim_bias() && lock_biased(me)) {
        return;
      }
    }
    lock_shared();
  }

  void unlock() noexcept GORO_RELEASE() {
    if (fast_) {
      owner_in_.store(false, std::memory_order_release);
    } else {
      shared_.unlock();
    }
  }

 private:
  friend struct biased_lock_test_peer;
  static constexpr std::uintptr_t unclaimed = 0;
  static constexpr std::uintptr_t revoked = 1;  // thread identities are never 0 or 1

  // The owner's way in: claims the bias for `me` if it is unclaimed, and holds the lock if the
  // bias is (still) `me`. REQUIRES: asymmetric fences are on, since this side of the Dekker
  // pair with revoke() is only a compiler barrier (may_claim_bias() checks it for a claim; a
  // bias once claimed means they were on, and they stay on).
  bool lock_biased(std::uintptr_t me) noexcept {
    std::uintptr_t bias = bias_.load(std::memory_order_relaxed);
    // Relaxed: a claim that succeeds finds a lock no one has held (every other holder revokes
    // first), so there is nothing before it to order against.
    if (bias == unclaimed && bias_.compare_exchange_strong(bias, me, std::memory_order_relaxed)) {
      bias = me;
    }
    return bias == me && enter_biased(me);
  }

  // The owner `me`, which has read bias_ == me: holds the lock unless revoked meanwhile.
  bool enter_biased(std::uintptr_t me) noexcept {
    // Dekker with revoke(): store owner_in_, light fence, load bias_.
    owner_in_.store(true, std::memory_order_relaxed);
    std::atomic_signal_fence(std::memory_order_seq_cst);
    if (bias_.load(std::memory_order_relaxed) == me) {
      fast_ = true;
      return true;
    }
    owner_in_.store(false, std::memory_order_release);  // revoked meanwhile
    return false;
  }

  // Everyone else's way in, and the owner's after a revocation. fast_ is false here without a
  // store (which would cost a line transfer with a waiter spinning on shared_): only a bias
  // sets it, and every holder of shared_ comes after the revocation that cleared it.
  void lock_shared() noexcept GORO_ACQUIRE(shared_) {
    shared_.lock();
    // Relaxed: a revocation was stored by an earlier holder of shared_, whose unlock we
    // acquired; a value read stale only sends us to revoke()'s exchange, which reads the latest.
    if (bias_.load(std::memory_order_relaxed) != revoked) revoke();
  }

  // Called with shared_ held: sets bias_ to revoked and, if an owner had claimed it, waits
  // until the owner is out, then clears fast_ (src/chan/biased_lock.cpp).
  void revoke() noexcept GORO_REQUIRES(shared_);

  // Once revoked, the first line is only read: every lock reads bias_ and every unlock fast_,
  // and on a line apart from shared_ those reads cost no transfer when shared_ is contended.
  std::atomic<std::uintptr_t> bias_{unclaimed};
  std::atomic<bool> owner_in_{false};  // written only by the owner's thread
  bool fast_ = false;  // the holder holds it by the bias; written by the owner, and by revoke()
  alignas(cache_line_size) spinlock shared_;
};

}  // namespace goro::detail
