// SPDX-License-Identifier: Apache-2.0
// Layer: http. May include: http, api, chan, sync, net, park, sched, stack, time, platform.
// The client of <goro/http/client.hpp>: URL parsing, the pool of idle keep-alive connections
// per host, and one request's phases (connect, send, wait, read) under its deadline and stop
// token. docs/http.md, "The client".
//
// Invariants: a connection is in the pool only when idle (its last response was read whole,
// nothing else was sent on it, it had no deadline left set) and the pool holds at most
// max_idle_per_host per host. A request holds its connection alone from take to put.
#include <sys/socket.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstddef>
#include <iterator>
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
#include "http/field_names.hpp"
#include "http/parser.hpp"
#include "http/percent.hpp"
#include "http/wire.hpp"

namespace goro::http {

namespace {

using clock = std::chrono::steady_clock;

struct target_url {
  std::string host;  // as the Host field gives it: "127.0.0.1:8080" or "example.com"
  std::string dial;  // with the port: "example.com:80"
  std::string target;
  std::string authorization;  // "Basic ..." from the URL's user:password, or ""
};

[[noreturn]] void throw_bad_url(std::string_view what) {
  throw std::invalid_argument("goro::http::client: " + std::string(what));
}

bool is_alnum(char c) noexcept {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

// Whether `s` is non-empty and made only of letters, digits and the bytes of `others`.
bool made_of(std::string_view s, std::string_view others) noexcept {
  return !s.empty() && std::ranges::all_of(s, [others](char c) {
    return is_alnum(c) || others.find(c) != std::string_view::npos;
  });
}

// RFC 9110 5.6.2: a method is a token.
bool is_token(std::string_view s) noexcept { return made_of(s, "!#$%&'*+-.^_`|~"); }

// A host as a Host field may carry it: a name, an IPv4 address or a bracketed IPv6 one, and
// a port (RFC 3986's reg-name characters, as Go's httpguts.ValidHostHeader).
bool is_host(std::string_view s) noexcept { return made_of(s, "-._~%!$&'()*+,;=:[]"); }

// Appends `s` to `out` with every byte that RFC 3986 does not allow unescaped in a path
// (`query`: in a query) percent-encoded: a space, a quote, a non-ASCII byte. An escape already
// there is kept; a path's malformed one is refused, as Go's url.Parse refuses it.
void append_escaped(std::string& out, std::string_view s, bool query) {
  constexpr std::string_view kept = "-._~!$&'()*+,;=:@/";
  constexpr char hex[] = "0123456789ABCDEF";
  for (std::size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    if (c == '%') {
      if (!query && !detail::escape_at(s, i)) {
        throw_bad_url("invalid escape in the URL's path");
      }
      out.push_back(c);
    } else if (is_alnum(c) || kept.find(c) != std::string_view::npos || (query && c == '?')) {
      out.push_back(c);
    } else {
      const auto b = static_cast<unsigned char>(c);
      out.push_back('%');
      out.push_back(hex[b >> 4]);
      out.push_back(hex[b & 0xf]);
    }
  }
}

// The URL's userinfo part ("user" or "user:password") percent-decoded.
std::string unescape_userinfo(std::string_view s) {
  std::string out;
  if (!detail::unescape(s, out)) throw_bad_url("invalid escape in the URL's userinfo");
  return out;
}

std::string base64(std::string_view s) {
  constexpr char digits[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  std::size_t i = 0;
  for (; i + 3 <= s.size(); i += 3) {
    const unsigned n = static_cast<unsigned char>(s[i]) << 16 |
                       static_cast<unsigned char>(s[i + 1]) << 8 |
                       static_cast<unsigned char>(s[i + 2]);
    for (int shift = 18; shift >= 0; shift -= 6) out.push_back(digits[(n >> shift) & 63]);
  }
  if (i + 1 == s.size()) {
    const unsigned n = static_cast<unsigned char>(s[i]) << 16;
    out.push_back(digits[(n >> 18) & 63]);
    out.push_back(digits[(n >> 12) & 63]);
    out.append("==");
  } else if (i + 2 == s.size()) {
    const unsigned n = static_cast<unsigned char>(s[i]) << 16 | static_cast<unsigned char>(s[i + 1])
                                                                    << 8;
    out.push_back(digits[(n >> 18) & 63]);
    out.push_back(digits[(n >> 12) & 63]);
    out.push_back(digits[(n >> 6) & 63]);
    out.push_back('=');
  }
  return out;
}

// `url` for an error message, with a password in it replaced by "xxxxx", as Go's
// URL.Redacted gives it: messages end up in logs.
std::string redacted(std::string_view url) {
  const std::size_t start = url.find("://") == std::string_view::npos ? 0 : url.find("://") + 3;
  const std::size_t end = url.find_first_of("/?#", start);
  const std::string_view authority = url.substr(start, end - start);
  const std::size_t at = authority.rfind('@');
  const std::size_t colon = authority.substr(0, at).find(':');
  if (at == std::string_view::npos || colon == std::string_view::npos) return std::string(url);
  std::string out(url.substr(0, start + colon + 1));
  out.append("xxxxx");
  out.append(url.substr(start + at));
  return out;
}

// "http://[user[:password]@]host[:port][/path][?query][#fragment]". A control character
// anywhere is refused before anything else (it could end the request line: Go's "invalid
// control character in URL"); the fragment is not sent; the path and query are escaped where
// they hold what a request line cannot; user and password become Basic authorization, as
// Go's transport sends them.
target_url parse_url(std::string_view url) {
  for (const char c : url) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
      throw_bad_url("invalid control character in URL");
    }
  }
  constexpr std::string_view scheme = "http://";
  if (!detail::is_name(url.substr(0, scheme.size()), scheme)) {  // the scheme in any case
    throw_bad_url("not an http:// URL: " + redacted(url));
  }
  url.remove_prefix(scheme.size());
  url = url.substr(0, url.find('#'));
  const std::size_t end = url.find_first_of("/?");
  std::string_view authority = url.substr(0, end);
  target_url t;
  if (const std::size_t at = authority.rfind('@'); at != std::string_view::npos) {
    const std::string_view userinfo = authority.substr(0, at);
    const std::size_t colon = userinfo.find(':');
    std::string credentials = unescape_userinfo(userinfo.substr(0, colon));
    credentials.push_back(':');
    if (colon != std::string_view::npos) {
      credentials.append(unescape_userinfo(userinfo.substr(colon + 1)));
    }
    t.authorization = "Basic " + base64(credentials);
    authority.remove_prefix(at + 1);
  }
  t.host = std::string(authority);
  if (t.host.empty()) throw_bad_url("no host in URL");
  if (!is_host(t.host)) throw_bad_url("bad host in URL: " + t.host);
  const std::size_t colon = t.host.rfind(':');
  const bool has_port = colon != std::string::npos && t.host.find(']', colon) == std::string::npos;
  if (has_port && colon + 1 == t.host.size()) t.host.pop_back();  // "host:" means port 80, as Go
  t.dial = t.host;
  if (!has_port || colon + 1 > t.host.size()) {
    t.dial.append(":80");
  } else if (t.host.find_first_not_of("0123456789", colon + 1) != std::string::npos ||
             t.host.size() - colon - 1 > 5 || std::stoul(t.host.substr(colon + 1)) > 65535) {
    throw_bad_url("bad port in URL: " + redacted(url));
  }
  const std::string_view rest = end == std::string_view::npos ? "" : url.substr(end);
  const std::size_t question = rest.find('?');
  const std::string_view path = rest.substr(0, question);
  if (path.empty()) t.target.push_back('/');
  append_escaped(t.target, path, false);
  if (question != std::string_view::npos) {
    t.target.push_back('?');
    append_escaped(t.target, rest.substr(question + 1), true);
  }
  return t;
}

// Whether `req` may be sent again after its connection failed having perhaps delivered it:
// Go's Request.isReplayable. The body is a string, so it can always be sent again.
bool replayable(const request& req) {
  return req.method == "GET" || req.method == "HEAD" || req.method == "OPTIONS" ||
         req.method == "TRACE" || req.headers.contains("Idempotency-Key") ||
         req.headers.contains("X-Idempotency-Key");
}

[[noreturn]] void throw_bad_message(const char* what) {
  throw std::system_error(std::make_error_code(std::errc::bad_message),
                          std::string("goro::http::client: ") + what);
}

// A pooled connection that the server closed while it was idle fails its next request with
// one of these before any byte of an answer; a replayable request is then sent again on a new
// connection.
bool stale_connection(const std::error_code& code) {
  return code == std::errc::connection_reset || code == std::errc::broken_pipe ||
         code == std::errc::connection_aborted;
}

// Whether an idle connection can carry a request: nothing has arrived on it since its last
// answer was read whole. Bytes there were never asked for (a server's 408 before it closes
// the connection, say) and would pass for the next answer; an end of stream or an error
// means the server closed it. A peek that does not wait, as Go's transport checks in its
// read loop; the poller is not involved, and the bytes stay for no one to read.
bool quiet(const net::conn& c) {
  std::byte b;
  for (;;) {
    if (::recv(c.native_handle(), &b, 1, MSG_PEEK | MSG_DONTWAIT) >= 0) return false;
    if (errno != EINTR) return errno == EAGAIN || errno == EWOULDBLOCK;
  }
}

}  // namespace

struct client::pool {
  struct idle_conn {
    net::conn c;
    clock::time_point since;
  };
  goro::mutex mu;
  std::unordered_map<std::string, std::vector<idle_conn>> idle;  // guarded by mu

