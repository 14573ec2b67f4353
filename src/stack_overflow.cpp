// SPDX-License-Identifier: Apache-2.0
// The stack overflow handler; see stack_overflow.hpp.
#include "stack_overflow.hpp"

#include <signal.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstdlib>
#include <mutex>

#include "scheduler.hpp"

namespace goro::detail {
namespace {

constexpr std::size_t alt_stack_size = 64 * 1024;
struct sigaction previous_action;

void write_all(const char* s, std::size_t n) noexcept {
  while (n > 0) {
    const ssize_t k = ::write(STDERR_FILENO, s, n);
    if (k <= 0) return;
    s += k;
    n -= static_cast<std::size_t>(k);
  }
}

std::size_t format_decimal(std::uint64_t v, char* out) noexcept {
  char tmp[24];
  std::size_t n = 0;
  do {
    tmp[n++] = static_cast<char>('0' + v % 10);
    v /= 10;
  } while (v != 0);
  for (std::size_t i = 0; i < n; ++i) out[i] = tmp[n - 1 - i];
  return n;
}

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
  char msg[80] = "goro: fiber stack overflow (fiber ";
  std::size_t n = sizeof("goro: fiber stack overflow (fiber ") - 1;
  n += format_decimal(fiber_id, msg + n);
  msg[n++] = ')';
  msg[n++] = '\n';
  write_all(msg, n);
  std::abort();
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
