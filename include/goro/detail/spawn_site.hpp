// SPDX-License-Identifier: Apache-2.0
// Where go() was called: std::source_location, one pointer to what the compiler made for the
// call site, where the standard library has it. Clang 14 with libstdc++ 12 lacks the builtin
// libstdc++'s std::source_location needs; there, a struct of the same three accessors, filled
// in at the call site by the older builtins (three words instead of one). Includes nothing of
// goro's, so every layer may use it.
#pragma once

#include <version>

#if defined(__cpp_lib_source_location)
#include <source_location>
#endif

namespace goro::detail {

#if defined(__cpp_lib_source_location)

using spawn_site = std::source_location;

#else

struct spawn_site {
  static constexpr spawn_site current(const char* file = __builtin_FILE(),
                                      unsigned line = __builtin_LINE(),
                                      const char* function = __builtin_FUNCTION()) noexcept {
    spawn_site s;
    s.file_ = file;
    s.function_ = function;
    s.line_ = line;
    return s;
  }
  // Never null, as libstdc++'s std::source_location gives "" for an empty one: a dump may read
  // the site of a fiber record not yet written (zeroed memory), and streams it as a string
  // (under Clang, dumps racing fibers' creation crashed in strlen on a null name).
  constexpr const char* file_name() const noexcept { return file_ != nullptr ? file_ : ""; }
  constexpr const char* function_name() const noexcept {
    return function_ != nullptr ? function_ : "";
  }
  constexpr unsigned line() const noexcept { return line_; }

 private:
  const char* file_ = "";
  const char* function_ = "";
  unsigned line_ = 0;
};

#endif

}  // namespace goro::detail
