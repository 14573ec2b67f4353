// SPDX-License-Identifier: Apache-2.0
/// @file
/// goro::http's client: requests to "http://host:port/path" URLs with a per-request deadline
/// and std::stop_token, over a pool of keep-alive connections per host. Called in a fiber it
/// parks the fiber; called from a plain thread, it blocks the thread. docs/http.md has the
/// design.
#pragma once

#include <chrono>
#include <cstddef>
#include <memory>
#include <stop_token>
#include <string_view>

#include "goro/http/message.hpp"
#include "goro/net.hpp"

namespace goro::http {

/// The client's pool and limits. A zero duration means "none".
struct client_options {
  /// Idle keep-alive connections kept per host ("127.0.0.1:8080"); more are closed.
  std::size_t max_idle_per_host = 32;
  /// An idle connection older than this is closed instead of reused (and, as other
  /// connections come back to the pool, within a second of passing it).
  std::chrono::milliseconds idle_timeout{std::chrono::seconds(90)};
  std::size_t max_header_bytes = 64 * 1024;
  std::size_t max_body_bytes = 64 * 1024 * 1024;
};

/// An HTTP/1.1 client. Safe to use from many fibers and threads at once; each request has a
/// connection of its own for its length, taken from the pool or dialled.
class client {
 public:
  explicit client(client_options options = {});
  ~client();
  client(const client&) = delete;
  client& operator=(const client&) = delete;

  /// Sends `req` to `url` ("http://127.0.0.1:8080/json?x=1": its path and query replace
  /// req.target) and returns the response, whatever its status. Gives up at `deadline` with
  /// std::system_error(std::errc::timed_out), or on a stop request with
  /// std::errc::operation_canceled, in any phase: connecting, sending, waiting for the answer,
  /// reading it; a default-constructed deadline (Go's zero time), like max(), means none. Other
  /// failures (refused, reset, a malformed answer: std::errc::bad_message) are
  /// std::system_error too.
  ///
  /// Refused with std::invalid_argument before anything is sent: a URL that is not http://, has
  /// no host, a bad port, a control character anywhere (CR LF would end the request line) or a
  /// bad %-escape in its path; a method that is not a token ("" is GET); a Host field that is
  /// not a host. A space, a quote or a non-ASCII byte in the path or query goes %-encoded, the
  /// URL's fragment (after "#") is not sent, and a URL's "user:password@" goes as Basic
  /// authorization unless req.headers has an Authorization field; a password in a URL reads
  /// "xxxxx" in every error message (Go's URL.Redacted). The scheme matches in any case.
  ///
  /// On the wire: one Host field, req.headers' (as Go's Request.Host) or else the URL's; the
  /// body framed by its own length, whatever Content-Length or Transfer-Encoding req.headers
  /// holds (they are dropped; "Transfer-Encoding: chunked" asks for the body chunk-encoded). A
  /// "Connection: close" is sent and the connection closed after the answer. A 101 Switching
  /// Protocols is returned as the answer, and its connection closed.
  ///
  /// A replayable request (GET, HEAD, OPTIONS, TRACE, or one with an Idempotency-Key or
  /// X-Idempotency-Key field) that finds its pooled connection closed by the server before any
  /// answer is sent once more on a new connection; any other request then fails, as the server
  /// may have acted on it. An idle connection on which bytes or an end of stream arrived is
  /// closed, never used.
  response send(std::string_view url, request req,
                net::deadline_time deadline = net::deadline_time::max(), std::stop_token stop = {});
  /// send() of a GET.
  response get(std::string_view url, net::deadline_time deadline = net::deadline_time::max(),
               std::stop_token stop = {});
  /// Closes every idle pooled connection.
  void close_idle();

 private:
  struct pool;
  std::unique_ptr<pool> pool_;
  client_options options_;
};

}  // namespace goro::http
