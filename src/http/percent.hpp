// SPDX-License-Identifier: Apache-2.0
// Layer: http. May include: http, api, chan, sync, net, park, sched, stack, time, platform.
// Percent-encoding (RFC 3986 2.1): reading escapes, for the client's URL and the router's path.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace goro::http::detail {

// The value of hex digit `c`, or -1 if it is not one.
inline int hex_value(char c) noexcept {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Whether s[i], a '%', starts a well-formed escape: two hex digits follow.
inline bool escape_at(std::string_view s, std::size_t i) noexcept {
  return i + 2 < s.size() && hex_value(s[i + 1]) >= 0 && hex_value(s[i + 2]) >= 0;
}

// `s` with every escape decoded into `out`; false, `out` unspecified, if one is malformed (Go's
// url.PathUnescape refuses it too).
inline bool unescape(std::string_view s, std::string& out) {
  out.clear();
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '%') {
      out.push_back(s[i]);
      continue;
    }
    if (!escape_at(s, i)) return false;
    out.push_back(static_cast<char>(hex_value(s[i + 1]) * 16 + hex_value(s[i + 2])));
    i += 2;
  }
  return true;
}

}  // namespace goro::http::detail
