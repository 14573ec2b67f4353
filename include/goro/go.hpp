// SPDX-License-Identifier: Apache-2.0
/// @file
/// goro::go: start a fiber, Go's `go` statement.
#pragma once

#include <utility>
#include "goro/detail/spawn_site.hpp"

#include "goro/detail/spawn.hpp"

namespace goro {

/// Runs f(args...) in a new fiber. Arguments are decay-copied, as by std::thread. Called in a
/// fiber, the new fiber goes to the same runtime and runs at once on the same worker, the caller
/// continuing when it blocks or finishes, or sooner on another worker (work-first spawning, see
/// docs/scheduler.md); so, as around any goro call that can switch fibers, do not hold a
/// std::mutex that the new fiber may take (use goro::mutex). Called from any other thread, the
/// fiber goes to the default runtime, started on first use. An exception escaping f ends the
/// process, as one escaping a std::thread does (and a panic in a goroutine): goro's fatal
/// report, "goro: fatal error: exception escaped fiber N: what()", then abort(), without
/// std::terminate's handler.
///
/// The fiber records where it was spawned (`site`, filled in by the compiler), which the
/// deadlock report, goro::dump and the stack-overflow message name (docs/diagnostics.md). A
/// defaulted parameter cannot follow a pack, so there is one overload per argument count up to
/// four; with more arguments the recorded site is this header. (A class with a deduction guide
/// would take any count, but `goro::go(f);` would then declare a variable named f.)
template <class F>
void go(F&& f, detail::spawn_site site = detail::spawn_site::current()) {
  detail::spawn(detail::current_or_default_scheduler(), site, std::forward<F>(f));
}
/// @copydoc go
template <class F, class A1>
void go(F&& f, A1&& a1, detail::spawn_site site = detail::spawn_site::current()) {
  detail::spawn(detail::current_or_default_scheduler(), site, std::forward<F>(f),
                std::forward<A1>(a1));
}
/// @copydoc go
template <class F, class A1, class A2>
void go(F&& f, A1&& a1, A2&& a2, detail::spawn_site site = detail::spawn_site::current()) {
  detail::spawn(detail::current_or_default_scheduler(), site, std::forward<F>(f),
                std::forward<A1>(a1), std::forward<A2>(a2));
}
/// @copydoc go
template <class F, class A1, class A2, class A3>
void go(F&& f, A1&& a1, A2&& a2, A3&& a3, detail::spawn_site site = detail::spawn_site::current()) {
  detail::spawn(detail::current_or_default_scheduler(), site, std::forward<F>(f),
                std::forward<A1>(a1), std::forward<A2>(a2), std::forward<A3>(a3));
}
/// @copydoc go
template <class F, class A1, class A2, class A3, class A4>
void go(F&& f, A1&& a1, A2&& a2, A3&& a3, A4&& a4,
        detail::spawn_site site = detail::spawn_site::current()) {
  detail::spawn(detail::current_or_default_scheduler(), site, std::forward<F>(f),
                std::forward<A1>(a1), std::forward<A2>(a2), std::forward<A3>(a3),
                std::forward<A4>(a4));
}
/// @copydoc go
template <class F, class... Args>
requires(sizeof...(Args) > 4) void go(F&& f, Args&&... args) {
  detail::spawn(detail::current_or_default_scheduler(), detail::spawn_site::current(),
                std::forward<F>(f), std::forward<Args>(args)...);
}

}  // namespace goro
