// SPDX-License-Identifier: Apache-2.0
// Layer: net. May include: net, park, sched, stack, time, platform.
// The blocking pool's second entry, beside goro::blocking's run_blocking: a call its caller may
// stop waiting for. A thread inside getaddrinfo cannot be interrupted, so a dial whose deadline
// passes (or whose stop is requested) during its name lookup leaves the lookup running and
// returns; the lookup finishes later into state nobody reads. Go's resolver does the same: the
// goroutine of a cancelled lookup returns at once, and the cgo call ends when it ends.
#pragma once

#include <memory>
#include <system_error>

#include "goro/detail/deadline.hpp"

namespace goro::detail {

// Runs job(state.get()) on a thread of the blocking pool and waits (parking a fiber, blocking a
// thread) until it returns, or until `limit` ends the wait. Returns std::errc() if the job
// returned: everything it did happens-before this return. Returns std::errc::timed_out (the
// deadline passed) or std::errc::operation_canceled (a stop request) if the limit came first:
// the job may still be running, the pool keeps `state` alive until it returns, and the caller
// must not read what the job writes.
std::errc run_blocking_limited(std::shared_ptr<void> state, void (*job)(void*) noexcept,
                               const wait_limit& limit);

}  // namespace goro::detail