  // The most recently used idle connection to `host` that is younger than `max_idle` and
  // quiet(); those it passes over are closed.
  std::optional<net::conn> take(const std::string& host, std::chrono::milliseconds max_idle) {
    for (;;) {
      idle_conn ic;
      {
        std::lock_guard lock(mu);
        const auto it = idle.find(host);
        if (it == idle.end() || it->second.empty()) return std::nullopt;
        ic = std::move(it->second.back());
        it->second.pop_back();
      }
      if (max_idle.count() != 0 && clock::now() - ic.since >= max_idle) continue;
      if (quiet(ic.c)) return std::move(ic.c);
    }
  }

  void put(const std::string& host, net::conn c, std::size_t max_per_host,
           std::chrono::milliseconds max_idle) {
    std::vector<idle_conn> dropped;  // closed once unlocked
    std::lock_guard lock(mu);
    auto& conns = idle[host];
    if (conns.size() < max_per_host) conns.push_back({std::move(c), clock::now()});
    sweep(max_idle, dropped);
  }

  // At most once a second, and only as connections come back: takes out the idle connections
  // past `max_idle` or no longer quiet() (the server closed them: they sat in CLOSE_WAIT), and
  // forgets the hosts left with none. Without it both stayed until the next request to that
  // host, and a client that called many hosts (webhooks) kept an entry for every one it ever
  // called. Go's transport closes such connections at once, from a read loop per connection;
  // a sweep here costs one recv(MSG_PEEK) per idle connection a second.
  void sweep(std::chrono::milliseconds max_idle, std::vector<idle_conn>& dropped) {
    const clock::time_point now = clock::now();
    if (now < next_sweep) return;
    next_sweep = now + std::chrono::seconds(1);
    for (auto it = idle.begin(); it != idle.end();) {
      std::vector<idle_conn> kept;
      for (idle_conn& ic : it->second) {
        const bool usable = (max_idle.count() == 0 || now - ic.since < max_idle) && quiet(ic.c);
        (usable ? kept : dropped).push_back(std::move(ic));
      }
      it->second = std::move(kept);
      it = it->second.empty() ? idle.erase(it) : std::next(it);
    }
  }

