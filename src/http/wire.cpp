// SPDX-License-Identifier: Apache-2.0
// Layer: http. May include: http, api, chan, sync, net, park, sched, stack, time, platform.
// wire.hpp: writing responses and requests, and the Date field's cached text.
#include "http/wire.hpp"

#include <charconv>
#include <cstddef>
#include <ctime>
#include <string>
#include <string_view>

#include "http/field_names.hpp"

namespace goro::http::detail {

namespace {

void append_number(std::string& out, std::size_t n) {
  char digits[24];
  const auto r = std::to_chars(digits, digits + sizeof digits, n);
  out.append(digits, r.ptr);
}

// A field whose name is not a token is dropped, and a CR or LF in a value becomes a space, so
// that no field can end the header section early or add fields or a message of its own
// (response splitting, request smuggling); Go's Header.Write does the same.
void append_field(std::string& out, std::string_view name, std::string_view value) {
  if (name.empty() || name.find_first_of(" \t\r\n:\0", 0, 6) != std::string_view::npos) return;
  out.append(name);
  out.append(": ");
  const std::size_t start = out.size();
  out.append(value);
  for (std::size_t i = start; i < out.size(); ++i) {
    if (out[i] == '\r' || out[i] == '\n') out[i] = ' ';
  }
  out.append("\r\n");
}

void append_status_line(std::string& out, int status) {
  out.append("HTTP/1.1 ");
  append_number(out, static_cast<std::size_t>(status));
  out.push_back(' ');
  out.append(reason_phrase(status));
  out.append("\r\n");
}

// The fields a response's framing rests on, which the server writes itself.
bool server_owned(std::string_view name) noexcept {
  return is_name(name, "content-length") || is_name(name, "connection") ||
         is_name(name, "transfer-encoding");
}

}  // namespace

std::string_view http_date() {
  // Per thread, and read and written without a switch in between, so a fiber that migrates
  // between two calls is harmless.
  thread_local std::time_t cached_second = 0;
  thread_local char text[32] = {};
  thread_local std::size_t length = 0;
  const std::time_t now = std::time(nullptr);
  if (now != cached_second) {
    std::tm tm{};
    gmtime_r(&now, &tm);
    length = std::strftime(text, sizeof text, "%a, %d %b %Y %H:%M:%S GMT", &tm);
    cached_second = now;
  }
  return {text, length};
}

void write_response(std::string& out, const response& res, bool keep_alive, bool head_only,
                    bool http10) {
  int status = res.status;
  // A 1xx from a handler other than 101 goes out as an informational response with the
  // handler's fields (not to an HTTP/1.0 client, RFC 9110 15.2), and what it gave then follows
  // as a 200, as Go's server sends a WriteHeader(1xx) and the body written after it. A 101 is
  // final and bodiless, as in Go (the server then closes: it speaks no other protocol).
  if (status >= 100 && status < 200 && status != 101) {
    if (!http10) {
      append_status_line(out, status);
      for (const auto& [name, value] : res.headers) {
        if (!server_owned(name)) append_field(out, name, value);
      }
      out.append("\r\n");
    }
    status = 200;
  }
  append_status_line(out, status);
  bool has_date = false;
  std::string_view declared_length;
  for (const auto& [name, value] : res.headers) {
    if (is_name(name, "content-length")) declared_length = value;
    if (server_owned(name)) continue;
    has_date = has_date || is_name(name, "date");
    append_field(out, name, value);
  }
  if (!has_date) append_field(out, "Date", http_date());
  const bool bodiless = status == 101 || status == 204 || status == 304;
  if (!bodiless) {
    out.append("Content-Length: ");
    // The answer to a HEAD request that gave no body may say how long the GET's would be, as
    // in Go; otherwise the body says it.
    const bool declared = head_only && res.body.empty() && !declared_length.empty() &&
                          declared_length.size() < 20 &&
                          declared_length.find_first_not_of("0123456789") == std::string_view::npos;
    if (declared) {
      out.append(declared_length);
    } else {
      append_number(out, res.body.size());
    }
    out.append("\r\n");
  }
  if (!keep_alive) {
    out.append("Connection: close\r\n");
  } else if (http10) {
    // An HTTP/1.0 client closes unless told otherwise (RFC 9112, appendix C.2.2), as Go's
    // server tells it.
    out.append("Connection: keep-alive\r\n");
  }
  out.append("\r\n");
  if (!head_only && !bodiless) out.append(res.body);
}

void write_request(std::string& out, const request& req, std::string_view host) {
  out.append(req.method);
  out.push_back(' ');
  out.append(req.target);
  out.append(" HTTP/1.1\r\n");
  append_field(out, "Host", host);
  bool chunked = false;
  for (const auto& [name, value] : req.headers) {
    if (is_name(name, "transfer-encoding")) {
      chunked = chunked || is_name(value, "chunked");
      continue;
    }
    if (is_name(name, "host") || is_name(name, "content-length")) continue;
    append_field(out, name, value);
  }
  if (chunked) {
    out.append("Transfer-Encoding: chunked\r\n");
  } else if (!req.body.empty() || req.method == "POST" || req.method == "PUT" ||
             req.method == "PATCH") {
    out.append("Content-Length: ");
    append_number(out, req.body.size());
    out.append("\r\n");
  }
  out.append("\r\n");
  if (!chunked) {
    out.append(req.body);
    return;
  }
  // One chunk for the whole body (a caller that asks for chunked has it all at hand), then
  // the last chunk.
  if (!req.body.empty()) {
    char digits[24];
    const auto r = std::to_chars(digits, digits + sizeof digits, req.body.size(), 16);
    out.append(digits, r.ptr);
    out.append("\r\n");
    out.append(req.body);
    out.append("\r\n");
  }
  out.append("0\r\n\r\n");
}

}  // namespace goro::http::detail
