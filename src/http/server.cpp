// SPDX-License-Identifier: Apache-2.0
// Layer: http. May include: http, api, chan, sync, net, park, sched, stack, time, platform.
// The router and the server of <goro/http/server.hpp>: the accept loop, and the connection
// loop that reads, parses (parser.hpp), dispatches and answers requests one after another. The
// connection's phases, their deadlines and the shutdown protocol: docs/http.md, "The server".
//
// Invariants of a connection fiber:
// - buf_[begin, end) holds bytes read but not yet consumed by the parser; a pipelined request
//   waits there while the one before it is handled, so responses leave in request order.
// - The read deadline is always the current phase's: idle (waiting for a request's first
//   byte), header (from that byte), body (from that byte too); stop is honoured only while
//   idle, so a request that has begun is always read, handled and answered.
// - A connection is closed only after its last response was written and its write side shut
//   down, with the peer's further bytes drained for a moment (Go's closeWriteAndWait), so that
//   closing with unread data does not reset the connection and cut that response.
#include <sys/socket.h>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <ctime>
#include <exception>
#include <memory>
#include <span>
#include <stdexcept>
#include <stop_token>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

#include "goro/go.hpp"
#include "goro/http/server.hpp"
#include "goro/this_fiber.hpp"
#include "goro/wait_group.hpp"
#include "http/conn_buffer.hpp"
#include "http/field_names.hpp"
#include "http/parser.hpp"
#include "http/percent.hpp"
#include "http/wire.hpp"

