// SPDX-License-Identifier: Apache-2.0
// Layer: http. May include: http, api, chan, sync, net, park, sched, stack, time, platform.
// The message types of <goro/http/message.hpp>: header fields (case-insensitive names), a
// request's path and query, and the reason phrases of the status codes goro::http sends.
#include <algorithm>
#include <cctype>
#include <optional>
#include <string>
#include <string_view>

#include "goro/http/message.hpp"

namespace goro::http {

namespace {

bool same_name(std::string_view a, std::string_view b) noexcept {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

}  // namespace

std::optional<std::string_view> header_fields::get(std::string_view name) const {
  for (const auto& [k, v] : fields_) {
    if (same_name(k, name)) return std::string_view(v);
  }
  return std::nullopt;
}

void header_fields::set(std::string_view name, std::string_view value) {
  erase(name);
  fields_.emplace_back(std::string(name), std::string(value));
}

void header_fields::erase(std::string_view name) {
  std::erase_if(fields_, [&](const field& f) { return same_name(f.first, name); });
}

std::string_view request::path() const noexcept {
  std::string_view t = target;
  // The absolute form ("http://host/ok?x", RFC 9112 3.2.2, which a server must accept): the
  // path follows the authority.
  if (!t.empty() && t.front() != '/') {
    if (const std::size_t scheme = t.find("://"); scheme != std::string_view::npos) {
      t.remove_prefix(scheme + 3);
      const std::size_t slash = t.find_first_of("/?");
      if (slash == std::string_view::npos || t[slash] == '?') return "/";
      t.remove_prefix(slash);
    }
  }
  return t.substr(0, t.find('?'));
}

std::optional<std::string_view> request::query(std::string_view key) const noexcept {
  const std::string_view t = target;
  const std::size_t q = t.find('?');
  if (q == std::string_view::npos) return std::nullopt;
  std::string_view rest = t.substr(q + 1);
  while (!rest.empty()) {
    const std::size_t amp = rest.find('&');
    const std::string_view pair = rest.substr(0, amp);
    const std::size_t eq = pair.find('=');
    if (pair.substr(0, eq) == key) {
      return eq == std::string_view::npos ? std::string_view() : pair.substr(eq + 1);
    }
    if (amp == std::string_view::npos) break;
    rest.remove_prefix(amp + 1);
  }
  return std::nullopt;
}

std::string_view reason_phrase(int status) noexcept {
  switch (status) {
    case 100: return "Continue";
    case 200: return "OK";
    case 201: return "Created";
    case 204: return "No Content";
    case 301: return "Moved Permanently";
    case 302: return "Found";
    case 304: return "Not Modified";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 413: return "Content Too Large";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    default: return "";
  }
}

}  // namespace goro::http
