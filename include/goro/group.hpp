// SPDX-License-Identifier: Apache-2.0
/// @file
/// goro::group: Go's errgroup.Group (golang.org/x/sync/errgroup) for fibers. go() runs functions
/// in fibers, wait() waits for them and rethrows the first exception, which also requests stop
/// on the group's std::stop_token (errgroup.WithContext's cancel); an optional limit caps how
/// many run at once (SetLimit). Contract: docs/sync.md, "group".
#pragma once

#include <atomic>
#include <cstddef>
#include <exception>
#include <functional>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <stop_token>
#include <type_traits>
#include <utility>

#include "goro/detail/spinlock.hpp"
#include "goro/go.hpp"
#include "goro/semaphore.hpp"
#include "goro/wait_group.hpp"

namespace goro {

/// A set of fibers working on one task, waited for together. A group is used once: go() (or
/// try_go(), set_limit(), wait()) after wait() has returned throws std::logic_error.
///
/// Each function runs in a new fiber (goro::go: the caller's runtime, or the default runtime
/// from a plain thread). It may take a std::stop_token, the group's: stop is requested when a
/// function first throws, when the parent token given to the constructor is stopped, on
/// request_stop(), and when wait() returns.
///
/// Memory ordering: everything each function did happens-before wait() returns.
class group {
 public:
  /// No limit on how many functions run at once.
  group() = default;
  /// At most `limit` functions run at once; go() blocks at the limit. Negative: no limit.
  /// Zero: go() blocks forever and try_go() fails (as errgroup.SetLimit(0)).
  explicit group(std::ptrdiff_t limit) { set_limit(limit); }
  /// As group(limit), and stop is requested on this group when `parent` is stopped
  /// (errgroup.WithContext(parent)).
  explicit group(std::stop_token parent, std::ptrdiff_t limit = -1) {
    set_limit(limit);
    parent_stop_.emplace(std::move(parent), stop_forwarder{&stop_});
  }
  group(const group&) = delete;
  group& operator=(const group&) = delete;

  /// A group destroyed without wait() first requests stop, then waits for its functions (as
  /// std::jthread); their exception, if any, is dropped.
  ~group() {
    if (!waited_.load(std::memory_order_acquire)) {
      stop_.request_stop();
      wg_.wait();
    }
  }

  /// Runs f, or f(get_stop_token()), in a new fiber; blocks first while the limit is reached.
  /// An exception from f is kept for wait(), the first one only. Throws std::logic_error after
  /// wait(), and what goro::go throws (std::bad_alloc); then f does not run.
  template <class F>
  void go(F&& f) {
    check_open("goro::group::go: go after wait; a group is used once");
    if (slots_) slots_->acquire();
    launch(std::forward<F>(f));
  }

  /// As go(), but never blocks: false (and f does not run) if the limit is reached.
  template <class F>
  bool try_go(F&& f) {
    check_open("goro::group::try_go: go after wait; a group is used once");
    if (slots_ && !slots_->try_acquire()) return false;
    launch(std::forward<F>(f));
    return true;
  }

  /// Blocks until every function has returned, then rethrows the first exception, if any.
  /// Requests stop on the group's token before it returns. Throws std::logic_error if called
  /// again after it has returned.
  void wait() {
    check_open("goro::group::wait: wait after wait; a group is used once");
    wg_.wait();
    waited_.store(true, std::memory_order_release);
    stop_.request_stop();
    // wg_.wait() ordered every fail() before us.
    if (error_) std::rethrow_exception(error_);
  }

  /// Caps how many functions run at once; negative: no limit. Throws std::logic_error if any
  /// function is still running (as errgroup.SetLimit panics), or after wait().
  void set_limit(std::ptrdiff_t limit) {
    check_open("goro::group::set_limit: set_limit after wait; a group is used once");
    if (wg_.count() != 0) {
      throw std::logic_error("goro::group::set_limit: limit changed while functions run");
    }
    slots_.reset();
    if (limit >= 0) slots_.emplace(limit);
  }

  /// The token every function may take; stopped as described above.
  std::stop_token get_stop_token() const noexcept { return stop_.get_token(); }

  /// Requests stop on the group's token, as a first exception does.
  void request_stop() noexcept { stop_.request_stop(); }

 private:
  struct stop_forwarder {
    std::stop_source* target;
    void operator()() const noexcept { target->request_stop(); }
  };

  void check_open(const char* what) const {
    if (waited_.load(std::memory_order_acquire)) throw std::logic_error(what);
  }

  template <class F>
  void launch(F&& f) {
    using fn_type = std::decay_t<F>;
    static_assert(std::is_invocable_v<fn_type&, std::stop_token> || std::is_invocable_v<fn_type&>,
                  "goro::group::go: f must be callable as f(std::stop_token) or f()");
    wg_.add(1);
    try {
      goro::go([this, fn = std::optional<fn_type>(std::forward<F>(f))]() mutable {
        try {
          if constexpr (std::is_invocable_v<fn_type&, std::stop_token>) {
            std::invoke(*fn, stop_.get_token());
          } else {
            std::invoke(*fn);
          }
        } catch (...) {
          fail(std::current_exception());
        }
        fn.reset();  // f's captures die before wait() can return
        finish();
      });
    } catch (...) {
      finish();
      throw;
    }
  }

  void fail(std::exception_ptr e) noexcept {
    {
      std::lock_guard guard(error_lock_);
      if (!error_) error_ = std::move(e);
    }
    stop_.request_stop();
  }

  // The last touch of the group by a function's fiber: after wg_.done() it may be gone.
  void finish() noexcept {
    if (slots_) slots_->release();
    wg_.done();
  }

  wait_group wg_;
  std::optional<counting_semaphore<>> slots_;  // free run slots; empty: no limit
  std::stop_source stop_;
  std::optional<std::stop_callback<stop_forwarder>> parent_stop_;  // after stop_: dies first
  detail::spinlock error_lock_;
  // Under error_lock_ until wg_.wait() returns, then read without it (a comment, not
  // GORO_GUARDED_BY, which cannot say "until").
  std::exception_ptr error_;
  // Set once wait() has returned. Release/acquire: whoever sees it set (a later go(), the
  // destructor) also sees everything wait() saw.
  std::atomic<bool> waited_{false};
};

}  // namespace goro
