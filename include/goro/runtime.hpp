// SPDX-License-Identifier: Apache-2.0
// goro::runtime: a pool of worker threads running fibers (an M:N scheduler), and its options.
// Design: docs/scheduler.md.
#pragma once

#include <cstddef>
#include <memory>
#include <utility>

#include "goro/detail/spawn.hpp"

namespace goro {

// Largest worker count a runtime accepts.
inline constexpr std::size_t max_workers = 1024;
// Smallest fiber stack accepted, and the default (sanitized builds use 4x the default).
inline constexpr std::size_t min_stack_size = 16 * 1024;
inline constexpr std::size_t default_stack_size = 64 * 1024;
// With options::compact_stacks: the smallest stack accepted, and the default (sanitized and
// unoptimised builds use 6x the default, as their frames need up to 8 KiB). Compact stacks are
// smaller than min_stack_size.
inline constexpr std::size_t min_compact_stack_size = 1024;
inline constexpr std::size_t default_compact_stack_size = 2 * 1024;

struct options {
  // Worker threads. 0: the environment variable GORO_MAXPROCS if set, else
  // std::thread::hardware_concurrency().
  std::size_t workers = 0;
  // Bytes of stack per fiber, rounded up to whole pages. 0: default_stack_size.
  // With compact_stacks: rounded up to a multiple of 256 bytes; 0: default_compact_stack_size.
  std::size_t stack_size = 0;
  // Compact stacks, for very many fibers with known shallow call chains: stacks smaller than a
  // page, packed several to a page, so a parked fiber costs about stack_size + 64 bytes instead
  // of a 4 KiB page. There are no guard pages: an overflow is detected (best effort) by a canary
  // below each stack at the fiber's next switch, when the stack below may already be damaged.
  // Deep recursion, large locals, exceptions, stdio and signal handlers not installed with
  // SA_ONSTACK need more room than these stacks have, and so does the dynamic linker's lazy
  // binding: the runtime refuses compact stacks unless binding is eager (LD_BIND_NOW=1, or
  // every loaded object linked with -z now). See docs/scheduler.md, "Compact stacks".
  bool compact_stacks = false;
};

// A set of worker threads that run fibers.
//
// ~runtime() blocks until every fiber spawned on it, and every fiber those spawned, has
// finished; it must not run on one of its own fibers.
class runtime {
 public:
  // Throws std::invalid_argument if workers > max_workers, if stack_size < min_stack_size (with
  // compact_stacks: outside [min_compact_stack_size, min_stack_size)), if GORO_MAXPROCS is
  // consulted and is not a positive integer no larger than max_workers, or with compact_stacks
  // if symbol binding is lazy: LD_BIND_NOW is unset or empty and a loaded object with PLT
  // relocations was not linked with -z now (the message names it).
  runtime();
  explicit runtime(const options& opts);
  ~runtime();
  runtime(const runtime&) = delete;
  runtime& operator=(const runtime&) = delete;

  // Runs f(args...) in a new fiber on this runtime. Arguments are decay-copied, as by
  // std::thread. Throws std::bad_alloc if no stack can be had.
  template <class F, class... Args>
  void go(F&& f, Args&&... args) {
    detail::spawn(*sched_, std::forward<F>(f), std::forward<Args>(args)...);
  }

  std::size_t workers() const noexcept;
  std::size_t stack_size() const noexcept;

 private:
  std::unique_ptr<detail::scheduler> sched_;
};

}  // namespace goro