namespace goro::http {

// ---- router

void router::handle(std::string_view method, std::string_view path, handler h) {
  auto& handlers = routes_[std::string(path)];
  for (auto& [m, existing] : handlers) {
    if (m == method) {
      existing = std::move(h);
      return;
    }
  }
  handlers.emplace_back(std::string(method), std::move(h));
}

// Paths are matched %-decoded, as Go's ServeMux matches URL.Path: "/o%6B" is "/ok". A malformed
// escape is a 400, as Go's server refuses the request's URL.
void router::dispatch(const request& req, response& res) const {
  std::string path;
  if (!detail::unescape(req.path(), path)) {
    res = response{400, {}, "invalid URL escape"};
    res.headers.set("Content-Type", "text/plain");
    return;
  }
  const auto it = routes_.find(path);
  if (it == routes_.end()) {
    res = response{404, {}, "not found"};
    res.headers.set("Content-Type", "text/plain");
    return;
  }
  const handler* get = nullptr;
  bool head = false;
  for (const auto& [m, h] : it->second) {
    if (m == req.method) {
      h(req, res);
      return;
    }
    if (m == "GET") get = &h;
    if (m == "HEAD") head = true;
  }
  if (req.method == "HEAD" && get != nullptr) {
    (*get)(req, res);
    return;
  }
  // A GET handler answers HEAD too, so HEAD is allowed with it; sorted, as Go's ServeMux lists
  // them.
  std::vector<std::string_view> methods;
  for (const auto& [m, h] : it->second) methods.push_back(m);
  if (get != nullptr && !head) methods.push_back("HEAD");
  std::sort(methods.begin(), methods.end());
  std::string allow;
  for (const std::string_view m : methods) {
    if (!allow.empty()) allow += ", ";
    allow += m;
  }
  res = response{405, {}, "method not allowed"};
  res.headers.set("Content-Type", "text/plain");
  res.headers.set("Allow", allow);
}

// ---- server

namespace {

using clock = std::chrono::steady_clock;

net::deadline_time after_or_never(std::chrono::milliseconds d, clock::time_point from) {
  return d.count() == 0 ? net::deadline_time::max() : from + d;
}

// How long after its accept a connection that has sent nothing may still send its first request
// once a stop is requested (Go's Shutdown: 5 s).
constexpr std::chrono::seconds new_connection_grace{5};

// Shuts the write side down and reads (and drops) what the peer still sends, for a moment, so
// that the close that follows finds no unread bytes and does not reset the connection before
// the peer has read the last response.
void close_gracefully(net::conn& c) noexcept {
  try {
    c.close_write();
    c.set_read_deadline(clock::now() + std::chrono::milliseconds(500));
    std::byte sink[4096];
    while (c.read(sink) != 0) {
    }
  } catch (const std::system_error&) {
    // the deadline, or the peer reset: the connection is done either way
  }
  c.close();
}

// The error status a parsed request must be answered with before any handler sees it, or 0:
// Go's server checks the same. An HTTP/1.1 request names its host once (RFC 9112, 3.2: 400
// otherwise; a CONNECT, whose target is the host, may leave it out), and one of 1.0 at most once;
// an expectation other than 100-continue cannot be met (RFC 9110, 10.1.1: 417).
int request_error(const detail::parsed_message& m) {
  int hosts = 0;
  for (const auto& [name, value] : m.headers) {
    if (detail::is_name(name, "host")) ++hosts;
    if (detail::is_name(name, "expect") && !detail::is_name(value, "100-continue")) return 417;
  }
  if (hosts > 1 || (hosts == 0 && !m.http10 && m.method != "CONNECT")) return 400;
  return 0;
}

void write_error(net::conn& c, int status, const server_options& opts) {
  response res{status, {}, std::string(reason_phrase(status))};
  res.headers.set("Content-Type", "text/plain");
  std::string out;
  detail::write_response(out, res, false, false);
  c.set_write_deadline(after_or_never(opts.write_timeout, clock::now()));
  c.write(out);
}

}  // namespace

server::server(router routes, server_options options)
    : routes_(std::make_shared<const router>(std::move(routes))), options_(options) {}

void server::serve(net::listener& ln, std::stop_token stop) {
  wait_group connections;
  std::exception_ptr failure;
  for (;;) {
    // Looked at before each accept: accept() takes a connection already waiting in the backlog
    // without looking at its token, so a steady stream of new connections kept the loop
    // accepting after the stop for as long as the backlog never ran dry
    // (ServeAcceptsNothingAfterTheStop). Go's Shutdown closes the listener first.
    if (stop.stop_requested()) break;
    net::conn c;
    try {
      c = ln.accept(stop);
    } catch (const std::system_error& e) {
      if (stop.stop_requested() || e.code() == std::errc::bad_file_descriptor) break;
      const std::error_code code = e.code();
      if (code == std::errc::too_many_files_open ||
          code == std::errc::too_many_files_open_in_system ||
          code == std::errc::connection_aborted || code == std::errc::no_buffer_space ||
          code == std::errc::not_enough_memory) {
        this_fiber::sleep_for(std::chrono::milliseconds(10), stop);  // Go's accept back-off
        continue;
      }
      failure = std::current_exception();
      break;
    }
    connections.add(1);
    try {
      goro::go(
          [this, &connections, stop](net::conn conn) {
            serve_conn(std::move(conn), stop);
            connections.done();
          },
          std::move(c));
    } catch (...) {
      // No fiber for it (out of memory for a stack): the running connections still hold
      // `connections`, so serve waits for them below before it rethrows.
      connections.done();
      failure = std::current_exception();
      break;
    }
  }
  ln.close();
  connections.wait();
  if (failure) std::rethrow_exception(failure);
}

void server::serve_conn(net::conn c, std::stop_token stop) const {
  const server_options& opts = options_;
  detail::message_parser parser(detail::message_parser::kind::request,
                                {opts.max_header_bytes, opts.max_body_bytes});
  detail::conn_buffer in;
  std::string out;
  std::string peer;
  const clock::time_point accepted = clock::now();
  bool first = true;
  try {
    peer = c.remote_address();
    for (;;) {
      // Idle: wait for the next request's first byte; a stop request ends the connection here.
      if (in.empty()) {
        const net::deadline_time idle_end = after_or_never(opts.idle_timeout, clock::now());
        c.set_read_deadline(idle_end);
        std::size_t n = 0;
        try {
          n = in.fill(c, &stop);
        } catch (const std::system_error& e) {
          // A new connection is not idle: its client dialled to send a request, which a stop
          // must not lose. Go's Shutdown gives it 5 s from its accept to send it (golang/go
          // issue 22682); closed at once, the request was lost with nothing to retry it on.
          if (!first || e.code() != std::errc::operation_canceled) throw;
          c.set_read_deadline(std::min(idle_end, accepted + new_connection_grace));
          n = in.fill(c, nullptr);
        }
        if (n == 0) break;
      }
      first = false;
      const clock::time_point start = clock::now();
      c.set_read_deadline(after_or_never(opts.read_header_timeout, start));
      bool header_done = false;
      bool continued = false;
      parser.reset();
      for (;;) {
        in.consume(parser.parse(in.pending()));
        if (parser.state() != detail::parse_state::need_more) break;
        if (parser.header_done() && !header_done) {
          header_done = true;
          c.set_read_deadline(after_or_never(opts.read_timeout, start));
          if (parser.message().expect_continue && !continued) {
            continued = true;
            c.set_write_deadline(after_or_never(opts.write_timeout, clock::now()));
            c.write(std::string_view("HTTP/1.1 100 Continue\r\n\r\n"));
          }
        }
        if (in.fill(c, nullptr) == 0) {
          parser.finish();  // the peer closed mid-request: nobody is left to answer
          c.close();
          return;
        }
      }
      if (parser.state() == detail::parse_state::failed) {
        write_error(c, parser.error_status(), opts);
        break;
      }

      detail::parsed_message& m = parser.message();
      if (const int status = request_error(m); status != 0) {
        write_error(c, status, opts);
        break;
      }
      request req{std::move(m.method), std::move(m.target), std::move(m.headers), std::move(m.body),
                  peer};
      response res;
      bool keep_alive = m.keep_alive;
      try {
        routes_->dispatch(req, res);
        // A status out of range is the handler's error, as Go's WriteHeader panics on one.
        if (res.status < 100 || res.status > 999) throw std::out_of_range("response status");
      } catch (...) {
        res = response{500, {}, "internal server error"};
        keep_alive = false;
      }
      // A handler that says "Connection: close" has the connection closed after its answer; so
      // does a 101, after which the peer would speak a protocol this server does not.
      for (const auto& [name, value] : res.headers) {
        if (detail::is_name(name, "connection") && detail::lists_token(value, "close")) {
          keep_alive = false;
        }
      }
      if (res.status == 101) keep_alive = false;
      // After a stop request, the request that was in flight is answered and the connection
      // closed: nothing newer is read from it.
      if (stop.stop_requested()) keep_alive = false;
      out.clear();
      detail::write_response(out, res, keep_alive, req.method == "HEAD", m.http10);
      c.set_write_deadline(after_or_never(opts.write_timeout, clock::now()));
      c.write(out);
      if (!keep_alive) break;
    }
  } catch (const std::system_error&) {
    // A timeout, a stop while idle, a reset: the connection ends without another answer.
    c.close();
    return;
  }
  close_gracefully(c);
}

}  // namespace goro::http
