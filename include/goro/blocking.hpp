// SPDX-License-Identifier: Apache-2.0
/// @file
/// goro::blocking: run a call that blocks its thread (a C library call, getaddrinfo, a file
/// read) off the runtime's workers, as Go hands its P to another thread during a system call.
#pragma once

#include <exception>
#include <functional>
#include <optional>
#include <tuple>
#include <type_traits>
#include <utility>

namespace goro {

namespace detail {

// Runs job(arg) on a thread of the blocking pool and parks the calling fiber until it returns;
// outside fibers, runs it on the calling thread. job must not throw.
void run_blocking(void (*job)(void*) noexcept, void* arg);

}  // namespace detail

/// Calls f(args...) on a thread of goro's blocking pool, parking the calling fiber (its worker
/// runs other fibers meanwhile), and returns what f returned or rethrows what it threw. The
/// pool grows by a thread whenever every thread in it is busy, and a thread idle for a while
/// leaves it, so a slow call never waits behind another. Called outside fibers, runs f on the
/// calling thread. Arguments are forwarded by reference: they live on the caller's stack until
/// f returns.
///
/// Memory ordering: everything the caller did before blocking() happens-before f runs, and
/// everything f did happens-before blocking() returns.
template <class F, class... Args>
std::invoke_result_t<F, Args...> blocking(F&& f, Args&&... args) {
  using result_type = std::invoke_result_t<F, Args...>;
  // A reference result is kept as a pointer (an optional cannot hold a reference).
  using stored_type = std::conditional_t<std::is_reference_v<result_type>,
                                         std::add_pointer_t<result_type>, result_type>;
  struct call {
    std::tuple<F&&, Args&&...> parts;
    std::conditional_t<std::is_void_v<result_type>, bool, std::optional<stored_type>> result{};
    std::exception_ptr error{};

    static void run(void* self) noexcept {
      auto* c = static_cast<call*>(self);
      try {
        if constexpr (std::is_void_v<result_type>) {
          std::apply([](auto&&... p) { std::invoke(std::forward<decltype(p)>(p)...); },
                     std::move(c->parts));
        } else if constexpr (std::is_reference_v<result_type>) {
          c->result.emplace(&std::apply(
              [](auto&&... p) -> result_type {
                return std::invoke(std::forward<decltype(p)>(p)...);
              },
              std::move(c->parts)));
        } else {
          c->result.emplace(
              std::apply([](auto&&... p) { return std::invoke(std::forward<decltype(p)>(p)...); },
                         std::move(c->parts)));
        }
      } catch (...) {
        c->error = std::current_exception();
      }
    }
  };
  call c{{std::forward<F>(f), std::forward<Args>(args)...}};
  detail::run_blocking(&call::run, &c);
  if (c.error) std::rethrow_exception(c.error);
  if constexpr (std::is_reference_v<result_type>) {
    return static_cast<result_type>(**c.result);
  } else if constexpr (!std::is_void_v<result_type>) {
    return std::move(*c.result);
  }
}

}  // namespace goro
