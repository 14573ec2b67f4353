// SPDX-License-Identifier: Apache-2.0
// Layer: platform. May include: platform.
// What differs between the CPUs goro supports (x86-64 and AArch64, named in CMakeLists.txt and
// README.md), under one `#if` ladder: the spin-wait hint, the calling thread's identity (the
// biased channel lock's owner test), and a fresh read of an initial-exec thread-local
// (worker::current), and the stack pointer (a fiber's stack check). Plus the one spin-then-yield
// backoff of goro's spin loops.
//
// Why assembly for the thread reads: a fiber may resume on another thread, so no thread-local
// address, nor the thread pointer it is found from, may be reused across a switch; compilers
// treat both as fixed for a function's whole run (__builtin_thread_pointer() included). Each
// read below is one asm statement, re-executed wherever it is written: volatile, so never merged
// with an earlier one.
#pragma once

#include <cstdint>
#include <thread>

namespace goro::detail {

#if defined(__x86_64__) && defined(__LP64__) && defined(__ELF__)

// Tells the CPU this is a spin-wait loop: a sibling hyperthread gets the core's resources, and
// leaving the loop costs no memory-order mis-speculation.
inline void cpu_relax() noexcept { __builtin_ia32_pause(); }

// The calling thread's identity: its thread pointer, which live threads never share and which
// is never 0 or 1. One instruction, afresh at every call.
inline std::uintptr_t this_thread_identity() noexcept {
  std::uintptr_t id;
  asm volatile("mov %%fs:0, %0" : "=r"(id));
  return id;
}

// The calling function's stack pointer, without making it keep a frame pointer, as
// __builtin_frame_address(0) does (4 instructions per fiber switch, callgrind).
inline const void* stack_pointer() noexcept {
  const void* sp;
  asm volatile("mov %%rsp, %0" : "=r"(sp));
  return sp;
}

// GORO_TLS_READ(out, symbol) loads the pointer-sized initial-exec thread-local whose assembler
// name is the string literal `symbol` into `out`, afresh: the variable's offset from the GOT,
// then a load through %fs. It clobbers memory, so it is never moved across a call that may
// touch memory, as every fiber switch is. Where GORO_TLS_READ_ASM is 0, callers read the
// variable in a call the compiler cannot see into instead.
#define GORO_TLS_READ_ASM 1
#define GORO_TLS_READ(out, symbol)        \
  asm volatile("movq " symbol             \
               "@gottpoff(%%rip), %0\n\t" \
               "movq %%fs:(%0), %0"       \
               : "=r"(out)                \
               :                          \
               : "memory")

#elif defined(__aarch64__)

inline void cpu_relax() noexcept { asm volatile("yield"); }

inline std::uintptr_t this_thread_identity() noexcept {
  std::uintptr_t id;
  asm volatile("mrs %0, tpidr_el0" : "=r"(id));
  return id;
}

inline const void* stack_pointer() noexcept {
  const void* sp;
  asm volatile("mov %0, sp" : "=r"(sp));
  return sp;
}

#define GORO_TLS_READ_ASM 0

#else
#error "goro supports x86-64 and AArch64 only (see README.md, Platforms)"
#endif

// The one spin-then-yield backoff of goro's spin loops: the CPU's pause hint for the first
// spin_limit rounds (a holder on another core is a few instructions from done), then the
// thread yields (the holder may have been preempted, and needs this CPU to finish).
class backoff {
 public:
  void pause() noexcept {
    if (spins_ < spin_limit) {
      ++spins_;
      cpu_relax();
    } else {
      std::this_thread::yield();
    }
  }

 private:
  static constexpr int spin_limit = 64;
  int spins_ = 0;
};

}  // namespace goro::detail
