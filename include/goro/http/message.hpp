// SPDX-License-Identifier: Apache-2.0
/// @file
/// goro::http's messages: header fields, a request and a response, as the server hands them to
/// handlers and the client sends and returns them. Plain values: a message owns its bytes. The
/// component's design: docs/http.md.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace goro::http {

/// A message's header fields, in the order received or added. Names compare case-insensitively
/// (RFC 9110, 5.1); a name may repeat. Small: a linear search, as headers are few.
class header_fields {
 public:
  using field = std::pair<std::string, std::string>;

  /// The value of the first field named `name`, or nullopt.
  std::optional<std::string_view> get(std::string_view name) const;
  bool contains(std::string_view name) const { return get(name).has_value(); }
  /// Replaces every field named `name` by one with `value`.
  void set(std::string_view name, std::string_view value);
  /// Appends a field, keeping those already named `name`.
  void add(std::string name, std::string value) {
    fields_.emplace_back(std::move(name), std::move(value));
  }
  /// Removes every field named `name`.
  void erase(std::string_view name);
  void clear() noexcept { fields_.clear(); }

  std::size_t size() const noexcept { return fields_.size(); }
  bool empty() const noexcept { return fields_.empty(); }
  std::vector<field>::const_iterator begin() const noexcept { return fields_.begin(); }
  std::vector<field>::const_iterator end() const noexcept { return fields_.end(); }

 private:
  std::vector<field> fields_;
};

/// An HTTP request. The server fills every member; a client caller sets method, target (or
/// passes a URL), headers and body, and the client writes the framing itself: Host (the URL's,
/// or a valid Host field of the caller's), and Content-Length or chunked coding from the body,
/// whatever headers says (docs/http.md, "The client").
struct request {
  std::string method = "GET";
  /// The request target as sent: "/fanout?n=3&timeout_ms=100".
  std::string target = "/";
  header_fields headers;
  /// The whole body, de-chunked.
  std::string body;
  /// On the server: the client's address ("127.0.0.1:51234"). The client ignores it.
  std::string remote_address;

  /// The target without its query: "/fanout" (of an absolute-form target,
  /// "http://host/fanout?n=3", the path after the authority), as sent: %-escapes are kept (the
  /// router matches the path decoded, as Go's ServeMux matches URL.Path).
  std::string_view path() const noexcept;
  /// The value of query parameter `key` ("n" in "?n=3"), percent-decoding not applied; nullopt
  /// when absent.
  std::optional<std::string_view> query(std::string_view key) const noexcept;
};

/// An HTTP response. A handler sets status, headers (Content-Type, say) and body; the server
/// adds Content-Length, Date and Connection.
struct response {
  int status = 200;
  header_fields headers;
  std::string body;
};

/// The reason phrase of `status` ("Not Found"), or "" for a code it does not know.
std::string_view reason_phrase(int status) noexcept;

}  // namespace goro::http
