// SPDX-License-Identifier: Apache-2.0
// The stack overflow handler; see stack_overflow.hpp.
#include "stack/stack_overflow.hpp"

#include <signal.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cinttypes>
#include <mutex>

#include "platform/fatal.hpp"
#include "sched/scheduler.hpp"

namespace goro::detail {
namespace {

constexpr std::size_t alt_stack_size = 64 * 1024;
struct sigaction previous_action;

void on_segv(int sig, siginfo_t* info, void* uctx) {
  if (worker* w = worker::current()) {
    if (const fiber* f = w->current_fiber()) {
      const auto* addr = static_cast<const std::byte*>(info->si_addr);
      const std::size_t page = stack_pool::page_size();
      // A guard page; or, below a compact stack, whatever faults within a page of it (the
      // first compact stack of a slab has unmapped or protected memory below it).
      if ((f->stack.guarded || f->stack.compact) && addr >= f->stack.low - page &&
          addr < f->stack.low) {
        report_stack_overflow(f->id);
      }
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

void report_stack_overflow(std::uint64_t fiber_id) noexcept {
  fatal("fiber stack overflow (fiber %" PRIu64 ")", fiber_id);
}

void install_stack_overflow_handler() {
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
  void* mem = mmap(nullptr, alt_stack_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                   -1, 0);
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
