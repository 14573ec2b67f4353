// SPDX-License-Identifier: Apache-2.0
// Layer: park. May include: park, sched, stack, time, platform.
// The wait-queue node of goro's sync primitives (mutex, shared_mutex, condition_variable, once,
// counting_semaphore, wait_group), their claim outcomes, and the fatal-error report they share.
// The protocol (queue under the primitive's spinlock, claim before unpark, unlink on timeout or
// cancel) is described in docs/sync.md, "Waiting"; the queue itself is park/wait_queue.hpp.
#pragma once

#include "goro/detail/spinlock.hpp"
#include "park/park.hpp"
#include "park/wait_queue.hpp"
#include "platform/fatal.hpp"

namespace goro::detail {

// The sync primitives' claim outcomes (timed_out and cancelled are the parking layer's).
inline constexpr claim_outcome granted{0};  // the waker completed the operation for the waiter
inline constexpr claim_outcome woken{1};    // mutex, normal mode: the waiter must compete again

// What a sync primitive's waiter waits on (fiber.hpp, wait_reason), named as Go names them.
inline constexpr wait_reason wait_group_wait{"wait_group wait"};
inline constexpr wait_reason mutex_lock{"mutex lock"};
inline constexpr wait_reason shared_mutex_lock{"shared_mutex lock"};
inline constexpr wait_reason shared_mutex_lock_shared{"shared_mutex lock_shared"};
inline constexpr wait_reason condition_variable_wait{"condition_variable wait"};
inline constexpr wait_reason semaphore_acquire{"semaphore acquire"};
inline constexpr wait_reason call_once_wait{"call_once"};

// One blocking call of one fiber or thread. Linked in at most one queue, and only while the
// call is blocked; a waker that wins w.claim() unlinks it before unparking it.
struct sync_node : wait_link<sync_node> {
  sync_node(const wait_reason& why, const void* object) noexcept : w(why, object) {}
  waiter w;
  clock::time_point since{};  // mutex: when this lock() call first queued

  bool claim(claim_outcome c) noexcept { return w.claim(c); }
  void unpark() noexcept { w.unpark(); }
};

using sync_queue = wait_queue<sync_node>;

// A misuse the program cannot recover from (Go's "fatal error: sync: unlock of unlocked
// mutex"): prints "goro: fatal error: <what>" and aborts.
[[noreturn]] inline void sync_fatal(const char* what) noexcept { fatal("%s", what); }

}  // namespace goro::detail
