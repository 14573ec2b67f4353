// SPDX-License-Identifier: Apache-2.0
/// @file
/// goro::once_flag and goro::call_once: Go's sync.Once with std::call_once's spelling and its
/// retry-after-throw rule; concurrent callers park (fibers free their worker) while the first
/// call runs. Contract: docs/sync.md, "once".
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <utility>

#include "goro/detail/spinlock.hpp"
#include "goro/detail/thread_safety.hpp"

namespace goro {

namespace detail {
struct sync_node;
}

class once_flag;

/// Calls f(args...) unless a call through `flag` has already returned normally. Callers that
/// arrive while one call runs block until it ends. If that call throws, the exception goes to
/// its caller only, the flag stays unset, and one blocked caller (or a later one) makes the next
/// call, as std::call_once. A call_once on `flag` from inside f deadlocks, as in Go.
///
/// Memory ordering: the call that returned normally happens-before every call_once on the same
/// flag that returns without calling.
template <class F, class... Args>
void call_once(once_flag& flag, F&& f, Args&&... args);

/// The state call_once keeps: not yet called, being called, or done.
class once_flag {
 public:
  constexpr once_flag() noexcept = default;
  once_flag(const once_flag&) = delete;
  once_flag& operator=(const once_flag&) = delete;

 private:
  template <class F, class... Args>
  friend void call_once(once_flag& flag, F&& f, Args&&... args);

  enum : std::uint32_t { idle = 0, running = 1, done = 2 };

  // Returns true if the caller is to make the call (state_ is now running), false if a call
  // has completed; blocks while another caller makes one.
  bool begin() noexcept;
  // The call threw: passes the turn to one blocked caller, or back to idle.
  void abandon() noexcept;
  // The call returned: done, and every blocked caller returns.
  void finish() noexcept;

  std::atomic<std::uint32_t> state_{idle};  // written under lock_; done is read without it
  detail::spinlock lock_;                   // guards the queue
  detail::sync_node* head_ GORO_GUARDED_BY(lock_) = nullptr;
  detail::sync_node* tail_ GORO_GUARDED_BY(lock_) = nullptr;
};

template <class F, class... Args>
void call_once(once_flag& flag, F&& f, Args&&... args) {
  // Go's fast path: one acquire load, which pairs with finish()'s release store.
  if (flag.state_.load(std::memory_order_acquire) == once_flag::done) return;
  if (!flag.begin()) return;
  try {
    std::invoke(std::forward<F>(f), std::forward<Args>(args)...);
  } catch (...) {
    flag.abandon();
    throw;
  }
  flag.finish();
}

}  // namespace goro
