// SPDX-License-Identifier: Apache-2.0
// Layer: platform. May include: platform.
// Which sanitizer this translation unit is built with, and their fiber-switch interfaces.
// Every stack switch in goro is announced to AddressSanitizer and ThreadSanitizer from
// src/platform/context.cpp; see docs/scheduler.md, "Sanitizers".
#pragma once

#if defined(__SANITIZE_ADDRESS__)
#define GORO_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define GORO_ASAN 1
#endif
#endif

#if defined(__SANITIZE_THREAD__)
#define GORO_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define GORO_TSAN 1
#endif
#endif

#ifdef GORO_ASAN
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#include <sanitizer/lsan_interface.h>
#endif

#ifdef GORO_TSAN
extern "C" {
void* __tsan_get_current_fiber();
void* __tsan_create_fiber(unsigned flags);
void __tsan_destroy_fiber(void* fiber);
void __tsan_switch_to_fiber(void* fiber, unsigned flags);
void __tsan_ignore_thread_begin();
void __tsan_ignore_thread_end();
}
#endif

namespace goro::detail {

#if defined(GORO_ASAN) || defined(GORO_TSAN)
inline constexpr bool sanitized = true;
#else
inline constexpr bool sanitized = false;
#endif

// For as long as it lives, ThreadSanitizer ignores the calling thread's memory accesses: for the
// diagnostics' reads of fibers that may run meanwhile (the dump stops nothing, and says its
// reads of a running fiber are only what it happened to see; docs/diagnostics.md).
class racy_reads_scope {
 public:
#ifdef GORO_TSAN
  racy_reads_scope() noexcept { __tsan_ignore_thread_begin(); }
  ~racy_reads_scope() { __tsan_ignore_thread_end(); }
#else
  racy_reads_scope() noexcept = default;
  ~racy_reads_scope() = default;
#endif
  racy_reads_scope(const racy_reads_scope&) = delete;
  racy_reads_scope& operator=(const racy_reads_scope&) = delete;
};

}  // namespace goro::detail
