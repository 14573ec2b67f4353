// SPDX-License-Identifier: Apache-2.0
// Layer: stack. May include: stack, time, platform.
// Turning a fiber stack overflow into a clear message instead of silent corruption: a SIGSEGV
// handler, run on a per-worker alternate signal stack, that recognises faults in the current
// fiber's guard page. See docs/scheduler.md, "Stacks".
#pragma once

#include <cstdint>
#include "goro/detail/spawn_site.hpp"

#include "stack/stack_pool.hpp"

namespace goro::detail {

// The stack of the fiber the calling thread runs, that fiber's id and spawn site; false when it
// runs none. Async-signal-safe. The scheduler, a layer above, supplies it.
using running_fiber_stack_fn = bool (*)(stack_region& stack, std::uint64_t& fiber_id,
                                        spawn_site& site) noexcept;

// Installs the process-wide SIGSEGV handler (once), which asks `running` where the faulting
// thread's fiber stack is; faults it does not recognise go to the handler installed before it.
void install_stack_overflow_handler(running_fiber_stack_fn running);

// Prints "goro: fatal error: fiber stack overflow (fiber N) in the fiber created at FILE:LINE"
// and aborts. Async-signal-safe.
[[noreturn]] void report_stack_overflow(std::uint64_t fiber_id, const spawn_site& site) noexcept;

// An alternate signal stack for the calling thread, for as long as the object lives.
class alt_signal_stack {
 public:
  alt_signal_stack();
  ~alt_signal_stack();
  alt_signal_stack(const alt_signal_stack&) = delete;
  alt_signal_stack& operator=(const alt_signal_stack&) = delete;

 private:
  void* mem_ = nullptr;
};

}  // namespace goro::detail
