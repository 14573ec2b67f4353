// SPDX-License-Identifier: Apache-2.0
// Layer: http. May include: http, api, chan, sync, net, park, sched, stack, time, platform.
// The client of <goro/http/client.hpp>: URL parsing, the pool of idle keep-alive connections
// per host, and one request's phases (connect, send, wait, read) under its deadline and stop
// token. docs/http.md, "The client".
//
// Invariants: a connection is in the pool only when idle (its last response was read whole,
// nothing else was sent on it, it had no deadline left set) and the pool holds at most
// max_idle_per_host per host. A request holds its connection alone from take to put.
#include <chrono>
#include <cstddef>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <stop_token>
#include <string>
#include <string_view>
#include <system_error>
#include <unordered_map>
#include <utility>
#include <vector>

#include "goro/http/client.hpp"
#include "goro/mutex.hpp"
#include "http/conn_buffer.hpp"
#include "http/parser.hpp"
#include "http/wire.hpp"

namespace goro::http {

namespace {

using clock = std::chrono::steady_clock;

struct target_url {
  std::string host;  // as the Host field gives it: "127.0.0.1:8080" or "example.com"
  std::string dial;  // with the port: "example.com:80"
  std::string target;
};

target_url parse_url(std::string_view url) {
  constexpr std::string_view scheme = "http://";
  if (url.substr(0, scheme.size()) != scheme) {
    throw std::invalid_argument("goro::http::client: not an http:// URL: " + std::string(url));
  }
  url.remove_prefix(scheme.size());
  const std::size_t end = url.find_first_of("/?");
  target_url t;
  t.host = std::string(url.substr(0, end));
  if (t.host.empty()) {
    throw std::invalid_argument("goro::http::client: no host in URL");
  }
  const std::size_t colon = t.host.rfind(':');
  const bool has_port = colon != std::string::npos && t.host.find(']', colon) == std::string::npos;
  t.dial = t.host;
  if (!has_port) {
    t.dial.append(":80");
  } else if (colon + 1 == t.host.size() ||
             t.host.find_first_not_of("0123456789", colon + 1) != std::string::npos) {
    throw std::invalid_argument("goro::http::client: bad port in URL: " + std::string(url));
  }
  const std::string_view rest = end == std::string_view::npos ? "" : url.substr(end);
  if (rest.empty() || rest.front() == '?') t.target.push_back('/');
  t.target.append(rest);
  return t;
}

[[noreturn]] void throw_bad_message(const char* what) {
  throw std::system_error(std::make_error_code(std::errc::bad_message),
                          std::string("goro::http::client: ") + what);
}

// A pooled connection that the server closed while it was idle fails its next request with
// one of these before any byte of an answer; such a request is sent again on a new connection.
bool stale_connection(const std::error_code& code) {
  return code == std::errc::connection_reset || code == std::errc::broken_pipe ||
         code == std::errc::connection_aborted;
}

}  // namespace

struct client::pool {
  struct idle_conn {
    net::conn c;
    clock::time_point since;
  };
  goro::mutex mu;
  std::unordered_map<std::string, std::vector<idle_conn>> idle;  // guarded by mu

  std::optional<net::conn> take(const std::string& host, std::chrono::milliseconds max_idle) {
    std::lock_guard lock(mu);
    const auto it = idle.find(host);
    if (it == idle.end()) return std::nullopt;
    const clock::time_point now = clock::now();
    while (!it->second.empty()) {
      idle_conn ic = std::move(it->second.back());
      it->second.pop_back();
      if (max_idle.count() == 0 || now - ic.since < max_idle) return std::move(ic.c);
    }
    return std::nullopt;
  }

  void put(const std::string& host, net::conn c, std::size_t max_per_host) {
    std::lock_guard lock(mu);
    auto& conns = idle[host];
    if (conns.size() < max_per_host) conns.push_back({std::move(c), clock::now()});
  }
};

client::client(client_options options) : pool_(std::make_unique<pool>()), options_(options) {}
client::~client() = default;

void client::close_idle() {
  std::lock_guard lock(pool_->mu);
  pool_->idle.clear();
}

response client::get(std::string_view url, net::deadline_time deadline, std::stop_token stop) {
  return send(url, request{}, deadline, std::move(stop));
}

response client::send(std::string_view url, request req, net::deadline_time deadline,
                      std::stop_token stop) {
  // A stop requested, or a deadline passed, before the call fails it at once, as Go's
  // transport looks at its context first: each phase below tries its system call before it
  // waits, and on loopback all of them can complete without waiting, so never looking.
  if (stop.stop_requested()) {
    throw std::system_error(std::make_error_code(std::errc::operation_canceled),
                            "goro::http::client: stop requested");
  }
  if (deadline != net::deadline_time::max() && net::deadline_time::clock::now() >= deadline) {
    throw std::system_error(std::make_error_code(std::errc::timed_out),
                            "goro::http::client: deadline exceeded");
  }
  const target_url t = parse_url(url);
  req.target = t.target;
  std::string out;
  detail::write_request(out, req, t.host);
  const bool head = req.method == "HEAD";
  detail::message_parser parser(detail::message_parser::kind::response,
                                {options_.max_header_bytes, options_.max_body_bytes});
  for (int attempt = 0;; ++attempt) {
    std::optional<net::conn> pooled =
        attempt == 0 ? pool_->take(t.dial, options_.idle_timeout) : std::nullopt;
    const bool reused = pooled.has_value();
    // Connect: a new connection gives up at the deadline or on a stop request.
    net::conn c = reused ? std::move(*pooled) : net::dial_limited("tcp", t.dial, deadline, stop);
    c.set_deadline(deadline);
    detail::conn_buffer in;
    parser.reset(head);
    try {
      // Send; then wait for the answer's first byte and read the rest.
      c.write(std::as_bytes(std::span(out.data(), out.size())), stop);
      for (;;) {
        in.consume(parser.parse(in.pending()));
        if (parser.state() == detail::parse_state::done && parser.message().status / 100 == 1) {
          parser.reset(head);  // an interim answer (100 Continue): the real one follows
          continue;
        }
        if (parser.state() != detail::parse_state::need_more) break;
        if (in.fill(c, &stop) == 0) {
          if (!parser.started() && reused && attempt == 0) break;  // stale: retried below
          if (parser.finish() != detail::parse_state::done) {
            throw_bad_message("the connection closed before the response ended");
          }
          break;
        }
      }
    } catch (const std::system_error& e) {
      if (reused && attempt == 0 && !parser.started() && stale_connection(e.code())) continue;
      throw;
    }
    if (parser.state() == detail::parse_state::need_more) continue;  // the stale case
    if (parser.state() == detail::parse_state::failed) throw_bad_message("malformed response");
    detail::parsed_message& m = parser.message();
    response res{m.status, std::move(m.headers), std::move(m.body)};
    if (m.keep_alive && in.empty() && c.is_open()) {
      c.set_deadline(net::deadline_time::max());
      pool_->put(t.dial, std::move(c), options_.max_idle_per_host);
    }
    return res;
  }
}

}  // namespace goro::http
