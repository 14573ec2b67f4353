// SPDX-License-Identifier: Apache-2.0
// What go() needs from the compiled scheduler: a fiber with room for its callable on its own
// stack (no heap allocation per spawn), and the type-erased task that runs there.
#pragma once

#include <cstddef>
#include <functional>
#include <new>
#include <tuple>
#include <type_traits>
#include <utility>
#include "goro/detail/spawn_site.hpp"

namespace goro::detail {

struct fiber;
class scheduler;

struct new_fiber {
  fiber* fib;
  void* storage;  // sizeof/alignof as asked, at the top of the fiber's stack
};

// Allocates a fiber on `sched` whose body is run(storage), spawned at `site`. Throws
// std::bad_alloc, or std::invalid_argument if the callable does not fit its stack.
new_fiber fiber_create(scheduler& sched, std::size_t size, std::size_t align, void (*run)(void*),
                       spawn_site site);
// Makes a created fiber runnable.
void fiber_start(fiber* fib) noexcept;
// Frees a created fiber that will never start (its task's constructor threw).
void fiber_discard(fiber* fib) noexcept;

// The runtime of the calling fiber; outside fibers, the default runtime (started on first use).
scheduler& current_or_default_scheduler();
// What a goro call that needs `s` does once `s` stopped at exit (docs/scheduler.md, "Process
// exit"): a fiber of `s`, other than the one running std::exit, stops there for good; any other
// caller gets std::logic_error, naming `operation`.
void refuse_stopped_runtime(scheduler& s, const char* operation);

// The callable and its decay-copied arguments, stored on the fiber's stack.
template <class F, class... Args>
struct task {
  std::tuple<F, Args...> parts;

  static void run(void* self) {
    auto* t = static_cast<task*>(self);
    std::apply([](F& f, Args&... args) { std::invoke(std::move(f), std::move(args)...); },
               t->parts);
    t->~task();
  }
};

#if defined(__cpp_lib_source_location)
// A spawn site costs one pointer: what the compiler made for source_location::current().
static_assert(sizeof(spawn_site) == sizeof(void*));
#endif

template <class F, class... Args>
void spawn(scheduler& sched, spawn_site site, F&& f, Args&&... args) {
  using task_type = task<std::decay_t<F>, std::decay_t<Args>...>;
  static_assert(std::is_invocable_v<std::decay_t<F>, std::decay_t<Args>...>,
                "goro::go: f(args...) must be callable with the decay-copied arguments");
  new_fiber nf = fiber_create(sched, sizeof(task_type), alignof(task_type), &task_type::run, site);
  try {
    ::new (nf.storage) task_type{{std::forward<F>(f), std::forward<Args>(args)...}};
  } catch (...) {
    fiber_discard(nf.fib);
    throw;
  }
  fiber_start(nf.fib);
}

}  // namespace goro::detail
