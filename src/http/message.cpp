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

// The registered codes (IANA's HTTP status code registry, RFC 9110's names), as Go's
// StatusText has them; another code goes out with an empty reason, which RFC 9112 allows.
std::string_view reason_phrase(int status) noexcept {
  switch (status) {
    case 100: return "Continue";
    case 101: return "Switching Protocols";
    case 102: return "Processing";
    case 103: return "Early Hints";
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 203: return "Non-Authoritative Information";
    case 204: return "No Content";
    case 205: return "Reset Content";
    case 206: return "Partial Content";
    case 207: return "Multi-Status";
    case 208: return "Already Reported";
    case 226: return "IM Used";
    case 300: return "Multiple Choices";
    case 301: return "Moved Permanently";
    case 302: return "Found";
    case 303: return "See Other";
    case 304: return "Not Modified";
    case 305: return "Use Proxy";
    case 307: return "Temporary Redirect";
    case 308: return "Permanent Redirect";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 402: return "Payment Required";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 406: return "Not Acceptable";
    case 407: return "Proxy Authentication Required";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 410: return "Gone";
    case 411: return "Length Required";
    case 412: return "Precondition Failed";
    case 413: return "Content Too Large";
    case 414: return "URI Too Long";
    case 415: return "Unsupported Media Type";
    case 416: return "Range Not Satisfiable";
    case 417: return "Expectation Failed";
    case 418: return "I'm a teapot";
    case 421: return "Misdirected Request";
    case 422: return "Unprocessable Content";
    case 423: return "Locked";
    case 424: return "Failed Dependency";
    case 425: return "Too Early";
    case 426: return "Upgrade Required";
    case 428: return "Precondition Required";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 451: return "Unavailable For Legal Reasons";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    case 505: return "HTTP Version Not Supported";
    case 506: return "Variant Also Negotiates";
    case 507: return "Insufficient Storage";
    case 508: return "Loop Detected";
    case 510: return "Not Extended";
    case 511: return "Network Authentication Required";
    default: return "";
  }
}

}  // namespace goro::http
