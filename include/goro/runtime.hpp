// SPDX-License-Identifier: Apache-2.0
/// @file
/// goro::runtime: a pool of worker threads running fibers (an M:N scheduler), configured by
/// goro::options (options.hpp).
/// Design: docs/scheduler.md.
#pragma once

#include <cstddef>
#include <memory>
#include <utility>

#include "goro/detail/spawn.hpp"
#include "goro/options.hpp"

namespace goro {

/// A set of worker threads that run fibers.
///
/// ~runtime() blocks until every fiber spawned on it, and every fiber those spawned, has
/// finished; it must not run on one of its own fibers.
class runtime {
 public:
  /// Throws std::invalid_argument if workers > max_workers, if stack_size < min_stack_size (with
  /// compact_stacks: outside [min_compact_stack_size, min_stack_size)), if GORO_MAXPROCS is
  /// consulted and is not a positive integer no larger than max_workers, or with compact_stacks
  /// if symbol binding is lazy: LD_BIND_NOW is unset or empty and a loaded object with PLT
  /// relocations was not linked with -z now (the message names it).
  runtime();
  explicit runtime(const options& opts);
  ~runtime();
  runtime(const runtime&) = delete;
  runtime& operator=(const runtime&) = delete;

  /// Runs f(args...) in a new fiber on this runtime. Arguments are decay-copied, as by
  /// std::thread. Throws std::bad_alloc if no stack can be had.
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
