// SPDX-License-Identifier: Apache-2.0
// Layer: platform. May include: platform.
// thread_mutex: a std::mutex that Clang's thread-safety analysis knows as a lock (libstdc++'s
// is not annotated), for the runtime's locks that block the thread rather than park a fiber:
// the stack pool's and the timer heap's. Take it with detail::lock_guard
// (goro/detail/thread_safety.hpp), which the analysis follows.
#pragma once

#include <mutex>

#include "goro/detail/thread_safety.hpp"

namespace goro::detail {

class GORO_CAPABILITY("mutex") thread_mutex {
 public:
  void lock() GORO_ACQUIRE() { mu_.lock(); }
  void unlock() noexcept GORO_RELEASE() { mu_.unlock(); }

 private:
  std::mutex mu_;
};

}  // namespace goro::detail
