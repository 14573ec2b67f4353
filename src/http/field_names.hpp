// SPDX-License-Identifier: Apache-2.0
// Layer: http. May include: http, api, chan, sync, net, park, sched, stack, time, platform.
// Matching field names and list-valued field values, case-insensitively (RFC 9110 5.1 and
// 5.6.1), for the server, the client, the wire and the parser adapters alike. Inline, so that
// an adapter built alone (bench/http_parse.cpp) needs nothing else.
#pragma once

#include <cstddef>
#include <string_view>

namespace goro::http::detail {

// Whether field name (or token) `a` is `lower`, a lowercase name, ignoring ASCII case.
inline bool is_name(std::string_view a, std::string_view lower) noexcept {
  if (a.size() != lower.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    char c = a[i];
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    if (c != lower[i]) return false;
  }
  return true;
}

// Whether a list-valued field's value ("keep-alive, Close") names `lower`, a lowercase token,
// ignoring ASCII case and the whitespace around items.
inline bool lists_token(std::string_view value, std::string_view lower) noexcept {
  while (!value.empty()) {
    const std::size_t comma = value.find(',');
    std::string_view item = value.substr(0, comma);
    while (!item.empty() && (item.front() == ' ' || item.front() == '\t')) item.remove_prefix(1);
    while (!item.empty() && (item.back() == ' ' || item.back() == '\t')) item.remove_suffix(1);
    if (is_name(item, lower)) return true;
    if (comma == std::string_view::npos) break;
    value.remove_prefix(comma + 1);
  }
  return false;
}

}  // namespace goro::http::detail
