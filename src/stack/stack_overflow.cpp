// SPDX-License-Identifier: Apache-2.0
// Layer: stack. May include: stack, time, platform.
// The stack overflow handler; see stack_overflow.hpp.
#include "stack/stack_overflow.hpp"

#include <signal.h>
#include <sys/mman.h>
#include <unistd.h>

#include <atomic>
#include <cinttypes>
#include <mutex>

#include "platform/fatal.hpp"

namespace goro::detail {
namespace {

constexpr std::size_t alt_stack_size = 64 * 1024;
struct sigaction previous_action;
std::atomic<running_fiber_stack_fn> running_fiber_stack{nullptr};

void on_segv(int sig, siginfo_t* info, void* uctx) {
  stack_region stack;
  std::uint64_t fiber_id = 0;
  spawn_site site;
  const running_fiber_stack_fn running = running_fiber_stack.load(std::memory_order_acquire);
  if (running != nullptr && running(stack, fiber_id, site)) {
    const auto* addr = static_cast<const std::byte*>(info->si_addr);
    const std::size_t page = stack_pool::page_size();
    // A guard page; or, below a compact stack, whatever faults within a page of it (the first
    // compact stack of a slab has unmapped or protected memory below it).
    if ((stack.guarded || stack.compact) && addr >= stack.low - page && addr < stack.low) {
      report_stack_overflow(fiber_id, site);
    }
  }
  // Not ours: hand the signal to whoever handled it before us, or to the default action.
  if ((previous_action.sa_flags & SA_SIGINFO) != 0 && previous_action.sa_sigaction != nullptr) {
    previous_action.sa_sigaction(sig, info, uctx);
    return;
  }
  if (previous_action.sa_handler != SIG_DFL && previous_action.sa_handler != SIG_IGN &&
      previous_action.sa_handler != nullptr) {
    previous_action.sa_handler(sig);
    return;
  }
  signal(sig, SIG_DFL);  // the faulting instruction re-runs and takes the default action
}

}  // namespace

void report_stack_overflow(std::uint64_t fiber_id, const spawn_site& site) noexcept {
  fatal("fiber stack overflow (fiber %" PRIu64 ") in the fiber created at %s:%u", fiber_id,
        site.file_name(), static_cast<unsigned>(site.line()));
}

void install_stack_overflow_handler(running_fiber_stack_fn running) {
  running_fiber_stack.store(running, std::memory_order_release);
  static std::once_flag once;
  std::call_once(once, [] {
    struct sigaction action {};
    action.sa_sigaction = on_segv;
    action.sa_flags = SA_SIGINFO | SA_ONSTACK;
    sigemptyset(&action.sa_mask);
    sigaction(SIGSEGV, &action, &previous_action);
  });
}

alt_signal_stack::alt_signal_stack() {
  void* mem =
      mmap(nullptr, alt_stack_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (mem == MAP_FAILED) return;
  stack_t ss{};
  ss.ss_sp = mem;
  ss.ss_size = alt_stack_size;
  if (sigaltstack(&ss, nullptr) != 0) {
    munmap(mem, alt_stack_size);
    return;
  }
  mem_ = mem;
}

alt_signal_stack::~alt_signal_stack() {
  if (mem_ == nullptr) return;
  stack_t ss{};
  ss.ss_flags = SS_DISABLE;
  sigaltstack(&ss, nullptr);
  munmap(mem_, alt_stack_size);
}

}  // namespace goro::detail
