// SPDX-License-Identifier: Apache-2.0
/// @file
/// goro::go: start a fiber, Go's `go` statement.
#pragma once

#include <utility>

#include "goro/detail/spawn.hpp"

namespace goro {

/// Runs f(args...) in a new fiber. Arguments are decay-copied, as by std::thread. Called in a
/// fiber, the new fiber goes to the same runtime and runs at once on the same worker, the caller
/// continuing when it blocks or finishes, or sooner on another worker (work-first spawning, see
/// docs/scheduler.md); so, as around any goro call that can switch fibers, do not hold a
/// std::mutex that the new fiber may take (use goro::mutex). Called from any other thread, the
/// fiber goes to the default runtime, started on first use. An exception escaping f prints what
/// it was and calls std::terminate, as one escaping a std::thread does.
template <class F, class... Args>
void go(F&& f, Args&&... args) {
  detail::spawn(detail::current_or_default_scheduler(), std::forward<F>(f),
                std::forward<Args>(args)...);
}

}  // namespace goro
