// SPDX-License-Identifier: Apache-2.0
/// @file
/// goro::runtime: a pool of worker threads running fibers (an M:N scheduler), configured by
/// goro::options (options.hpp).
/// Design: docs/scheduler.md.
#pragma once

#include <cstddef>
#include <memory>
#include <utility>
#include "goro/detail/spawn_site.hpp"

#include "goro/detail/spawn.hpp"
#include "goro/metrics.hpp"
#include "goro/options.hpp"

namespace goro {

/// A set of worker threads that run fibers.
///
/// ~runtime() blocks until every fiber spawned on it, and every fiber those spawned, has
/// finished; it must not run on one of its own fibers. On a fiber of another runtime it parks
/// that fiber (a thread of its own waits), leaving the fiber's worker to other fibers.
class runtime {
 public:
  /// Throws std::invalid_argument if workers > max_workers, if stack_size < min_stack_size (with
  /// compact_stacks: outside [min_compact_stack_size, min_stack_size)) or so large that 32
  /// stacks of it would span more than PTRDIFF_MAX bytes, if GORO_MAXPROCS is consulted and is
  /// not a positive integer no larger than max_workers, or with compact_stacks if symbol
  /// binding is lazy: LD_BIND_NOW is unset or empty and a loaded object with PLT
  /// relocations was not linked with -z now (the message names it).
  runtime();
  explicit runtime(const options& opts);
  ~runtime();
  runtime(const runtime&) = delete;
  runtime& operator=(const runtime&) = delete;

  /// Runs f(args...) in a new fiber on this runtime. Arguments are decay-copied, as by
  /// std::thread. Throws std::bad_alloc if no stack can be had. The fiber records where it was
  /// spawned (`site`, filled in by the compiler) for the diagnostics (docs/diagnostics.md).
  ///
  /// One overload per argument count up to four, so that the defaulted `site` can come last (a
  /// member function cannot take goro::go's deduction guide); with more arguments, the fiber's
  /// site is this header.
  template <class F>
  void go(F&& f, detail::spawn_site site = detail::spawn_site::current()) {
    detail::spawn(*sched_, site, std::forward<F>(f));
  }
  template <class F, class A1>
  void go(F&& f, A1&& a1, detail::spawn_site site = detail::spawn_site::current()) {
    detail::spawn(*sched_, site, std::forward<F>(f), std::forward<A1>(a1));
  }
  template <class F, class A1, class A2>
  void go(F&& f, A1&& a1, A2&& a2, detail::spawn_site site = detail::spawn_site::current()) {
    detail::spawn(*sched_, site, std::forward<F>(f), std::forward<A1>(a1), std::forward<A2>(a2));
  }
  template <class F, class A1, class A2, class A3>
  void go(F&& f, A1&& a1, A2&& a2, A3&& a3,
          detail::spawn_site site = detail::spawn_site::current()) {
    detail::spawn(*sched_, site, std::forward<F>(f), std::forward<A1>(a1), std::forward<A2>(a2),
                  std::forward<A3>(a3));
  }
  template <class F, class A1, class A2, class A3, class A4>
  void go(F&& f, A1&& a1, A2&& a2, A3&& a3, A4&& a4,
          detail::spawn_site site = detail::spawn_site::current()) {
    detail::spawn(*sched_, site, std::forward<F>(f), std::forward<A1>(a1), std::forward<A2>(a2),
                  std::forward<A3>(a3), std::forward<A4>(a4));
  }
  template <class F, class... Args>
  requires(sizeof...(Args) > 4) void go(F&& f, Args&&... args) {
    detail::spawn(*sched_, detail::spawn_site::current(), std::forward<F>(f),
                  std::forward<Args>(args)...);
  }

  /// Worker threads of this runtime.
  std::size_t workers() const noexcept;
  /// Bytes of stack each fiber gets (options::stack_size, resolved).
  std::size_t stack_size() const noexcept;
  /// This runtime's counters and gauges now (runtime_metrics says how consistent they are).
  /// Callable from any thread or fiber; costs a pass over the workers' counters.
  runtime_metrics metrics() const noexcept;

 private:
  std::unique_ptr<detail::scheduler> sched_;
};

}  // namespace goro
