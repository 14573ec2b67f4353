// SPDX-License-Identifier: Apache-2.0
// GORO_DCHECK: the runtime's checked invariants (Go's `throw`, marl's MARL_ASSERT). On in the
// dev, asan and tsan presets (CMake option GORO_DCHECKS), compiled out of release builds; a
// failed check prints "goro: fatal error: check failed: ..." through the one fatal path and
// aborts. Misuse of the public API is not a DCHECK: it throws, in every build (docs/errors.md).
#pragma once

namespace goro::detail {

// Reports a failed GORO_DCHECK through fatal() and aborts. Defined in every build, so objects
// compiled with and without checks link together.
[[noreturn]] void check_failed(const char* condition, const char* file, int line) noexcept;

}  // namespace goro::detail

#if defined(GORO_DCHECKS) && GORO_DCHECKS
#define GORO_DCHECK(condition)        \
  ((condition) ? static_cast<void>(0) \
               : ::goro::detail::check_failed(#condition, __FILE__, __LINE__))
#else
// Compiled out, but still type-checked, so a check cannot rot in release builds.
#define GORO_DCHECK(condition) static_cast<void>(sizeof(!(condition)))
#endif
