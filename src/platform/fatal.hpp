// SPDX-License-Identifier: Apache-2.0
// Layer: platform. May include: platform.
// The one fatal path: every unrecoverable error in goro (a broken invariant, a fiber's stack
// overflow, an exception escaping a fiber, a misuse the program cannot survive) is reported by
// fatal(), in one format, and aborts. docs/errors.md lists the three tiers: expected outcomes
// are values, misuse throws, and what cannot go on comes here.
#pragma once

#include <cstddef>

namespace goro::detail {

// Prints "goro: fatal error: <message>" and, where the calling thread runs a fiber, the
// context the scheduler describes ("[fiber 12, worker 3]"), on one line to stderr with one
// write(2); then aborts. `format` is printf-style. Usable in a signal handler as long as the
// format holds only %s, %d, %u, %zu and the PRI macros of integers (vsnprintf of those does not
// allocate in glibc).
[[noreturn]] void fatal(const char* format, ...) noexcept __attribute__((format(printf, 1, 2)));

// As fatal(), for an error whose report spans lines (the deadlock report): prints
// "goro: fatal error: <message>\n", then report[0, n) as it is, then aborts. Not for signal
// handlers.
[[noreturn]] void fatal_with_report(const char* report, std::size_t n, const char* format,
                                    ...) noexcept __attribute__((format(printf, 3, 4)));

// Writes a description of the calling thread's position in the runtime ("fiber 12, worker 3")
// into out[0, size) and returns its length, 0 when there is nothing to say. Set once by the
// scheduler, which the platform layer must not include.
using fatal_context_fn = std::size_t (*)(char* out, std::size_t size) noexcept;
void set_fatal_context(fatal_context_fn describe) noexcept;

}  // namespace goro::detail
