// SPDX-License-Identifier: Apache-2.0
// Layer: platform. May include: platform.
// fatal() and check_failed(); see fatal.hpp.
#include "platform/fatal.hpp"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>

#include "goro/detail/check.hpp"

namespace goro::detail {
namespace {

std::atomic<fatal_context_fn> context_fn{nullptr};

void write_all(const char* s, std::size_t n) noexcept {
  while (n > 0) {
    const ssize_t k = ::write(STDERR_FILENO, s, n);
    if (k <= 0) return;
    s += k;
    n -= static_cast<std::size_t>(k);
  }
}

// Appends vsnprintf's output to buf[n, size), truncating; returns the new length.
std::size_t append(char* buf, std::size_t n, std::size_t size, const char* format,
                   std::va_list args) noexcept {
  if (n + 1 >= size) return n;
  const int k = std::vsnprintf(buf + n, size - n, format, args);
  if (k < 0) return n;
  return std::min(n + static_cast<std::size_t>(k), size - 1);
}

std::size_t append(char* buf, std::size_t n, std::size_t size, const char* format, ...) noexcept
    __attribute__((format(printf, 4, 5)));
std::size_t append(char* buf, std::size_t n, std::size_t size, const char* format, ...) noexcept {
  std::va_list args;
  va_start(args, format);
  n = append(buf, n, size, format, args);
  va_end(args);
  return n;
}

}  // namespace

void set_fatal_context(fatal_context_fn describe) noexcept {
  context_fn.store(describe, std::memory_order_release);
}

void fatal(const char* format, ...) noexcept {
  char buf[1024];
  constexpr std::size_t reserve = 80;  // room kept for the context and the newline
  std::size_t n = append(buf, 0, sizeof buf - reserve, "goro: fatal error: ");
  std::va_list args;
  va_start(args, format);
  n = append(buf, n, sizeof buf - reserve, format, args);
  va_end(args);
  if (const fatal_context_fn describe = context_fn.load(std::memory_order_acquire)) {
    char where[reserve - 8];
    if (const std::size_t k = describe(where, sizeof where); k > 0) {
      n = append(buf, n, sizeof buf, " [%.*s]", static_cast<int>(k), where);
    }
  }
  buf[n++] = '\n';
  write_all(buf, n);
  std::abort();
}

void fatal_with_report(const char* report, std::size_t n, const char* format, ...) noexcept {
  char buf[1024];
  std::size_t k = append(buf, 0, sizeof buf - 1, "goro: fatal error: ");
  std::va_list args;
  va_start(args, format);
  k = append(buf, k, sizeof buf - 1, format, args);
  va_end(args);
  buf[k++] = '\n';
  write_all(buf, k);
  write_all(report, n);
  std::abort();
}

void check_failed(const char* condition, const char* file, int line) noexcept {
  fatal("check failed: %s (%s:%d)", condition, file, line);
}

}  // namespace goro::detail
