// SPDX-License-Identifier: Apache-2.0
// Layer: platform. May include: platform.
// Execution contexts and the one stack-switch primitive goro uses. This is the only interface
// to Boost.Context in the project (implemented in context.cpp), the only place that tells
// AddressSanitizer and ThreadSanitizer about stack switches, and the only place that moves the
// C++ runtime's exception state between contexts (docs/scheduler.md, "Exception state per
// fiber").
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

namespace goro::detail {

// The C++ runtime's per-thread exception state while the context it belongs to is suspended:
// the Itanium C++ ABI's __cxa_eh_globals (its section 2.2.2), which libstdc++ (libsupc++),
// libc++abi and libcxxrt all lay out as these two fields first, and on 32-bit ARM's EHABI a
// third. A fresh context holds none: no handler active, nothing unwinding.
struct cxa_eh_state {
  void* caught_exceptions = nullptr;  // __cxa_exception*: the innermost active handler's
  unsigned int uncaught_exceptions = 0;
#if defined(__arm__) && !defined(__USING_SJLJ_EXCEPTIONS__) && !defined(__ARM_DWARF_EH__)
  void* propagating_exceptions = nullptr;
#endif
};

// A suspended (or running) flow of control: a fiber's or a worker thread's own.
struct exec_context {
  void* fctx = nullptr;            // Boost fcontext of the suspended context; null while it runs
  bool fresh = false;              // Made but never entered.
  void (*entry)(void*) = nullptr;  // For fresh contexts: what to run; must never return.
  void* entry_arg = nullptr;
  const void* stack_low = nullptr;  // Stack bounds, for AddressSanitizer.
  std::size_t stack_size = 0;
  void* asan_fake_stack = nullptr;    // AddressSanitizer's fake stack while suspended.
  void* tsan_fiber = nullptr;         // ThreadSanitizer's fiber handle.
  cxa_eh_state eh;                    // Its exception state while suspended.
  cxa_eh_state* thread_eh = nullptr;  // While it runs: the running thread's __cxa_eh_globals.
  // Set while another thread walks this context's stack (the dump's stack traces): a switch to
  // it waits until the walk is done (see stack_walks). Mutable: walkers hold records const.
  mutable std::atomic<bool> walk_held{false};
};

// Stack walks in progress (diag/fiber_stack.cpp). While it is non-zero, every switch waits out
// a walk of the context it resumes (exec_context::walk_held) before it touches that context.
// The light side of an asymmetric Dekker pair (platform/asymmetric_fence.hpp) with the walker,
// which sets walk_held, counts itself here and makes a heavy fence before it reads whether the
// context's owner still lets it be walked: the switching thread's earlier store (its fiber's
// state, running) and this load are ordered by the call into the switch, opaque to the
// compiler, and by the walker's membarrier for the CPU. Walks happen only with asymmetric
// fences on, so it stays 0 otherwise. docs/diagnostics.md, "Stack traces".
inline std::atomic<std::uint32_t> stack_walks{0};

// Runs once the switch has happened, on the new stack, before the new context continues.
using arrival_hook = void (*)(void* arg);

// Describes the calling thread's own stack as a context, so fibers can switch back to it, and
// notes where that thread's C++ exception state lives. Call on the thread it describes.
void init_thread_context(exec_context& ctx);

// A context that runs entry(arg) on the stack [low, low + size) when first switched to.
// Returned by value, so that a fiber's record is written once, with it in place.
exec_context make_context(void* low, std::size_t size, void (*entry)(void*), void* arg);

// Releases sanitizer state of a context that finished; call from another context.
void destroy_context(exec_context& ctx) noexcept;

// Suspends the caller into `from` and resumes `to`. Once `from` is saved, hook(arg) runs on
// `to`'s stack; only then may another thread resume `from`. Returns when something switches
// back to `from`, possibly on another thread. Saving `from` includes the calling thread's C++
// exception state, which `to`'s replaces; `from` gets its own back on whichever thread resumes
// it.
void switch_context(exec_context& from, exec_context& to, arrival_hook hook, void* arg) noexcept;

// Like switch_context, for a context that will never be resumed (a fiber that finished), which
// must hold no exception state (no handler active, nothing unwinding).
[[noreturn]] void exit_context(exec_context& from, exec_context& to, arrival_hook hook,
                               void* arg) noexcept;

}  // namespace goro::detail