  clock::time_point next_sweep{};  // guarded by mu
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
  if (deadline == net::deadline_time{}) deadline = net::deadline_time::max();  // Go's zero time
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
  if (req.method.empty()) req.method = "GET";
  if (!is_token(req.method)) throw_bad_url("invalid method");
  req.target = t.target;
  // The caller's Host field stands for Go's Request.Host: the one Host sent, if valid.
  std::string host = t.host;
  if (const std::optional<std::string_view> h = req.headers.get("Host")) {
    if (!is_host(*h)) throw_bad_url("invalid Host field");
    host = std::string(*h);
  }
  if (!t.authorization.empty() && !req.headers.contains("Authorization")) {
    req.headers.set("Authorization", t.authorization);
  }
  std::string out;
  detail::write_request(out, req, host);
  const bool head = req.method == "HEAD";
  const bool may_replay = replayable(req);
  bool close_after = false;
  for (const auto& [name, value] : req.headers) {
    if (detail::is_name(name, "connection") && detail::lists_token(value, "close")) {
      close_after = true;
    }
  }
  detail::message_parser parser(detail::message_parser::kind::response,
                                {options_.max_header_bytes, options_.max_body_bytes});
  for (int attempt = 0;; ++attempt) {
    std::optional<net::conn> pooled =
        attempt == 0 ? pool_->take(t.dial, options_.idle_timeout) : std::nullopt;
    // A stale pooled connection (closed by the server after take() looked at it) may have
    // taken the request before it closed: only a replayable request goes again, once, on a
    // new connection.
    const bool retry_if_stale = pooled.has_value() && may_replay;
    // Connect: a new connection gives up at the deadline or on a stop request.
    net::conn c = pooled ? std::move(*pooled) : net::dial_limited("tcp", t.dial, deadline, stop);
    c.set_deadline(deadline);
    detail::conn_buffer in;
    parser.reset(head);
    bool answered = false;  // a byte of an answer came, an interim one included
    try {
      // Send; then wait for the answer's first byte and read the rest.
      c.write(std::as_bytes(std::span(out.data(), out.size())), stop);
      for (;;) {
        in.consume(parser.parse(in.pending()));
        if (parser.state() == detail::parse_state::done && parser.message().status / 100 == 1 &&
            parser.message().status != 101) {
          parser.reset(head);  // an interim answer (100 Continue): the real one follows
          continue;
        }
        if (parser.state() != detail::parse_state::need_more) break;
        if (in.fill(c, &stop) == 0) {
          if (!answered && retry_if_stale) break;  // retried below
          if (!answered) throw_bad_message("the connection closed before any answer");
          if (parser.finish() != detail::parse_state::done) {
            throw_bad_message("the connection closed before the response ended");
          }
          break;
        }
        answered = true;
      }
    } catch (const std::system_error& e) {
      if (retry_if_stale && !answered && stale_connection(e.code())) continue;
      throw;
    }
    if (parser.state() == detail::parse_state::need_more) continue;  // the stale case
    if (parser.state() == detail::parse_state::failed) throw_bad_message("malformed response");
    detail::parsed_message& m = parser.message();
    response res{m.status, std::move(m.headers), std::move(m.body)};
    // After a 101 the connection speaks another protocol, which this client does not.
    if (m.keep_alive && !close_after && res.status != 101 && in.empty() && c.is_open()) {
      c.set_deadline(net::deadline_time::max());
      pool_->put(t.dial, std::move(c), options_.max_idle_per_host, options_.idle_timeout);
    }
    return res;
  }
}

}  // namespace goro::http
