// SPDX-License-Identifier: Apache-2.0
/// @file
/// goro::http's server: a router of handlers by method and path, and a server that runs one
/// fiber per connection on a goro::net::listener, with keep-alive, pipelining, limits,
/// timeouts and a graceful shutdown through a std::stop_token. docs/http.md has the design.
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <stop_token>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "goro/http/message.hpp"
#include "goro/net.hpp"

namespace goro::http {

/// A handler answers one request by filling `res`; it runs in its connection's fiber and may
/// use every goro call (channels, select, timers, the client, goro::go). A handler that
/// throws gets the client a 500 and its connection closed.
using handler = std::function<void(const request& req, response& res)>;

/// Handlers by method and exact path ("/json"). A request for a path with no handler gets 404;
/// for a path whose handlers are all for other methods, 405 with an Allow field (listing HEAD
/// beside GET). A HEAD request with no HEAD handler runs the GET handler and sends its headers
/// only.
class router {
 public:
  /// Registers `h` for `method` ("GET", "POST"...) on `path`, replacing an earlier one.
  void handle(std::string_view method, std::string_view path, handler h);
  void get(std::string_view path, handler h) { handle("GET", path, std::move(h)); }
  void post(std::string_view path, handler h) { handle("POST", path, std::move(h)); }
  /// Answers `req` into `res` with the handler registered for it, or 404 or 405.
  void dispatch(const request& req, response& res) const;

 private:
  std::unordered_map<std::string, std::vector<std::pair<std::string, handler>>> routes_;
};

/// The server's limits and timeouts. A zero duration means "none".
struct server_options {
  /// The request line and header fields together; over it: 431 and the connection closed.
  std::size_t max_header_bytes = 8 * 1024;
  /// A request body (by Content-Length or chunked); over it: 413 and the connection closed.
  std::size_t max_body_bytes = 1024 * 1024;
  /// From a request's first byte to the end of its header section; a client slower than this
  /// (a slow-loris client) has its connection closed.
  std::chrono::milliseconds read_header_timeout{std::chrono::seconds(10)};
  /// From a request's first byte to the end of its body.
  std::chrono::milliseconds read_timeout{std::chrono::seconds(30)};
  /// For writing one response.
  std::chrono::milliseconds write_timeout{std::chrono::seconds(30)};
  /// How long a keep-alive connection may wait for its next request.
  std::chrono::milliseconds idle_timeout{std::chrono::seconds(60)};
};

/// An HTTP/1.1 server. Requests on one connection are read, handled and answered one after
/// another, in order (pipelined requests included); connections run concurrently, one fiber
/// each.
class server {
 public:
  explicit server(router routes, server_options options = {});

  /// Accepts connections from `ln` and serves each in its own fiber until `stop` is requested,
  /// then shuts down gracefully: stops accepting (closes `ln`), lets every request already
  /// begun finish and be answered (with "Connection: close"), closes idle connections, and
  /// returns once every connection fiber has ended. Throws std::system_error if accepting
  /// fails for a reason other than a stop or a closed listener.
  ///
  /// Memory ordering: everything a handler did happens-before serve() returns.
  void serve(net::listener& ln, std::stop_token stop);

  /// Serves one accepted connection until the peer closes it, a timeout or a limit ends it, or
  /// `stop` is requested while it is idle. serve() runs this in a fiber per connection.
  void serve_conn(net::conn c, std::stop_token stop) const;

 private:
  std::shared_ptr<const router> routes_;
  server_options options_;
};

}  // namespace goro::http
