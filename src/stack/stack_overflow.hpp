// SPDX-License-Identifier: Apache-2.0
// Turning a fiber stack overflow into a clear message instead of silent corruption: a SIGSEGV
// handler, run on a per-worker alternate signal stack, that recognises faults in the current
// fiber's guard page. See docs/scheduler.md, "Stacks".
#pragma once

#include <cstdint>

namespace goro::detail {

// Installs the process-wide SIGSEGV handler (once); faults it does not recognise go to the
// handler that was installed before it.
void install_stack_overflow_handler();

// Prints "goro: fiber stack overflow (fiber N)" and aborts. Async-signal-safe.
[[noreturn]] void report_stack_overflow(std::uint64_t fiber_id) noexcept;

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
