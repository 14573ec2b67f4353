// SPDX-License-Identifier: Apache-2.0
// An adversarial look at goro::http (docs/http.md) and the diagnostics API (docs/diagnostics.md:
// metrics, trace, dump, stack_high_water), through the public headers only: inputs a careless or
// hostile peer sends (conflicting framing, limits to the byte, HTTP/1.0, absolute-form targets,
// pipelining with an error in the middle, half requests, disconnects under a blocked handler),
// the client's phases against misbehaving servers, the pool against a server that closes idle
// connections, and the diagnostics called where a user would call them (plain threads, no
// runtime, twice, concurrently). Loopback only; every wait is bounded by a deadline.
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <chrono>
#include <cstddef>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <optional>
#include <set>
#include <sstream>
#include <stdexcept>
#include <stop_token>
#include <string>
#include <string_view>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

#include "goro/diag.hpp"
#include "goro/goro.hpp"
#include "goro/http.hpp"
#include "goro/metrics.hpp"
#include "goro/trace.hpp"
#include "http_test_support.hpp"
#include "test_support.hpp"

#if defined(GORO_TEST_HAVE_JSON)
#include <nlohmann/json.hpp>
#endif

namespace {

using namespace std::chrono_literals;
using clock_type = std::chrono::steady_clock;
namespace http = goro::http;

using goro_test::open_descriptors;
using goro_test::raw_server;
using goro_test::read_request_head;
using goro_test::status_line;
using goro_test::test_server;
using HttpAdversarial = goro_test::http_test;

// A server on a loopback port whose accept loop is the test's own (server::serve_conn per
// connection), so that the connections it accepted can be counted.
class counting_server : public goro_test::loopback_server {
 public:
  explicit counting_server(http::router routes, http::server_options opts = {})
      : srv_(std::make_shared<http::server>(std::move(routes), opts)) {
    done_.add(1);
    goro::go([this] {
      const std::stop_token stop = stop_.get_token();
      for (;;) {
        goro::net::conn c;
        try {
          c = ln_.accept(stop);
        } catch (const std::system_error&) {
          break;
        }
        accepted_.fetch_add(1);
        done_.add(1);
        auto shared = std::make_shared<goro::net::conn>(std::move(c));
        goro::go([this, shared, stop] {
          srv_->serve_conn(std::move(*shared), stop);
          done_.done();
        });
      }
      ln_.close();
      done_.done();
    });
  }
  ~counting_server() { stop(); }  // the fibers use srv_ and accepted_

  int accepted() const { return accepted_.load(); }

 private:
  std::shared_ptr<http::server> srv_;
  std::atomic<int> accepted_{0};
};

// basic_routes() and: /target answers its target and the path and the query values a, b and c
// (in X- fields); PUT /echo as POST; /big 100000 bytes.
http::router routes() {
  http::router r = goro_test::basic_routes();
  r.get("/target", [](const http::request& req, http::response& res) {
    res.body = req.target;
    res.headers.set("X-Path", req.path());
    res.headers.set("X-A", req.query("a").value_or("<none>"));
    res.headers.set("X-B", req.query("b").value_or("<none>"));
    res.headers.set("X-C", req.query("c").value_or("<none>"));
  });
  r.handle("PUT", "/echo",
           [](const http::request& req, http::response& res) { res.body = req.body; });
  r.get("/big",
        [](const http::request&, http::response& res) { res.body = std::string(100000, 'b'); });
  return r;
}

std::string_view as_view(const std::string& s) { return s; }

// Everything the peer sends until it closes (or resets) the connection. Unlike
// goro_test::read_all, a reset ends the answer, and a deadline that passes first shows in it.
std::string read_all(goro::net::conn& c) {
  std::string got;
  try {
    goro_test::read_all(c, got);
  } catch (const std::system_error& e) {
    if (e.code() == std::errc::connection_reset) return got;
    if (e.code() == std::errc::timed_out) return got + "\n<the connection was not closed>";
    throw;
  }
  return got;
}

goro::net::conn dial(const std::string& address) {
  goro::net::conn c = goro::net::dial("tcp", address);
  c.set_deadline(clock_type::now() + 5s);
  return c;
}

// Writes raw bytes and returns the whole answer until the server closes.
std::string round_trip(const std::string& address, std::string_view raw) {
  goro::net::conn c = dial(address);
  c.write(raw);
  return read_all(c);
}

std::string lower(std::string s) {
  for (char& ch : s) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  return s;
}

// One response read from `c` with `pending` holding bytes already read: status line and fields,
// then a Content-Length body. Returns the raw response; leaves what follows in `pending`.
struct raw_response {
  int status = 0;
  std::string head;  // lower-cased header section
  std::string body;
};

std::optional<raw_response> read_response(goro::net::conn& c, std::string& pending,
                                          bool head_request = false) {
  char buf[4096];
  std::size_t end;
  while ((end = pending.find("\r\n\r\n")) == std::string::npos) {
    const std::size_t n = c.read(std::as_writable_bytes(std::span(buf)));
    if (n == 0) return std::nullopt;
    pending.append(buf, n);
  }
  raw_response r;
  r.head = lower(pending.substr(0, end + 4));
  pending.erase(0, end + 4);
  r.status = std::stoi(r.head.substr(9, 3));
  std::size_t length = 0;
  if (const std::size_t cl = r.head.find("\r\ncontent-length:"); cl != std::string::npos)
    length = std::stoul(r.head.substr(cl + 17));
  if (head_request) length = 0;
  while (pending.size() < length) {
    const std::size_t n = c.read(std::as_writable_bytes(std::span(buf)));
    if (n == 0) return std::nullopt;
    pending.append(buf, n);
  }
  r.body = pending.substr(0, length);
  pending.erase(0, length);
  return r;
}

std::size_t count_of(const std::string& hay, std::string_view needle) {
  std::size_t n = 0;
  for (std::size_t at = hay.find(needle); at != std::string::npos;
       at = hay.find(needle, at + needle.size()))
    ++n;
  return n;
}

// ---------------------------------------------------------------------------------------------
// The server against hostile framing.

// RFC 9112 6.1: a request with both Transfer-Encoding and Content-Length is a smuggling
// vector; the server may reject it (400) or let Transfer-Encoding win, and then MUST close the
// connection after answering. Whatever it does, it must never take Content-Length's framing
// (echoing "5\r\n") nor answer the bytes that follow as a second request.
TEST_F(HttpAdversarial, ContentLengthAndTransferEncodingNeverSmuggle) {
  run([] {
    counting_server s(routes());
    const std::string answer = round_trip(s.address(),
                                          "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n"
                                          "Transfer-Encoding: chunked\r\n\r\n"
                                          "5\r\nhello\r\n0\r\n\r\n"
                                          "GET /ok HTTP/1.1\r\nHost: x\r\n\r\n");
    const std::string first = status_line(answer);
    EXPECT_TRUE(first == "HTTP/1.1 400 Bad Request" || first == "HTTP/1.1 200 OK") << answer;
    EXPECT_EQ(answer.find("\r\n\r\n5\r\n"), std::string::npos) << "Content-Length framing won";
    EXPECT_EQ(count_of(answer, "HTTP/1.1 "), 1u) << "the trailing request was answered:\n"
                                                 << answer;
  });
}

// RFC 9112 6.3 (5): differing Content-Length values are an unrecoverable error: 400.
TEST_F(HttpAdversarial, ConflictingContentLengthsAre400) {
  run([] {
    counting_server s(routes());
    const std::string answer = round_trip(
        s.address(),
        "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!");
    EXPECT_EQ(status_line(answer), "HTTP/1.1 400 Bad Request") << answer;
    const std::string list = round_trip(
        s.address(), "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5, 6\r\n\r\nhello!");
    EXPECT_EQ(status_line(list), "HTTP/1.1 400 Bad Request") << list;
  });
}

TEST_F(HttpAdversarial, NegativeAndHugeContentLength) {
  run([] {
    counting_server s(routes());
    EXPECT_EQ(status_line(round_trip(
                  s.address(), "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n")),
              "HTTP/1.1 400 Bad Request");
    EXPECT_EQ(status_line(round_trip(s.address(),
                                     "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: +5\r\n\r\n"
                                     "hello")),
              "HTTP/1.1 400 Bad Request");
    // Over 2^64: either malformed or over the body limit; never accepted, never a crash.
    const std::string huge =
        status_line(round_trip(s.address(),
                               "POST /echo HTTP/1.1\r\nHost: x\r\n"
                               "Content-Length: 99999999999999999999999999\r\n\r\nabc"));
    EXPECT_TRUE(huge == "HTTP/1.1 400 Bad Request" || huge == "HTTP/1.1 413 Content Too Large")
        << huge;
    // 2^64 - 1 exactly, which a careless "+ bytes" overflows.
    const std::string max =
        status_line(round_trip(s.address(),
                               "POST /echo HTTP/1.1\r\nHost: x\r\n"
                               "Content-Length: 18446744073709551615\r\n\r\nabc"));
    EXPECT_TRUE(max == "HTTP/1.1 400 Bad Request" || max == "HTTP/1.1 413 Content Too Large")
        << max;
    EXPECT_EQ(http::client().get(s.url("/ok")).body, "ok");
  });
}

TEST_F(HttpAdversarial, InvalidChunkSizesAre400) {
  run([] {
    counting_server s(routes());
    for (const char* chunk :
         {"zz\r\nhello\r\n0\r\n\r\n", "-5\r\nhello\r\n0\r\n\r\n",
          "ffffffffffffffffff\r\nhello\r\n0\r\n\r\n", "5\r\nhelloXX0\r\n\r\n"}) {
      const std::string answer =
          round_trip(s.address(), std::string("POST /echo HTTP/1.1\r\nHost: x\r\n"
                                              "Transfer-Encoding: chunked\r\n\r\n") +
                                      chunk);
      const std::string line = status_line(answer);
      EXPECT_TRUE(line == "HTTP/1.1 400 Bad Request" || line == "HTTP/1.1 413 Content Too Large")
          << "chunk " << chunk << " answered " << answer;
    }
  });
}

// Chunk extensions and trailers are legal HTTP/1.1 (RFC 9112 7.1.1, 7.1.2): accepted and
// ignored.
TEST_F(HttpAdversarial, ChunkExtensionsAndTrailersAccepted) {
  run([] {
    counting_server s(routes());
    const std::string answer =
        round_trip(s.address(),
                   "POST /echo HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                   "Transfer-Encoding: chunked\r\n\r\n"
                   "5;name=value\r\nhello\r\n1;x\r\n!\r\n0\r\nX-Trailer: yes\r\n\r\n");
    EXPECT_EQ(status_line(answer), "HTTP/1.1 200 OK") << answer;
    EXPECT_NE(answer.find("\r\n\r\nhello!"), std::string::npos) << answer;
  });
}

// After the header section, Beast takes a chunk's size line (with its extensions) and the
// trailer section only whole, so an endless one stayed unconsumed in the connection's buffer,
// which grew with every byte the client sent (256 MiB for 200 MiB of chunk extension) until the
// read timeout: a client could exhaust the server's memory. Each is held to max_header_bytes
// now: 400, and the connection closed.
TEST_F(HttpAdversarial, EndlessChunkLineOrTrailerIs400) {
  run([] {
    http::server_options opts;
    opts.max_header_bytes = 1024;
    counting_server s(routes(), opts);
    const std::string head = "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n";
    for (const std::string& start :
         {head + "5;name=", head + "5\r\nhello\r\n0\r\nX-Trailer: ", head + "000000"}) {
      goro::net::conn c = dial(s.address());
      c.write(as_view(start));
      const std::string filler(64 * 1024, start.back() == '0' ? '0' : 'v');
      std::string answer;
      try {
        for (int i = 0; i < 4; ++i) c.write(as_view(filler));  // 256 KiB, 256 times the limit
      } catch (const std::system_error&) {
        // refused and closed while we wrote: the answer is still to be read
      }
      c.set_read_deadline(clock_type::now() + 2s);
      EXPECT_EQ(status_line(read_all(c)), "HTTP/1.1 400 Bad Request") << start;
    }
    // Extensions and trailers under the limit are still taken.
    const std::string answer = round_trip(
        s.address(),
        "POST /echo HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
        "Transfer-Encoding: chunked\r\n\r\n5;a=" +
            std::string(500, 'v') + "\r\nhello\r\n0\r\nX-T: " + std::string(500, 't') + "\r\n\r\n");
    EXPECT_EQ(status_line(answer), "HTTP/1.1 200 OK") << answer;
    EXPECT_NE(answer.find("\r\n\r\nhello"), std::string::npos) << answer;
  });
}

// max_header_bytes: "the request line and fields together". A header section of exactly the
// limit (blank line included) fits under any reading; one whose request line and fields alone
// are one byte over it does not.
TEST_F(HttpAdversarial, HeaderLimitToTheByte) {
  run([] {
    http::server_options opts;
    opts.max_header_bytes = 1024;
    counting_server s(routes(), opts);
    const std::string prefix = "GET /ok HTTP/1.1\r\nHost: x\r\nConnection: close\r\nX-Pad: ";
    const std::string at = prefix + std::string(1024 - prefix.size() - 4, 'p') + "\r\n\r\n";
    ASSERT_EQ(at.size(), 1024u);
    EXPECT_EQ(status_line(round_trip(s.address(), at)), "HTTP/1.1 200 OK");
    const std::string over = prefix + std::string(1024 - prefix.size() - 2 + 1, 'p') + "\r\n\r\n";
    ASSERT_EQ(over.size() - 2, 1025u);
    EXPECT_EQ(status_line(round_trip(s.address(), over)),
              "HTTP/1.1 431 Request Header Fields Too Large");
    // The request line counts: a long target and fields, each under the limit alone, are over
    // it together.
    const std::string line = "GET /ok?" + std::string(900, 'q') + " HTTP/1.1\r\n";
    const std::string fields = "Host: x\r\nConnection: close\r\nX-Pad: " + std::string(900, 'p');
    EXPECT_EQ(status_line(round_trip(s.address(), line + fields + "\r\n\r\n")),
              "HTTP/1.1 431 Request Header Fields Too Large")
        << (line.size() + fields.size() + 4) << " bytes of header";
    // The same over-limit header sent in two segments.
    {
      goro::net::conn c = dial(s.address());
      c.write(std::string_view(over).substr(0, 500));
      goro::this_fiber::sleep_for(20ms);
      c.write(std::string_view(over).substr(500));
      EXPECT_EQ(status_line(read_all(c)), "HTTP/1.1 431 Request Header Fields Too Large");
    }
    // Many small fields add up the same way.
    std::string many = "GET /ok HTTP/1.1\r\nHost: x\r\n";
    while (many.size() < 1100) many += "A: b\r\n";
    EXPECT_EQ(status_line(round_trip(s.address(), many + "\r\n")),
              "HTTP/1.1 431 Request Header Fields Too Large");
  });
}

TEST_F(HttpAdversarial, BodyLimitToTheByte) {
  run([] {
    http::server_options opts;
    opts.max_body_bytes = 1000;
    counting_server s(routes(), opts);
    const std::string exact(1000, 'e');
    std::string answer = round_trip(s.address(),
                                    "POST /echo HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                                    "Content-Length: 1000\r\n\r\n" +
                                        exact);
    EXPECT_EQ(status_line(answer), "HTTP/1.1 200 OK");
    EXPECT_NE(answer.find("\r\n\r\n" + exact), std::string::npos);
    answer = round_trip(s.address(),
                        "POST /echo HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                        "Transfer-Encoding: chunked\r\n\r\n1f4\r\n" +
                            std::string(500, 'e') + "\r\n1f4\r\n" + std::string(500, 'e') +
                            "\r\n0\r\n\r\n");
    EXPECT_EQ(status_line(answer), "HTTP/1.1 200 OK");
    EXPECT_NE(answer.find("\r\n\r\n" + exact), std::string::npos);
    // One over, with the body sent (the server refuses; the client's unread bytes must not
    // turn the answer into a reset).
    answer =
        round_trip(s.address(), "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 1001\r\n\r\n" +
                                    std::string(1001, 'e'));
    EXPECT_EQ(status_line(answer), "HTTP/1.1 413 Content Too Large");
    answer = round_trip(s.address(),
                        "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                        "1f4\r\n" +
                            std::string(500, 'e') + "\r\n1f5\r\n" + std::string(501, 'e') +
                            "\r\n0\r\n\r\n");
    EXPECT_EQ(status_line(answer), "HTTP/1.1 413 Content Too Large");
    // Many one-byte chunks: the chunk framing does not count as body.
    std::string tiny;
    for (int i = 0; i < 1000; ++i) tiny += "1\r\nz\r\n";
    answer = round_trip(s.address(),
                        "POST /echo HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                        "Transfer-Encoding: chunked\r\n\r\n" +
                            tiny + "0\r\n\r\n");
    EXPECT_EQ(status_line(answer), "HTTP/1.1 200 OK");
    EXPECT_NE(answer.find("\r\n\r\n" + std::string(1000, 'z')), std::string::npos);
  });
}

TEST_F(HttpAdversarial, Http10WithoutKeepAliveIsClosed) {
  run([] {
    counting_server s(routes());
    goro::net::conn c = dial(s.address());
    c.write(as_view("GET /ok HTTP/1.0\r\n\r\n"));
    const std::string answer = read_all(c);  // returns only if the server closes
    EXPECT_NE(answer.find(" 200 OK\r\n"), std::string::npos) << answer;
    EXPECT_NE(answer.find("\r\n\r\nok"), std::string::npos) << answer;
    EXPECT_EQ(lower(answer).find("transfer-encoding: chunked"), std::string::npos)
        << "an HTTP/1.0 client cannot read chunked";
  });
}

// Go's server (and RFC 9112 9.3) keeps an HTTP/1.0 connection that asked for keep-alive open,
// and says so with "Connection: keep-alive" (a 1.0 client closes otherwise).
// Fixed: the server kept the connection open but never said "Connection: keep-alive", so a 1.0
// client took each answer as the last (parsed_message now carries http10, and write_response
// says keep-alive to such a request).
TEST_F(HttpAdversarial, Http10KeepAliveHonoured) {
  run([] {
    counting_server s(routes());
    goro::net::conn c = dial(s.address());
    std::string pending;
    for (int i = 0; i < 3; ++i) {
      c.write(as_view("GET /ok HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"));
      const auto r = read_response(c, pending);
      ASSERT_TRUE(r) << "request " << i << ": the server closed the connection";
      EXPECT_EQ(r->status, 200);
      EXPECT_EQ(r->body, "ok");
      EXPECT_NE(r->head.find("\r\nconnection: keep-alive\r\n"), std::string::npos) << r->head;
    }
    EXPECT_EQ(s.accepted(), 1);
  });
}

TEST_F(HttpAdversarial, ConnectionCloseHonoured) {
  run([] {
    counting_server s(routes());
    goro::net::conn c = dial(s.address());
    c.write(as_view("GET /ok HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"));
    const std::string answer = read_all(c);
    EXPECT_EQ(status_line(answer), "HTTP/1.1 200 OK");
    EXPECT_NE(lower(answer).find("\r\nconnection: close\r\n"), std::string::npos) << answer;
    EXPECT_EQ(count_of(answer, "HTTP/1.1 "), 1u);
    // "Connection: keep-alive, close" (a list) and a different case mean close too.
    goro::net::conn d = dial(s.address());
    d.write(as_view("GET /ok HTTP/1.1\r\nHost: x\r\nconnection: Keep-Alive, CLOSE\r\n\r\n"));
    EXPECT_EQ(status_line(read_all(d)), "HTTP/1.1 200 OK");
  });
}

// HEAD: no body, but the Content-Length the GET would have; the next pipelined response
// follows the header section at once.
TEST_F(HttpAdversarial, HeadHasGetsLengthAndNoBody) {
  run([] {
    counting_server s(routes());
    goro::net::conn c = dial(s.address());
    c.write(
        as_view("HEAD /big HTTP/1.1\r\nHost: x\r\n\r\n"
                "GET /ok HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"));
    const std::string answer = read_all(c);
    std::string pending = answer;
    const std::size_t end = pending.find("\r\n\r\n");
    ASSERT_NE(end, std::string::npos) << answer;
    const std::string head = lower(pending.substr(0, end + 4));
    EXPECT_EQ(status_line(answer), "HTTP/1.1 200 OK");
    EXPECT_NE(head.find("\r\ncontent-length: 100000\r\n"), std::string::npos) << head;
    EXPECT_EQ(answer.compare(end + 4, 9, "HTTP/1.1 "), 0)
        << "bytes after the HEAD answer's header section: " << answer.substr(end + 4, 40);
    EXPECT_EQ(answer.size() - answer.rfind("\r\n\r\nok"), 6u);
  });
}

TEST_F(HttpAdversarial, NotFoundVersusMethodNotAllowed) {
  run([] {
    counting_server s(routes());
    goro::net::conn c = dial(s.address());
    std::string pending;
    c.write(as_view("DELETE /echo HTTP/1.1\r\nHost: x\r\n\r\n"));
    auto r = read_response(c, pending);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 405);
    const std::size_t allow = r->head.find("\r\nallow: ");
    ASSERT_NE(allow, std::string::npos) << r->head;
    const std::string value =
        r->head.substr(allow + 9, r->head.find("\r\n", allow + 2) - allow - 9);
    EXPECT_NE(value.find("post"), std::string::npos) << value;
    EXPECT_NE(value.find("put"), std::string::npos) << value;
    // 405 keeps the connection; so does 404, and a path differing only in case is another
    // path.
    c.write(as_view("GET /OK HTTP/1.1\r\nHost: x\r\n\r\n"));
    r = read_response(c, pending);
    ASSERT_TRUE(r) << "404 closed the connection";
    EXPECT_EQ(r->status, 404);
    c.write(as_view("GET /ok/ HTTP/1.1\r\nHost: x\r\n\r\n"));
    r = read_response(c, pending);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 404);
    c.write(as_view("GET /ok HTTP/1.1\r\nHost: x\r\n\r\n"));
    r = read_response(c, pending);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 200);
    EXPECT_EQ(s.accepted(), 1);
  });
}

// RFC 9112 3.2.2: "a server MUST accept the absolute-form in requests"; Go routes
// "GET http://host/ok" to the handler of "/ok".
TEST_F(HttpAdversarial, AbsoluteFormTargetRouted) {
  run([] {
    counting_server s(routes());
    const std::string answer =
        round_trip(s.address(),
                   "GET http://example.com/ok HTTP/1.1\r\nHost: example.com\r\n"
                   "Connection: close\r\n\r\n");
    EXPECT_EQ(status_line(answer), "HTTP/1.1 200 OK") << answer;
  });
}

TEST_F(HttpAdversarial, QueryStringsReachTheHandler) {
  run([] {
    counting_server s(routes());
    http::client cl;
    http::response r = cl.get(s.url("/target?a=1&b=&c"));
    EXPECT_EQ(r.status, 200);
    EXPECT_EQ(r.body, "/target?a=1&b=&c");
    EXPECT_EQ(r.headers.get("X-Path"), "/target");
    EXPECT_EQ(r.headers.get("X-A"), "1");
    EXPECT_EQ(r.headers.get("X-B"), "");
    // "ab=2" must not match key "b", nor "xa=3" key "a".
    r = cl.get(s.url("/target?ab=2&xa=3"));
    EXPECT_EQ(r.headers.get("X-A"), "<none>");
    EXPECT_EQ(r.headers.get("X-B"), "<none>");
    r = cl.get(s.url("/target?"));
    EXPECT_EQ(r.status, 200);
    EXPECT_EQ(r.headers.get("X-Path"), "/target");
    cl.close_idle();
  });
}

TEST_F(HttpAdversarial, ThrowingHandlerGets500CloseAndServerGoesOn) {
  run([] {
    counting_server s(routes());
    for (int i = 0; i < 3; ++i) {
      goro::net::conn c = dial(s.address());
      // A request pipelined after the one that throws is not answered: the connection closes.
      c.write(as_view("GET /throw HTTP/1.1\r\nHost: x\r\n\r\nGET /ok HTTP/1.1\r\nHost: x\r\n\r\n"));
      const std::string answer = read_all(c);
      EXPECT_EQ(status_line(answer), "HTTP/1.1 500 Internal Server Error") << answer;
      EXPECT_EQ(count_of(answer, "HTTP/1.1 "), 1u) << answer;
    }
    EXPECT_EQ(http::client().get(s.url("/ok")).body, "ok");
  });
}

// A handler that throws something that is not a std::exception.
TEST_F(HttpAdversarial, HandlerThrowingNonStdExceptionGets500) {
  run([] {
    http::router r = routes();
    r.get("/int", [](const http::request&, http::response&) -> void { throw 42; });
    counting_server s(std::move(r));
    EXPECT_EQ(status_line(round_trip(s.address(), "GET /int HTTP/1.1\r\nHost: x\r\n\r\n")),
              "HTTP/1.1 500 Internal Server Error");
    EXPECT_EQ(http::client().get(s.url("/ok")).body, "ok");
  });
}

// The client goes away while its handler is blocked on a channel; once released, the handler's
// large answer meets a closed socket (EPIPE / reset, never SIGPIPE), and the server goes on.
TEST_F(HttpAdversarial, ClientDisconnectsWhileHandlerBlocked) {
  run([] {
    goro::chan<int> entered(1);
    goro::chan<int> release(0);
    std::atomic<bool> handler_returned{false};
    http::router r = routes();
    r.get("/block", [&](const http::request&, http::response& res) {
      entered.send(1);
      release.recv();
      res.body = std::string(4 << 20, 'x');
      handler_returned = true;
    });
    counting_server s(std::move(r));
    {
      goro::net::conn c = dial(s.address());
      c.write(as_view("GET /block HTTP/1.1\r\nHost: x\r\n\r\n"));
      ASSERT_TRUE(entered.recv());
    }  // closed
    goro::this_fiber::sleep_for(50ms);
    release.send(1);
    for (int i = 0; i < 100 && !handler_returned; ++i) goro::this_fiber::sleep_for(10ms);
    EXPECT_TRUE(handler_returned.load());
    EXPECT_EQ(http::client().get(s.url("/ok")).body, "ok");
  });
}

// Thousands of short connections, each a request and a close: no descriptor is left behind
// (the fixture counts /proc/self/fd) and every one is answered.
TEST_F(HttpAdversarial, ThousandsOfShortConnections) {
  const int connections = goro_test::sanitized ? 400 : 2000;
  run([connections] {
    counting_server s(routes());
    goro::wait_group wg;
    std::atomic<int> ok{0};
    constexpr int kFibers = 8;
    for (int f = 0; f < kFibers; ++f) {
      wg.add(1);
      goro::go([&, f] {
        for (int i = f; i < connections; i += kFibers) {
          goro::net::conn c = dial(s.address());
          if (i % 3 == 0) {  // some close right after sending, not reading
            c.write(as_view("GET /ok HTTP/1.1\r\nHost: x\r\n\r\n"));
            ok.fetch_add(1);
            continue;
          }
          c.write(as_view("GET /ok HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"));
          if (status_line(read_all(c)) == "HTTP/1.1 200 OK") ok.fetch_add(1);
        }
        wg.done();
      });
    }
    wg.wait();
    EXPECT_EQ(ok.load(), connections);
    s.stop();
    EXPECT_EQ(s.accepted(), connections);
  });
}

TEST_F(HttpAdversarial, PipelinedWithMalformedInTheMiddle) {
  run([] {
    counting_server s(routes());
    const std::string answer = round_trip(s.address(),
                                          "GET /target?first HTTP/1.1\r\nHost: x\r\n\r\n"
                                          "GET /ok HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n"
                                          "GET /target?third HTTP/1.1\r\nHost: x\r\n\r\n");
    EXPECT_EQ(status_line(answer), "HTTP/1.1 200 OK") << answer;
    EXPECT_NE(answer.find("/target?first"), std::string::npos) << answer;
    EXPECT_NE(answer.find("HTTP/1.1 400 Bad Request"), std::string::npos) << answer;
    EXPECT_EQ(answer.find("/target?third"), std::string::npos)
        << "a request after a malformed one was answered:\n"
        << answer;
  });
}

// Half a request (in the header, then in the body), then the client closes: no handler runs,
// nothing hangs, the server goes on.
TEST_F(HttpAdversarial, HalfRequestThenClose) {
  run([] {
    std::atomic<int> calls{0};
    http::router r = routes();
    r.post("/count", [&](const http::request&, http::response&) { calls.fetch_add(1); });
    counting_server s(std::move(r));
    for (const char* half :
         {"POST /count HTTP/1.1\r\nHost:",
          "POST /count HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n12345",
          "POST /count HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab"}) {
      goro::net::conn c = dial(s.address());
      c.write(std::string_view(half));
      c.close_write();
      const std::string answer = read_all(c);  // the server must close (maybe with a 400)
      EXPECT_TRUE(answer.empty() || status_line(answer) == "HTTP/1.1 400 Bad Request") << answer;
    }
    EXPECT_EQ(calls.load(), 0);
    EXPECT_EQ(http::client().get(s.url("/ok")).body, "ok");
  });
}

// Graceful shutdown while new connections keep arriving and one keep-alive connection idles:
// serve() returns promptly, the idle connection sees the end of stream, every connection that
// got an answer got it whole.
TEST_F(HttpAdversarial, ShutdownRacesNewConnectionsAndIdleKeepAlive) {
  run(
      [] {
        auto s = std::make_unique<test_server>(routes());
        goro::net::conn idle = dial(s->address());
        std::string pending;
        idle.write(as_view("GET /ok HTTP/1.1\r\nHost: x\r\n\r\n"));
        ASSERT_TRUE(read_response(idle, pending));
        std::atomic<bool> stop_dialing{false};
        std::atomic<int> answered{0}, cut{0};
        goro::wait_group wg;
        for (int f = 0; f < 4; ++f) {
          wg.add(1);
          goro::go([&] {
            while (!stop_dialing) {
              goro::net::conn c;
              try {
                c = dial(s->address());
                c.write(as_view("GET /big HTTP/1.1\r\nHost: x\r\n\r\n"));
                std::string p;
                const auto r = read_response(c, p);
                if (r && r->status == 200 && r->body.size() == 100000)
                  answered.fetch_add(1);
                else if (r)
                  cut.fetch_add(1);
              } catch (const std::system_error&) {
                // refused or reset after the listener closed: fine
              }
            }
            wg.done();
          });
        }
        goro::this_fiber::sleep_for(30ms);
        const auto t0 = clock_type::now();
        s->stop();
        const auto took = clock_type::now() - t0;
        EXPECT_LT(took, 2s) << "serve() did not return promptly";
        stop_dialing = true;
        wg.wait();
        EXPECT_EQ(cut.load(), 0) << "a response was cut";
        EXPECT_GT(answered.load(), 0);
        // The idle connection was closed by the server.
        const std::string rest = read_all(idle);
        EXPECT_EQ(rest, "");
      },
      4);
}

// serve() on a listener already closed: "Throws std::system_error if accepting fails for a
// reason other than a stop or a closed listener", so it returns, at once.
TEST_F(HttpAdversarial, ServeOnClosedListenerReturns) {
  run([] {
    goro::net::listener ln = goro::net::listen("tcp", "127.0.0.1:0");
    ln.close();
    http::server srv(routes());
    std::stop_source stop;
    const auto t0 = clock_type::now();
    EXPECT_NO_THROW(srv.serve(ln, stop.get_token()));
    EXPECT_LT(clock_type::now() - t0, 1s);
  });
}

// serve() with its stop already requested returns without serving.
TEST_F(HttpAdversarial, ServeWithStopAlreadyRequestedReturns) {
  run([] {
    goro::net::listener ln = goro::net::listen("tcp", "127.0.0.1:0");
    http::server srv(routes());
    std::stop_source stop;
    stop.request_stop();
    const auto t0 = clock_type::now();
    EXPECT_NO_THROW(srv.serve(ln, stop.get_token()));
    EXPECT_LT(clock_type::now() - t0, 1s);
    EXPECT_FALSE(ln.is_open());
  });
}

// A stop request stops the accepting (docs/http.md, "Graceful shutdown"), also while
// connections wait in the listener's backlog: accept() takes one that is there without looking
// at its token, so serve() served every connection that was already waiting, and under a
// steady stream of new ones went on accepting (thousands in 200 ms from four threads) for as
// long as the backlog never ran dry. Go's Shutdown closes the listener first.
TEST_F(HttpAdversarial, ServeAcceptsNothingAfterTheStop) {
  run([] {
    goro::net::listener ln = goro::net::listen("tcp", "127.0.0.1:0");
    std::vector<goro::net::conn> waiting;
    for (int i = 0; i < 20; ++i) {
      waiting.push_back(dial(ln.address()));
      waiting.back().write(std::string_view("GET /ok HTTP/1.1\r\nHost: x\r\n\r\n"));
    }
    std::atomic<int> handled{0};
    http::router r;
    r.get("/ok", [&](const http::request&, http::response& res) {
      handled.fetch_add(1);
      res.body = "ok";
    });
    http::server srv(std::move(r));
    std::stop_source stop;
    stop.request_stop();
    srv.serve(ln, stop.get_token());
    EXPECT_EQ(handled.load(), 0);
    EXPECT_FALSE(ln.is_open());
  });
}

// A connection accepted before the stop whose request comes after it is not idle: its client
// dialled to send that request. Go's Shutdown serves it if it comes within 5 s of the accept
// (golang/go issue 22682); the server closed it at once, and the request was lost. A new
// connection that sends nothing is closed at the end of that grace.
TEST_F(HttpAdversarial, StopServesTheFirstRequestOfANewConnection) {
  run([] {
    counting_server s(routes());
    goro::net::conn c = dial(s.address());
    goro::net::conn silent = dial(s.address());
    while (s.accepted() < 2) goro::this_fiber::sleep_for(1ms);
    goro::this_fiber::sleep_for(20ms);  // both connections waiting for their first byte
    s.request_stop();
    goro::this_fiber::sleep_for(50ms);
    c.write(as_view("GET /ok HTTP/1.1\r\nHost: x\r\n\r\n"));
    const std::string answer = read_all(c);
    EXPECT_EQ(status_line(answer), "HTTP/1.1 200 OK") << answer;
    EXPECT_NE(lower(answer).find("connection: close"), std::string::npos) << answer;
    silent.set_read_deadline(clock_type::now() + 8s);
    const auto t0 = clock_type::now();
    EXPECT_EQ(read_all(silent), "");
    EXPECT_LT(clock_type::now() - t0, 6s);
  });
}

// The request line's pieces: a lower-case method is another method (405), an unknown version
// is refused, a target with spaces is malformed.
TEST_F(HttpAdversarial, OddRequestLines) {
  run([] {
    counting_server s(routes());
    EXPECT_EQ(status_line(round_trip(s.address(),
                                     "get /ok HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")),
              "HTTP/1.1 405 Method Not Allowed");
    const std::string v2 = status_line(
        round_trip(s.address(), "GET /ok HTTP/2.0\r\nHost: x\r\nConnection: close\r\n\r\n"));
    EXPECT_TRUE(v2 == "HTTP/1.1 400 Bad Request" || v2 == "HTTP/1.1 505 HTTP Version Not Supported")
        << v2;
    EXPECT_EQ(status_line(round_trip(s.address(), "GET /o k HTTP/1.1\r\nHost: x\r\n\r\n")),
              "HTTP/1.1 400 Bad Request");
    // A NUL byte in a field value.
    EXPECT_EQ(
        status_line(round_trip(
            s.address(), std::string_view("GET /ok HTTP/1.1\r\nHost: x\r\nX: a\0b\r\n\r\n", 38))),
        "HTTP/1.1 400 Bad Request");
  });
}

// "The server writes Content-Length, Date and Connection itself, whatever the handler set":
// one of each, the right ones. (A handler's own Date is kept, as Go's server keeps it; the
// docs' "whatever the handler set" overstates that one.)
TEST_F(HttpAdversarial, ServerOwnsFramingFields) {
  run([] {
    http::router r;
    r.get("/lies", [](const http::request&, http::response& res) {
      res.headers.set("Content-Length", "999");
      res.headers.add("content-length", "7");
      res.headers.set("Connection", "keep-alive");
      res.headers.set("Date", "yesterday");
      res.body = "ok";
    });
    counting_server s(std::move(r));
    const std::string answer = lower(
        round_trip(s.address(), "GET /lies HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"));
    EXPECT_EQ(count_of(answer, "\r\ncontent-length:"), 1u) << answer;
    EXPECT_NE(answer.find("\r\ncontent-length: 2\r\n"), std::string::npos) << answer;
    EXPECT_EQ(count_of(answer, "\r\nconnection:"), 1u) << answer;
    EXPECT_NE(answer.find("\r\nconnection: close\r\n"), std::string::npos) << answer;
    EXPECT_EQ(count_of(answer, "\r\ndate:"), 1u) << answer;
  });
}

// A CR or LF in a handler's field value must not split the response (Go's Header.Write turns
// them into spaces).
TEST_F(HttpAdversarial, HandlerFieldValueCannotSplitTheResponse) {
  run([] {
    http::router r;
    r.get("/split", [](const http::request&, http::response& res) {
      res.headers.set("X-Value", "a\r\nInjected: yes\r\n\r\nHTTP/1.1 200 OK");
      res.body = "ok";
    });
    counting_server s(std::move(r));
    const std::string answer =
        round_trip(s.address(), "GET /split HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    EXPECT_EQ(answer.find("\r\nInjected: yes\r\n"), std::string::npos) << answer;
    EXPECT_EQ(count_of(answer, "\r\nHTTP/1.1 "), 0u) << answer;
  });
}

// A 204 or 304 has no body (RFC 9110 15.3.5, 15.4.5), whatever the handler put in it: the next
// pipelined answer follows the header section at once.
TEST_F(HttpAdversarial, NoBodyFor204And304) {
  run([] {
    http::router r;
    r.get("/204", [](const http::request&, http::response& res) {
      res.status = 204;
      res.body = "xyz";
    });
    r.get("/304", [](const http::request&, http::response& res) {
      res.status = 304;
      res.body = "xyz";
    });
    r.get("/ok", [](const http::request&, http::response& res) { res.body = "ok"; });
    counting_server s(std::move(r));
    for (const char* path : {"/204", "/304"}) {
      const std::string answer =
          round_trip(s.address(), std::string("GET ") + path +
                                      " HTTP/1.1\r\nHost: x\r\n\r\nGET /ok HTTP/1.1\r\nHost: x\r\n"
                                      "Connection: close\r\n\r\n");
      const std::size_t end = answer.find("\r\n\r\n");
      ASSERT_NE(end, std::string::npos) << answer;
      EXPECT_EQ(answer.compare(end + 4, 9, "HTTP/1.1 "), 0) << path << ":\n" << answer;
      EXPECT_EQ(lower(answer.substr(0, end)).find("transfer-encoding"), std::string::npos);
    }
  });
}

// What Go's server does with a handler's own framing wishes (found by session 12's audit): a
// handler's "Connection: close" closes the connection after its answer; a HEAD handler of its
// own may say the GET's Content-Length; a status out of range is the handler's error (500,
// and close); a 1xx goes out as an informational response, then a 200 for what it gave.
TEST_F(HttpAdversarial, HandlersFramingWishesAsInGo) {
  run([] {
    http::router r = routes();
    r.get("/closing", [](const http::request&, http::response& res) {
      res.body = "bye";
      res.headers.set("Connection", "Close");
    });
    r.handle("HEAD", "/sized", [](const http::request&, http::response& res) {
      res.headers.set("Content-Length", "1234");
    });
    r.get("/status", [](const http::request& req, http::response& res) {
      res.status = std::stoi(std::string(req.query("code").value_or("200")));
      res.body = "body";
    });
    counting_server s(std::move(r));
    {
      goro::net::conn c = dial(s.address());
      c.write(
          as_view("GET /closing HTTP/1.1\r\nHost: x\r\n\r\nGET /ok HTTP/1.1\r\nHost: x\r\n\r\n"));
      const std::string answer = read_all(c);  // ends only if the server closes
      EXPECT_EQ(status_line(answer), "HTTP/1.1 200 OK");
      EXPECT_NE(lower(answer).find("\r\nconnection: close\r\n"), std::string::npos) << answer;
      EXPECT_EQ(count_of(answer, "HTTP/1.1 "), 1u) << answer;
    }
    {
      const std::string answer = lower(
          round_trip(s.address(), "HEAD /sized HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"));
      EXPECT_NE(answer.find("\r\ncontent-length: 1234\r\n"), std::string::npos) << answer;
      EXPECT_EQ(answer.substr(answer.size() - 4), "\r\n\r\n") << "a HEAD answer has no body";
    }
    for (const char* code : {"99", "1000", "-1"}) {
      const std::string answer = round_trip(
          s.address(), "GET /status?code=" + std::string(code) + " HTTP/1.1\r\nHost: x\r\n\r\n");
      EXPECT_EQ(status_line(answer), "HTTP/1.1 500 Internal Server Error") << code;
    }
    {
      // 101 is final and bodiless (Go's too), and the connection closes after it.
      const std::string answer =
          round_trip(s.address(), "GET /status?code=101 HTTP/1.1\r\nHost: x\r\n\r\n");
      EXPECT_EQ(status_line(answer), "HTTP/1.1 101 Switching Protocols") << answer;
      EXPECT_EQ(count_of(answer, "HTTP/1.1 "), 1u) << answer;
      EXPECT_EQ(lower(answer).find("content-length"), std::string::npos) << answer;
      EXPECT_EQ(answer.substr(answer.size() - 4), "\r\n\r\n") << answer;
      // No informational response to an HTTP/1.0 client (RFC 9110 15.2): only the 200.
      const std::string old = round_trip(s.address(), "GET /status?code=103 HTTP/1.0\r\n\r\n");
      EXPECT_EQ(status_line(old), "HTTP/1.1 200 OK") << old;
      EXPECT_EQ(count_of(old, "HTTP/1.1 "), 1u) << old;
    }
    {
      const std::string answer = round_trip(
          s.address(), "GET /status?code=103 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
      EXPECT_EQ(status_line(answer), "HTTP/1.1 103 Early Hints") << answer;
      const std::size_t final_at = answer.find("\r\n\r\nHTTP/1.1 200 OK\r\n");
      EXPECT_NE(final_at, std::string::npos) << answer;
      EXPECT_EQ(answer.substr(answer.size() - 4), "body") << answer;
    }
  });
}

// RFC 9112 3.2, as Go's server: an HTTP/1.1 request without Host, or any with two, is answered
// 400; an expectation other than 100-continue, 417 (RFC 9110 10.1.1). Found by session 12's
// audit (they got 200).
TEST_F(HttpAdversarial, HostMissingOrRepeatedAndUnknownExpectations) {
  run([] {
    counting_server s(routes());
    EXPECT_EQ(status_line(round_trip(s.address(), "GET /ok HTTP/1.1\r\n\r\n")),
              "HTTP/1.1 400 Bad Request");
    EXPECT_EQ(
        status_line(round_trip(s.address(), "GET /ok HTTP/1.1\r\nHost: a\r\nhost: b\r\n\r\n")),
        "HTTP/1.1 400 Bad Request");
    EXPECT_EQ(
        status_line(round_trip(s.address(), "GET /ok HTTP/1.0\r\nHost: a\r\nHost: b\r\n\r\n")),
        "HTTP/1.1 400 Bad Request");
    EXPECT_EQ(status_line(round_trip(s.address(), "GET /ok HTTP/1.0\r\n\r\n")), "HTTP/1.1 200 OK");
    EXPECT_EQ(
        status_line(round_trip(s.address(), "GET /ok HTTP/1.1\r\nHost: a\r\nExpect: foo\r\n\r\n")),
        "HTTP/1.1 417 Expectation Failed");
    // 100-continue in any case is met: the 100 comes before the body is sent.
    {
      goro::net::conn c = dial(s.address());
      c.write(
          as_view("POST /echo HTTP/1.1\r\nHost: a\r\nExpect: 100-Continue\r\nContent-Length: 2\r\n"
                  "Connection: close\r\n\r\n"));
      std::string pending;
      const auto interim = read_response(c, pending);
      ASSERT_TRUE(interim.has_value());
      EXPECT_EQ(interim->status, 100) << interim->head;
      c.write(as_view("hi"));
      const auto answer = read_response(c, pending);
      ASSERT_TRUE(answer.has_value());
      EXPECT_EQ(answer->status, 200) << answer->head;
      EXPECT_EQ(answer->body, "hi");
    }
    // The body with the header: no 100 needed.
    const std::string continued =
        round_trip(s.address(),
                   "POST /echo HTTP/1.1\r\nHost: a\r\nExpect: 100-Continue\r\n"
                   "Content-Length: 2\r\nConnection: close\r\n\r\nhi");
    EXPECT_EQ(continued.find(" 417 "), std::string::npos) << continued;
    EXPECT_NE(continued.find("HTTP/1.1 200 OK\r\n"), std::string::npos) << continued;
  });
}

// RFC 9112 5.1: whitespace between a field name and the colon MUST be rejected with 400; a
// Transfer-Encoding other than chunked last cannot frame a request (400 or 501, and close).
TEST_F(HttpAdversarial, FieldSyntaxAndUnknownCodings) {
  run([] {
    counting_server s(routes());
    EXPECT_EQ(status_line(round_trip(s.address(), "GET /ok HTTP/1.1\r\nHost : x\r\n\r\n")),
              "HTTP/1.1 400 Bad Request");
    const std::string gzip =
        round_trip(s.address(),
                   "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n"
                   "GET /ok HTTP/1.1\r\nHost: x\r\n\r\n");
    const std::string line = status_line(gzip);
    EXPECT_TRUE(line == "HTTP/1.1 400 Bad Request" || line == "HTTP/1.1 501 Not Implemented")
        << gzip;
    EXPECT_EQ(count_of(gzip, "HTTP/1.1 "), 1u) << gzip;
  });
}

// A POST refused at its header (413) while the client still sends its body: the client gets
// the 413, not a broken pipe (the server's close-and-drain of docs/http.md).
TEST_F(HttpAdversarial, ClientGetsTheRefusalOfALargeBody) {
  run([] {
    http::server_options opts;
    opts.max_body_bytes = 1000;
    counting_server s(routes(), opts);
    http::client cl;
    http::request post;
    post.method = "POST";
    post.body = std::string(4 << 20, 'b');
    const http::response r = cl.send(s.url("/echo"), post, clock_type::now() + 10s);
    EXPECT_EQ(r.status, 413);
    EXPECT_EQ(cl.get(s.url("/ok")).body, "ok");
    cl.close_idle();
  });
}

// A CR or LF in a request's field value from the client must not smuggle a second request.
TEST_F(HttpAdversarial, ClientFieldValueCannotSmuggleARequest) {
  run([] {
    std::atomic<int> evil{0};
    http::router r = routes();
    r.get("/evil", [&](const http::request&, http::response&) { evil.fetch_add(1); });
    counting_server s(std::move(r));
    {
      http::client cl;
      http::request req;
      req.headers.set("X-Value", "a\r\n\r\nGET /evil HTTP/1.1\r\nHost: x");
      try {
        cl.send(s.url("/ok"), req, clock_type::now() + 5s);
      } catch (const std::exception&) {
        // refusing the request is fine
      }
      try {
        cl.get(s.url("/ok"), clock_type::now() + 5s);
      } catch (const std::exception&) {
      }
    }
    s.stop();
    EXPECT_EQ(evil.load(), 0) << "the field value was sent as a second request";
  });
}

// ---------------------------------------------------------------------------------------------
// The client against misbehaving servers.

// What an answering peer does once it has written its answer.
enum class after_answer { close, wait_for_close };

// A raw_server script: reads one request's header section, writes `answer` (if any), then
// closes the connection or waits until the client closes it.
std::function<void(goro::net::conn&)> answer_with(std::string answer, after_answer then) {
  return [answer = std::move(answer), then](goro::net::conn& c) {
    read_request_head(c);
    if (!answer.empty()) c.write(as_view(answer));
    if (then == after_answer::wait_for_close) read_all(c);
  };
}

template <class F>
std::error_code error_of(F&& f) {
  try {
    f();
  } catch (const std::system_error& e) {
    return e.code();
  }
  return {};
}

TEST_F(HttpAdversarial, ClientDeadlineAgainstSlowAnswers) {
  run([] {
    // Never answers.
    {
      raw_server srv(answer_with("", after_answer::wait_for_close));
      http::client cl;
      const auto t0 = clock_type::now();
      EXPECT_EQ(error_of([&] { cl.get(srv.url(), clock_type::now() + 200ms); }),
                std::errc::timed_out);
      const auto took = clock_type::now() - t0;
      EXPECT_GE(took, 190ms);
      EXPECT_LT(took, 2s);
    }
    // Answers the header, then trickles the body a byte per 50 ms: the deadline holds for the
    // whole request, not per read.
    {
      raw_server srv([](goro::net::conn& c) {
        read_request_head(c);
        c.write(as_view("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n"));
        for (int i = 0; i < 100; ++i) {
          goro::this_fiber::sleep_for(50ms);
          c.write(as_view("x"));
        }
      });
      http::client cl;
      const auto t0 = clock_type::now();
      EXPECT_EQ(error_of([&] { cl.get(srv.url(), clock_type::now() + 300ms); }),
                std::errc::timed_out);
      EXPECT_LT(clock_type::now() - t0, 2s);
    }
    // Trickles the header section.
    {
      raw_server srv([](goro::net::conn& c) {
        read_request_head(c);
        for (const char ch : std::string_view("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")) {
          goro::this_fiber::sleep_for(50ms);
          c.write(std::string_view(&ch, 1));
        }
      });
      http::client cl;
      const auto t0 = clock_type::now();
      EXPECT_EQ(error_of([&] { cl.get(srv.url(), clock_type::now() + 300ms); }),
                std::errc::timed_out);
      EXPECT_LT(clock_type::now() - t0, 2s);
    }
  });
}

TEST_F(HttpAdversarial, ClientStopTokenWhileWaitingAndReading) {
  run([] {
    for (int phase = 0; phase < 2; ++phase) {
      raw_server srv(
          answer_with(phase == 1 ? "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nabc" : "",
                      after_answer::wait_for_close));
      http::client cl;
      std::stop_source stop;
      goro::go([&stop] {
        goro::this_fiber::sleep_for(100ms);
        stop.request_stop();
      });
      const auto t0 = clock_type::now();
      EXPECT_EQ(
          error_of([&] { cl.get(srv.url(), goro::net::deadline_time::max(), stop.get_token()); }),
          std::errc::operation_canceled)
          << "phase " << phase;
      EXPECT_LT(clock_type::now() - t0, 2s);
    }
  });
}

TEST_F(HttpAdversarial, ClientDeadlinePassedOrStopRequestedBeforeTheCall) {
  run([] {
    counting_server s(routes());
    http::client cl;
    std::stop_source stop;
    stop.request_stop();
    // Many times, each after a good request leaves a pooled connection: every phase can
    // complete on loopback without waiting, so a client that looked only when it waited let
    // some of these through (about 1 in 10 with three copies of this test running at once on
    // two CPUs; none on an idle machine).
    for (int i = 0; i < 50; ++i) {
      ASSERT_EQ(cl.get(s.url("/ok")).body, "ok");
      EXPECT_EQ(error_of([&] { cl.get(s.url("/ok"), clock_type::now() - 1s); }),
                std::errc::timed_out);
      ASSERT_EQ(cl.get(s.url("/ok")).body, "ok");
      EXPECT_EQ(error_of([&] {
                  cl.get(s.url("/ok"), goro::net::deadline_time::max(), stop.get_token());
                }),
                std::errc::operation_canceled);
    }
    // And the client still works after.
    EXPECT_EQ(cl.get(s.url("/ok")).body, "ok");
    cl.close_idle();
  });
}

// A server that closes mid-body: an error, never a short body passed off as the answer.
TEST_F(HttpAdversarial, ClientServerClosesMidResponse) {
  run([] {
    raw_server srv(
        answer_with("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabcde", after_answer::close));
    http::client cl;
    bool threw = false;
    try {
      const http::response r = cl.get(srv.url(), clock_type::now() + 5s);
      ADD_FAILURE() << "got a response of " << r.body.size() << " bytes: " << r.body;
    } catch (const std::system_error& e) {
      threw = true;
      EXPECT_NE(e.code(), std::errc::timed_out);
    }
    EXPECT_TRUE(threw);
  });
}

// A chunked answer cut before its last chunk, likewise.
TEST_F(HttpAdversarial, ClientServerClosesMidChunkedResponse) {
  run([] {
    raw_server srv(
        answer_with("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nabcde\r\n",
                    after_answer::close));
    http::client cl;
    EXPECT_THROW(cl.get(srv.url(), clock_type::now() + 5s), std::system_error);
  });
}

TEST_F(HttpAdversarial, ClientReadsBodyToEndOfStream) {
  run([] {
    raw_server srv(answer_with("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nno length here",
                               after_answer::close));
    http::client cl;
    const http::response r = cl.get(srv.url(), clock_type::now() + 5s);
    EXPECT_EQ(r.status, 200);
    EXPECT_EQ(r.body, "no length here");
  });
}

// RFC 9110 15.2: "A client MUST be able to parse one or more 1xx responses received prior to
// a final response, even if the client does not expect one." Go's transport skips them.
TEST_F(HttpAdversarial, ClientSkipsInterimResponses) {
  run([] {
    raw_server srv(
        answer_with("HTTP/1.1 100 Continue\r\n\r\n"
                    "HTTP/1.1 103 Early Hints\r\nLink: </s.css>; rel=preload\r\n\r\n"
                    "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nfinal",
                    after_answer::wait_for_close));
    http::client cl;
    const http::response r = cl.get(srv.url(), clock_type::now() + 5s);
    EXPECT_EQ(r.status, 200);
    EXPECT_EQ(r.body, "final");
    cl.close_idle();
  });
}

// A response to HEAD with a Content-Length and no body, and a 204 and 304 with one: the client
// must not wait for a body (the deadline would expire).
TEST_F(HttpAdversarial, ClientBodylessResponsesDoNotWaitForABody) {
  run([] {
    raw_server srv([](goro::net::conn& c) {
      std::string pending;
      for (const char* answer :
           {"HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\n", "HTTP/1.1 204 No Content\r\n\r\n",
            "HTTP/1.1 304 Not Modified\r\nContent-Length: 50\r\n\r\n"}) {
        if (read_request_head(c).empty()) return;
        c.write(std::string_view(answer));
      }
      read_all(c);
    });
    http::client cl;
    http::request head;
    head.method = "HEAD";
    http::response r = cl.send(srv.url(), head, clock_type::now() + 2s);
    EXPECT_EQ(r.status, 200);
    EXPECT_EQ(r.body, "");
    r = cl.get(srv.url(), clock_type::now() + 2s);
    EXPECT_EQ(r.status, 204);
    r = cl.get(srv.url(), clock_type::now() + 2s);
    EXPECT_EQ(r.status, 304);
    EXPECT_EQ(r.body, "");
    cl.close_idle();
  });
}

TEST_F(HttpAdversarial, ClientPoolUsesOneConnectionForSequentialRequests) {
  run([] {
    counting_server s(routes());
    http::client cl;
    for (int i = 0; i < 30; ++i) {
      http::request req;
      req.method = (i % 2 == 0) ? "GET" : "POST";
      req.body = (i % 2 == 0) ? "" : std::string(static_cast<std::size_t>(i) * 100, 'p');
      const http::response r = cl.send(s.url(i % 2 == 0 ? "/ok" : "/echo"), req);
      ASSERT_EQ(r.status, 200);
      EXPECT_EQ(r.body, i % 2 == 0 ? "ok" : req.body);
    }
    // A 404 and a 405 keep the connection too.
    EXPECT_EQ(cl.get(s.url("/nowhere")).status, 404);
    EXPECT_EQ(cl.get(s.url("/echo")).status, 405);
    EXPECT_EQ(cl.get(s.url("/ok")).status, 200);
    EXPECT_EQ(s.accepted(), 1);
    cl.close_idle();
  });
}

// The server's idle timeout closes the pooled connection; the next request must not fail (the
// client retries on a new connection), for a GET and for a POST.
TEST_F(HttpAdversarial, ClientPoolSurvivesServerClosingIdleConnections) {
  run([] {
    http::server_options opts;
    opts.idle_timeout = 50ms;
    counting_server s(routes(), opts);
    http::client cl;
    for (int i = 0; i < 5; ++i) {
      EXPECT_EQ(cl.get(s.url("/ok")).body, "ok") << i;
      goro::this_fiber::sleep_for(150ms);
      http::request post;
      post.method = "POST";
      post.body = "again";
      EXPECT_EQ(cl.send(s.url("/echo"), post).body, "again") << i;
      goro::this_fiber::sleep_for(150ms);
    }
    EXPECT_EQ(s.accepted(), 10);
    cl.close_idle();
  });
}

// A server that closes right after each answer without saying "Connection: close" (an old or
// broken server): the race between the FIN and the next request must not fail a request.
TEST_F(HttpAdversarial, ClientPoolSurvivesSilentCloseAfterEachAnswer) {
  run([] {
    goro::net::listener ln = goro::net::listen("tcp", "127.0.0.1:0");
    std::stop_source stop;
    goro::wait_group wg;
    std::atomic<int> accepted{0};
    wg.add(1);
    goro::go([&] {
      for (;;) {
        goro::net::conn c;
        try {
          c = ln.accept(stop.get_token());
        } catch (const std::system_error&) {
          break;
        }
        accepted.fetch_add(1);
        c.set_deadline(clock_type::now() + 5s);
        try {
          if (!read_request_head(c).empty())
            c.write(as_view("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"));
        } catch (const std::system_error&) {
        }
      }  // closed: no "Connection: close"
      wg.done();
    });
    {
      http::client cl;
      const std::string url = "http://" + ln.address() + "/";
      for (int i = 0; i < 50; ++i) {
        try {
          EXPECT_EQ(cl.get(url, clock_type::now() + 5s).body, "ok");
        } catch (const std::system_error& e) {
          ADD_FAILURE() << "request " << i << " failed: " << e.what();
        }
      }
    }
    stop.request_stop();
    wg.wait();
    EXPECT_GE(accepted.load(), 50);
  });
}

TEST_F(HttpAdversarial, ClientManyFibersConcurrently) {
  run(
      [] {
        counting_server s(routes());
        constexpr int kFibers = 64;
        // Room in the pool for every fiber's connection: no fiber holds more than one at a
        // time, so no more than kFibers are ever dialled.
        http::client cl(http::client_options{.max_idle_per_host = kFibers});
        const int per_fiber = goro_test::sanitized ? 5 : 20;
        std::atomic<int> good{0};
        goro::wait_group wg;
        for (int f = 0; f < kFibers; ++f) {
          wg.add(1);
          goro::go([&, f] {
            for (int i = 0; i < per_fiber; ++i) {
              http::request req;
              req.method = "POST";
              req.body = "fiber " + std::to_string(f) + " request " + std::to_string(i) +
                         std::string(static_cast<std::size_t>(f * 37 % 5000), '.');
              try {
                const http::response r = cl.send(s.url("/echo"), req, clock_type::now() + 20s);
                if (r.status == 200 && r.body == req.body) good.fetch_add(1);
              } catch (const std::system_error& e) {
                ADD_FAILURE() << e.what();
              }
            }
            wg.done();
          });
        }
        wg.wait();
        EXPECT_EQ(good.load(), kFibers * per_fiber);
        EXPECT_LE(s.accepted(), kFibers);
        cl.close_idle();
      },
      4);
}

// The client from a plain thread (documented: "called from a plain thread, it blocks").
TEST(HttpAdversarialPlain, ClientFromPlainThread) {
  // A plain thread's connections live on the default runtime, which stays for the process:
  // start it before counting descriptors.
  // Its poller is made at the first I/O of a plain thread: do one.
  {
    goro::net::listener warm = goro::net::listen("tcp", "127.0.0.1:0");
    goro::net::conn c = goro::net::dial("tcp", warm.address());
  }
  const int fds_before = open_descriptors();
  {
    goro::runtime rt{goro::options{.workers = 2}};
    goro::net::listener ln;
    std::string url;
    std::stop_source stop;
    goro::wait_group done;
    {
      // listen and serve from a fiber of rt
      goro::chan<std::string> addr(1);
      done.add(1);
      rt.go([&] {
        ln = goro::net::listen("tcp", "127.0.0.1:0");
        addr.send(ln.address());
        http::server(routes()).serve(ln, stop.get_token());
        done.done();
      });
      url = "http://" + *addr.recv() + "/ok";
    }
    {
      http::client cl;
      for (int i = 0; i < 5; ++i) EXPECT_EQ(cl.get(url, clock_type::now() + 5s).body, "ok");
    }
    stop.request_stop();
    done.wait();
  }
  if (open_descriptors() != fds_before) {
    for (const auto& e : std::filesystem::directory_iterator("/proc/self/fd"))
      std::printf("%s -> %s\n", e.path().c_str(), std::filesystem::read_symlink(e.path()).c_str());
  }
  EXPECT_EQ(open_descriptors(), fds_before) << "a descriptor leaked";
}

TEST_F(HttpAdversarial, ClientBadUrls) {
  run([] {
    http::client cl;
    for (const char* url : {"https://127.0.0.1:1/", "ftp://x/", "http://", "127.0.0.1:80/",
                            "http://127.0.0.1:notaport/", "", "http://127.0.0.1:65536/",
                            "http://127.0.0.1:123456/"}) {
      bool invalid = false;
      try {
        cl.get(url, clock_type::now() + 1s);
      } catch (const std::invalid_argument&) {
        invalid = true;
      } catch (const std::exception& e) {
        ADD_FAILURE() << url << ": " << e.what();
      }
      EXPECT_TRUE(invalid) << url;
    }
  });
}

// A URL's password never reaches an error message (which ends up in logs): it reads "xxxxx", as
// Go's URL.Redacted gives it. And the scheme is matched in any case.
TEST_F(HttpAdversarial, ClientRedactsThePasswordInErrors) {
  run([] {
    http::client cl;
    for (const char* url :
         {"https://alice:s3cret@127.0.0.1:1/", "http://alice:s3cret@127.0.0.1:8o/"}) {
      try {
        cl.get(url, clock_type::now() + 1s);
        ADD_FAILURE() << "no error for a bad URL";
      } catch (const std::invalid_argument& e) {
        const std::string what = e.what();
        EXPECT_EQ(what.find("s3cret"), std::string::npos) << what;
        EXPECT_NE(what.find("alice:xxxxx@"), std::string::npos) << what;
      }
    }
    counting_server s(routes());
    EXPECT_EQ(cl.get("HTTP://" + s.address() + "/ok", clock_type::now() + 5s).status, 200);
  });
}

// Over the client's max_body_bytes: an error, not an allocation of what the server claims.
TEST_F(HttpAdversarial, ClientRefusesHugeResponse) {
  run([] {
    raw_server srv(answer_with("HTTP/1.1 200 OK\r\nContent-Length: 99999999999\r\n\r\nabc",
                               after_answer::wait_for_close));
    http::client cl(http::client_options{.max_body_bytes = 1000});
    EXPECT_THROW(cl.get(srv.url(), clock_type::now() + 5s), std::system_error);
  });
}

// The client's side of EndlessChunkLineOrTrailerIs400: a server whose chunk line never ends
// fails the request (bad_message) once the line is over max_header_bytes, instead of growing
// the client's buffer until the deadline.
TEST_F(HttpAdversarial, ClientRefusesAnEndlessChunkLine) {
  run([] {
    raw_server srv([](goro::net::conn& c) {
      read_request_head(c);
      c.write(as_view("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;name="));
      const std::string filler(64 * 1024, 'v');
      for (int i = 0; i < 16; ++i) c.write(as_view(filler));  // until the client hangs up
      read_all(c);
    });
    http::client cl(http::client_options{.max_header_bytes = 4096});
    const std::error_code code = error_of([&] { cl.get(srv.url(), clock_type::now() + 3s); });
    EXPECT_EQ(code, std::errc::bad_message) << code.message();
  });
}

// ---------------------------------------------------------------------------------------------
// What the client puts on the wire, and its pool against a server that misbehaves between
// requests.

// A server on a loopback port that runs `script` on each connection it accepts, in a fiber of
// its own, with the connection's number (1, 2, ...) and a deadline 20 s away; a system_error
// out of the script ends it quietly. Destroy the clients first: stop() waits for the scripts.
class scripted_server : public goro_test::loopback_server {
 public:
  using script_type = std::function<void(goro::net::conn&, int)>;

  explicit scripted_server(script_type script)
      : script_(std::make_shared<script_type>(std::move(script))) {
    done_.add(1);
    goro::go([this] {
      for (int k = 1;; ++k) {
        goro::net::conn c;
        try {
          c = ln_.accept(stop_.get_token());
        } catch (const std::system_error&) {
          break;
        }
        accepted_.fetch_add(1);
        done_.add(1);
        auto shared = std::make_shared<goro::net::conn>(std::move(c));
        goro::go([this, shared, k, script = script_] {
          try {
            shared->set_deadline(clock_type::now() + 20s);
            (*script)(*shared, k);
          } catch (const std::system_error&) {
          }
          done_.done();
        });
      }
      ln_.close();
      done_.done();
    });
  }
  ~scripted_server() { stop(); }  // the fibers use accepted_

  int accepted() const { return accepted_.load(); }

 private:
  std::shared_ptr<script_type> script_;
  std::atomic<int> accepted_{0};
};

// A scripted_server script: answers every request on its connection with an empty 200, after
// sending its header section (lower-cased) to `heads`, until the client closes.
scripted_server::script_type record_heads(goro::chan<std::string>& heads) {
  return [&heads](goro::net::conn& c, int) {
    for (;;) {
      const std::string head = read_request_head(c);
      if (head.empty()) return;
      heads.send(head);
      c.write(as_view("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"));
    }
  };
}

// The request line of a header section.
std::string request_line(const std::string& head) { return head.substr(0, head.find("\r\n")); }

// A control character anywhere in the URL (CR LF would end the request line and start a
// second request) is refused before anything is sent, as Go's net/url refuses it.
TEST_F(HttpAdversarial, ClientRefusesControlCharactersInTheUrl) {
  run([] {
    std::atomic<int> evil{0};
    http::router r = routes();
    r.get("/admin", [&](const http::request&, http::response&) { evil.fetch_add(1); });
    counting_server s(std::move(r));
    {
      http::client cl;
      for (const std::string& tail :
           {std::string("x HTTP/1.1\r\nHost: a\r\n\r\nGET /admin"), std::string("x\nGET /admin"),
            std::string("x\r"), std::string("x\ty"), std::string("x\x7f"),
            std::string("x\0y", 3)}) {
        bool invalid = false;
        try {
          cl.get(s.url("/ok?name=") + tail, clock_type::now() + 2s);
        } catch (const std::invalid_argument&) {
          invalid = true;
        } catch (const std::exception& e) {
          ADD_FAILURE() << e.what();
        }
        EXPECT_TRUE(invalid) << "tail of " << tail.size() << " bytes";
      }
      bool invalid = false;
      try {
        cl.get("http://" + s.address() + "\r\n/ok", clock_type::now() + 2s);
      } catch (const std::invalid_argument&) {
        invalid = true;
      }
      EXPECT_TRUE(invalid) << "a CR LF in the authority";
    }
    s.stop();
    EXPECT_EQ(s.accepted(), 0) << "a request went out";
    EXPECT_EQ(evil.load(), 0);
  });
}

// What the client does with the rest of a URL: a space or a non-ASCII byte percent-encoded
// (Go's EscapedPath), an escape left as it is, the fragment never sent.
TEST_F(HttpAdversarial, ClientEscapesTheTargetAndDropsTheFragment) {
  run([] {
    goro::chan<std::string> heads(16);
    scripted_server s(record_heads(heads));
    {
      http::client cl;
      const std::pair<const char*, const char*> cases[] = {
          {"/a b", "GET /a%20b HTTP/1.1"},
          {"/a?b=1#frag", "GET /a?b=1 HTTP/1.1"},
          {"#frag", "GET / HTTP/1.1"},
          {"?q=a b\"<>", "GET /?q=a%20b%22%3C%3E HTTP/1.1"},
          {"/caf\xc3\xa9", "GET /caf%C3%A9 HTTP/1.1"},
          {"/a%2Fb/c;p=1:@!$&'()*+,=~", "GET /a%2Fb/c;p=1:@!$&'()*+,=~ HTTP/1.1"},
          {"/x?a=%zz&b=/?", "GET /x?a=%zz&b=/? HTTP/1.1"},
      };
      for (const auto& [tail, line] : cases) {
        try {
          EXPECT_EQ(cl.get(s.url(tail), clock_type::now() + 5s).status, 200) << tail;
        } catch (const std::exception& e) {
          ADD_FAILURE() << tail << ": " << e.what();
          continue;
        }
        EXPECT_EQ(request_line(heads.recv().value()), line) << tail;
      }
      // A path's bad escape is refused, as Go's url.Parse refuses it.
      EXPECT_THROW(cl.get(s.url("/a%zz"), clock_type::now() + 5s), std::invalid_argument);
      EXPECT_THROW(cl.get(s.url("/a%4"), clock_type::now() + 5s), std::invalid_argument);
    }
  });
}

// A URL's user:password goes as Basic authorization, never into the Host field or the dial
// address (Go's transport does the same); a caller's own Authorization wins.
TEST_F(HttpAdversarial, ClientSendsUrlUserinfoAsBasicAuthorization) {
  run([] {
    goro::chan<std::string> heads(16);
    scripted_server s(record_heads(heads));
    {
      http::client cl;
      // "Aladdin:open sesame", RFC 7617's example, with its space escaped.
      EXPECT_EQ(cl.get("http://Aladdin:open%20sesame@" + s.address() + "/x").status, 200);
      std::string head = heads.recv().value();
      EXPECT_EQ(count_of(head, "\r\nHost: "), 1u) << head;
      EXPECT_NE(head.find("\r\nHost: " + s.address() + "\r\n"), std::string::npos) << head;
      EXPECT_NE(head.find("\r\nAuthorization: Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==\r\n"),
                std::string::npos)
          << head;
      // A user alone; an '@' in the password.
      EXPECT_EQ(cl.get("http://u@" + s.address() + "/").status, 200);
      head = heads.recv().value();
      EXPECT_NE(head.find("\r\nAuthorization: Basic dTo=\r\n"), std::string::npos) << head;
      EXPECT_EQ(cl.get("http://u:p@ss@" + s.address() + "/").status, 200);
      head = heads.recv().value();
      EXPECT_NE(head.find("\r\nAuthorization: Basic dTpwQHNz\r\n"), std::string::npos) << head;
      http::request req;
      req.headers.set("Authorization", "Bearer t");
      EXPECT_EQ(cl.send("http://u:p@" + s.address() + "/", req).status, 200);
      head = heads.recv().value();
      EXPECT_EQ(count_of(head, "Authorization: "), 1u) << head;
      EXPECT_NE(head.find("\r\nAuthorization: Bearer t\r\n"), std::string::npos) << head;
      EXPECT_THROW(cl.get("http://u:p@/x"), std::invalid_argument);
    }
  });
}

// A method that is not a token (RFC 9110 9.1) is refused before anything is sent.
TEST_F(HttpAdversarial, ClientRefusesAMethodThatIsNotAToken) {
  run([] {
    counting_server s(routes());
    {
      http::client cl;
      for (const char* method :
           {"GET /admin HTTP/1.1\r\nHost: a\r\n\r\nGET", "GE T", "GET\n", "G(T", "GET\x01"}) {
        http::request req;
        req.method = method;
        EXPECT_THROW(cl.send(s.url("/ok"), req, clock_type::now() + 2s), std::invalid_argument)
            << method;
      }
    }
    s.stop();
    EXPECT_EQ(s.accepted(), 0) << "a request went out";
  });
}

// The client writes the framing fields itself: a caller's Content-Length or Transfer-Encoding
// that disagrees with the body must not let the body's tail pass for a second request, whose
// answer the pool would then hand to the next caller (Go ignores both in the header map).
TEST_F(HttpAdversarial, ClientOwnsTheFramingFields) {
  run([] {
    std::atomic<int> evil{0};
    http::router r = routes();
    r.get("/slow", [&](const http::request&, http::response& res) {
      evil.fetch_add(1);
      res.body = "smuggled";
    });
    counting_server s(std::move(r));
    {
      http::client cl;
      http::request post;
      post.method = "POST";
      post.body = "abcGET /slow HTTP/1.1\r\nHost: a\r\n\r\n";
      post.headers.set("Content-Length", "3");
      http::response res = cl.send(s.url("/echo"), post, clock_type::now() + 5s);
      EXPECT_EQ(res.body, post.body);
      EXPECT_EQ(cl.get(s.url("/ok"), clock_type::now() + 5s).body, "ok");
      // One longer than the body: the server would wait for the last byte.
      post.headers.set("Content-Length", std::to_string(post.body.size() + 1));
      EXPECT_EQ(cl.send(s.url("/echo"), post, clock_type::now() + 5s).body, post.body);
      // A Transfer-Encoding the client does not apply.
      post.headers.erase("Content-Length");
      post.headers.set("Transfer-Encoding", "gzip, chunked");
      EXPECT_EQ(cl.send(s.url("/echo"), post, clock_type::now() + 5s).body, post.body);
      EXPECT_EQ(cl.get(s.url("/ok"), clock_type::now() + 5s).body, "ok");
      cl.close_idle();
    }
    s.stop();
    EXPECT_EQ(evil.load(), 0) << "the body's tail was answered as a request";
  });
}

// On the wire: one Host (the caller's if it set one, as Go's Request.Host, else the URL's),
// one Content-Length with the body's size, no caller's Transfer-Encoding.
TEST_F(HttpAdversarial, ClientWritesOneHostAndItsOwnLength) {
  run([] {
    goro::chan<std::string> heads(16);
    scripted_server s(record_heads(heads));
    {
      http::client cl;
      http::request req;
      req.method = "PUT";
      req.body = "12345";
      req.headers.add("Content-Length", "3");
      req.headers.add("content-length", "5");
      req.headers.add("Transfer-Encoding", "identity");
      req.headers.add("X-Kept", "yes");
      EXPECT_EQ(cl.send(s.url("/p"), req, clock_type::now() + 5s).status, 200);
      std::string head = lower(heads.recv().value());
      EXPECT_EQ(count_of(head, "\r\ncontent-length: "), 1u) << head;
      EXPECT_NE(head.find("\r\ncontent-length: 5\r\n"), std::string::npos) << head;
      EXPECT_EQ(head.find("transfer-encoding"), std::string::npos) << head;
      EXPECT_NE(head.find("\r\nx-kept: yes\r\n"), std::string::npos) << head;
      EXPECT_NE(head.find("\r\nhost: " + s.address() + "\r\n"), std::string::npos) << head;

      req.headers.add("Host", "example.test");
      req.headers.add("host", "second.test");
      EXPECT_EQ(cl.send(s.url("/p"), req, clock_type::now() + 5s).status, 200);
      head = lower(heads.recv().value());
      EXPECT_EQ(count_of(head, "\r\nhost: "), 1u) << head;
      EXPECT_NE(head.find("\r\nhost: example.test\r\n"), std::string::npos) << head;
      // A Host that is not one: refused, as Go refuses an invalid Request.Host.
      req.headers.set("Host", "a b");
      EXPECT_THROW(cl.send(s.url("/p"), req, clock_type::now() + 5s), std::invalid_argument);
    }
  });
}

// A caller's "Connection: close" is sent, and the connection is not pooled after its answer
// even when the server, ignoring it, keeps the connection open (Go's Request.Close).
TEST_F(HttpAdversarial, ClientHonoursConnectionClose) {
  run([] {
    goro::chan<std::string> heads(16);
    scripted_server s(record_heads(heads));
    {
      http::client cl;
      http::request req;
      req.headers.set("Connection", "Close");
      EXPECT_EQ(cl.send(s.url("/"), req, clock_type::now() + 5s).status, 200);
      EXPECT_NE(heads.recv().value().find("\r\nConnection: Close\r\n"), std::string::npos);
      EXPECT_EQ(cl.get(s.url("/"), clock_type::now() + 5s).status, 200);
      heads.recv();
    }
    EXPECT_EQ(s.accepted(), 2);
  });
}

// Bytes that arrive on an idle pooled connection were not asked for (here a 408 that a server
// sends before it closes an idle connection): the connection is dropped, never read as the
// next request's answer, and the request goes on a new one.
TEST_F(HttpAdversarial, ClientDropsAnIdleConnectionThatReceivedBytes) {
  run([] {
    goro::chan<int> first_read(1);
    goro::chan<int> closed(1);
    scripted_server s([&](goro::net::conn& c, int k) {
      read_request_head(c);
      c.write(as_view("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nconn" + std::to_string(k)));
      if (k != 1) {
        read_all(c);
        return;
      }
      first_read.recv();
      c.write(
          as_view("HTTP/1.1 408 Request Timeout\r\nContent-Length: 0\r\n"
                  "Connection: close\r\n\r\n"));
      c.close();
      closed.send(1);
    });
    {
      http::client cl;
      EXPECT_EQ(cl.get(s.url("/"), clock_type::now() + 5s).body, "conn1");
      first_read.send(1);
      closed.recv();
      const http::response r = cl.get(s.url("/"), clock_type::now() + 5s);
      EXPECT_EQ(r.status, 200);
      EXPECT_EQ(r.body, "conn2");
    }
    EXPECT_EQ(s.accepted(), 2);
  });
}

// The client's sockets in CLOSE_WAIT towards 127.0.0.1:`port`: closed by that server, not yet
// by us. From /proc/self/net/tcp: "sl local rem st ...", addresses as hex "0100007F:1F90",
// state 08 being CLOSE_WAIT.
int close_wait_sockets_to(int port) {
  std::ifstream tcp("/proc/self/net/tcp");
  std::string line;
  std::getline(tcp, line);  // the heading
  int n = 0;
  while (std::getline(tcp, line)) {
    std::istringstream fields(line);
    std::string slot, local, remote, state;
    fields >> slot >> local >> remote >> state;
    const std::size_t colon = remote.find(':');
    if (colon == std::string::npos || state != "08") continue;
    if (std::stoi(remote.substr(colon + 1), nullptr, 16) == port) ++n;
  }
  return n;
}

// A pooled connection that the server closed is closed by the client too, within a second of
// any connection coming back to the pool, even if its own host is never called again; the
// host's entry goes with it. Before, it sat in CLOSE_WAIT until the next request to that host
// (a client calling many hosts kept one per host it ever called; Go closes it at once).
TEST_F(HttpAdversarial, ClientSweepsIdleConnectionsTheServerClosed) {
  run([] {
    goro::chan<int> answered(1);
    goro::chan<int> closed(1);
    scripted_server gone([&](goro::net::conn& c, int) {
      read_request_head(c);
      c.write(as_view("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"));
      answered.recv();  // the client has pooled the connection (and swept the pool)
      c.close();
      closed.send(1);
    });
    scripted_server other([&](goro::net::conn& c, int) {
      while (!read_request_head(c).empty()) {
        c.write(as_view("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"));
      }
    });
    const int port = std::stoi(gone.address().substr(gone.address().rfind(':') + 1));
    http::client cl;
    ASSERT_EQ(cl.get(gone.url("/"), clock_type::now() + 5s).body, "ok");
    answered.send(1);
    closed.recv();
    // The FIN crosses loopback within the close; looked at until it shows, for 2 s at most.
    for (int i = 0; i < 200 && close_wait_sockets_to(port) == 0; ++i) {
      goro::this_fiber::sleep_for(10ms);
    }
    ASSERT_EQ(close_wait_sockets_to(port), 1) << "the pooled connection is not in CLOSE_WAIT";
    // The sweep runs at most once a second (the first put ran one): this sleep only waits
    // that out, and proves nothing itself.
    goro::this_fiber::sleep_for(1100ms);
    ASSERT_EQ(cl.get(other.url("/"), clock_type::now() + 5s).body, "ok");
    EXPECT_EQ(close_wait_sockets_to(port), 0) << "the client kept the connection the server closed";
    EXPECT_EQ(gone.accepted(), 1);
  });
}

// The pooled connection closes after taking a request and before answering. A request that
// may be replayed (GET, HEAD, OPTIONS, TRACE, or one with an Idempotency-Key) is sent again
// on a new connection; a POST is not: the server may have acted on it (Go's rule).
TEST_F(HttpAdversarial, ClientRetriesOnlyReplayableRequests) {
  run([] {
    struct outcome {
      const char* method;
      const char* key;  // an Idempotency-Key field's name, or nullptr
      bool retried;
    };
    for (const outcome o :
         {outcome{"POST", nullptr, false}, outcome{"PATCH", nullptr, false},
          outcome{"GET", nullptr, true}, outcome{"OPTIONS", nullptr, true},
          outcome{"POST", "Idempotency-Key", true}, outcome{"DELETE", "X-Idempotency-Key", true}}) {
      std::atomic<int> requests{0};
      scripted_server s([&](goro::net::conn& c, int k) {
        for (int i = 0;; ++i) {
          if (read_request_head(c).empty()) return;
          requests.fetch_add(1);
          if (k == 1 && i == 1) {
            c.close();  // the second request unanswered
            return;
          }
          c.write(as_view("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"));
        }
      });
      {
        http::client cl;
        ASSERT_EQ(cl.get(s.url("/"), clock_type::now() + 5s).body, "ok");
        http::request req;
        req.method = o.method;
        if (o.key != nullptr) req.headers.set(o.key, "k1");
        bool answered = false;
        try {
          answered = cl.send(s.url("/"), req, clock_type::now() + 5s).body == "ok";
        } catch (const std::system_error& e) {
          EXPECT_NE(e.code(), std::errc::timed_out) << o.method;
        }
        EXPECT_EQ(answered, o.retried) << o.method;
      }
      EXPECT_EQ(requests.load(), o.retried ? 3 : 2) << o.method;
      EXPECT_EQ(s.accepted(), o.retried ? 2 : 1) << o.method;
    }
  });
}

// A default-constructed deadline is Go's zero time: no deadline.
TEST_F(HttpAdversarial, ClientZeroDeadlineMeansNone) {
  run([] {
    counting_server s(routes());
    http::client cl;
    EXPECT_EQ(cl.get(s.url("/ok"), goro::net::deadline_time{}).body, "ok");
    http::request post;
    post.method = "POST";
    post.body = "zero";
    EXPECT_EQ(cl.send(s.url("/echo"), post, goro::net::deadline_time{}).body, "zero");
    cl.close_idle();
  });
}

// A 101 Switching Protocols is the final answer (RFC 9110 15.2.2), returned as Go's transport
// returns it; the connection belongs to the other protocol now and is never pooled.
TEST_F(HttpAdversarial, ClientReturnsSwitchingProtocols) {
  run([] {
    scripted_server s([](goro::net::conn& c, int k) {
      read_request_head(c);
      if (k == 1) {
        c.write(
            as_view("HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\n"
                    "Connection: upgrade\r\n\r\nother protocol"));
      } else {
        c.write(as_view("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"));
      }
      read_all(c);
    });
    {
      http::client cl;
      const http::response r = cl.get(s.url("/up"), clock_type::now() + 5s);
      EXPECT_EQ(r.status, 101);
      EXPECT_EQ(r.headers.get("Upgrade").value_or(""), "x");
      EXPECT_EQ(cl.get(s.url("/"), clock_type::now() + 5s).body, "ok");
    }
    EXPECT_EQ(s.accepted(), 2);
  });
}

// ---------------------------------------------------------------------------------------------
// Metrics.

// Two fibers of rt hand a value back and forth `rounds` times over two unbuffered channels;
// returns once both have called done (they may still be finishing).
void ping_pong(goro::runtime& rt, int rounds) {
  goro::wait_group wg;
  goro::chan<int> a(0), b(0);
  wg.add(2);
  rt.go([&] {
    for (int i = 0; i < rounds; ++i) {
      a.send(i);
      b.recv();
    }
    wg.done();
  });
  rt.go([&] {
    for (int i = 0; i < rounds; ++i) {
      a.recv();
      b.send(i);
    }
    wg.done();
  });
  wg.wait();
}

void check_metrics_while_running(std::size_t workers) {
  goro::runtime rt{goro::options{.workers = workers}};
  std::atomic<bool> done{false};
  std::thread reader([&] {
    goro::runtime_metrics last = rt.metrics();
    int reads = 0;
    while (!done.load() || reads < 10) {
      const goro::runtime_metrics m = rt.metrics();
      ++reads;
      EXPECT_EQ(m.workers, workers);
      EXPECT_EQ(m.spawns, m.finished + m.fibers_alive);
      EXPECT_LE(m.fibers_runnable, m.fibers_alive);
      EXPECT_LE(m.fibers_parked, m.fibers_alive);
      EXPECT_LE(m.worker_wakeups, m.worker_sleeps);
      EXPECT_GE(m.spawns, last.spawns);
      EXPECT_GE(m.finished, last.finished);
      EXPECT_GE(m.context_switches, last.context_switches);
      EXPECT_GE(m.steals, last.steals);
      EXPECT_GE(m.worker_sleeps, last.worker_sleeps);
      EXPECT_GE(m.worker_wakeups, last.worker_wakeups);
      EXPECT_GE(m.parks, last.parks);
      EXPECT_GE(m.chan_sends, last.chan_sends);
      EXPECT_GE(m.chan_receives, last.chan_receives);
      EXPECT_GE(m.selects, last.selects);
      EXPECT_GE(m.select_wakeups, last.select_wakeups);
      if (::testing::Test::HasFailure()) break;
      last = m;
    }
  });
  goro::wait_group wg;
  for (int round = 0; round < 20; ++round) {
    goro::chan<int> ch(0);
    goro::chan<int> other(0);
    wg.add(3);
    rt.go([&, ch] {
      for (int i = 0; i < 200; ++i) ch.send(i);
      ch.close();
      wg.done();
    });
    rt.go([&, ch, other] {
      while (auto v = ch.recv()) {
        if (*v % 50 == 0) rt.go([] {});  // spawns from fibers, finishing at once
        goro::this_fiber::yield();
      }
      other.close();
      wg.done();
    });
    rt.go([&, other] {
      goro::select(goro::on_recv(other));
      wg.done();
    });
  }
  wg.wait();
  done = true;
  reader.join();
}

TEST(HttpAdversarialMetrics, ConsistentAndMonotonicWhileRunningOneWorker) {
  check_metrics_while_running(1);
}
TEST(HttpAdversarialMetrics, ConsistentAndMonotonicWhileRunningFourWorkers) {
  check_metrics_while_running(4);
}

TEST(HttpAdversarialMetrics, ContextSwitchesGrowInPingPong) {
  for (std::size_t workers : {1u, 4u}) {
    goro::runtime rt{goro::options{.workers = workers}};
    const goro::runtime_metrics before = rt.metrics();
    constexpr int kRounds = 500;
    ping_pong(rt, kRounds);
    // wait_group::wait from main returns when done() ran; the fibers may still be finishing.
    for (int i = 0; i < 200 && rt.metrics().fibers_alive != 0; ++i)
      std::this_thread::sleep_for(5ms);
    const goro::runtime_metrics after = rt.metrics();
    if (!after.events_counted) GTEST_SKIP() << "built with GORO_METRICS=OFF";
    EXPECT_EQ(after.spawns - before.spawns, 2u);
    EXPECT_EQ(after.fibers_alive, 0u);
    EXPECT_EQ(after.chan_sends - before.chan_sends, 2u * kRounds) << workers;
    EXPECT_EQ(after.chan_receives - before.chan_receives, 2u * kRounds) << workers;
    EXPECT_GE(after.context_switches - before.context_switches, 2u * kRounds) << workers;
    EXPECT_GE(after.parks - before.parks, static_cast<std::uint64_t>(kRounds)) << workers;
  }
}

TEST(HttpAdversarialMetrics, FreshRuntimeReadsZero) {
  for (std::size_t workers : {1u, 4u}) {
    goro::runtime rt{goro::options{.workers = workers}};
    std::this_thread::sleep_for(20ms);
    const goro::runtime_metrics m = rt.metrics();
    EXPECT_EQ(m.workers, workers);
    EXPECT_EQ(m.spawns, 0u);
    EXPECT_EQ(m.finished, 0u);
    EXPECT_EQ(m.fibers_alive, 0u);
    EXPECT_EQ(m.fibers_runnable, 0u);
    EXPECT_EQ(m.fibers_parked, 0u);
    EXPECT_EQ(m.context_switches, 0u);
    EXPECT_EQ(m.chan_sends, 0u);
    EXPECT_EQ(m.selects, 0u);
    EXPECT_LE(m.worker_wakeups, m.worker_sleeps);
  }
}

// goro::metrics() in a fiber reads that fiber's runtime, not the default one; from a plain
// thread, the default runtime.
TEST(HttpAdversarialMetrics, FreeFunctionPicksTheRightRuntime) {
  goro::runtime rt{goro::options{.workers = 3}};
  goro::runtime_metrics inside;
  goro::wait_group wg;
  wg.add(1);
  rt.go([&] {
    inside = goro::metrics();
    wg.done();
  });
  wg.wait();
  EXPECT_EQ(inside.workers, 3u);
  EXPECT_GE(inside.spawns, 1u);
  EXPECT_GE(inside.fibers_alive, 1u) << "the calling fiber is alive";
  const goro::runtime_metrics outside = goro::metrics();  // the default runtime, started now
  EXPECT_GE(outside.workers, 1u);
  EXPECT_EQ(outside.spawns, outside.finished + outside.fibers_alive);
  // From several plain threads at once.
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([] {
      for (int i = 0; i < 200; ++i) {
        const goro::runtime_metrics m = goro::metrics();
        EXPECT_EQ(m.spawns, m.finished + m.fibers_alive);
      }
    });
  for (auto& t : threads) t.join();
}

// ---------------------------------------------------------------------------------------------
// Trace.

#if defined(GORO_TEST_HAVE_JSON)
nlohmann::json parse_trace(const std::string& text) {
  nlohmann::json j = nlohmann::json::parse(text);  // throws if it is not JSON
  EXPECT_TRUE(j.contains("traceEvents"));
  EXPECT_TRUE(j["traceEvents"].is_array());
  return j;
}
std::size_t slices(const nlohmann::json& j) {
  std::size_t n = 0;
  for (const auto& e : j["traceEvents"])
    if (e.value("ph", "") == "X") ++n;
  return n;
}
#endif

TEST(HttpAdversarialTrace, StopWithoutStartReturnsFalse) {
  EXPECT_FALSE(goro::trace_stop());
  EXPECT_FALSE(goro::trace_stop());
}

TEST(HttpAdversarialTrace, StartWhileStartedThrowsAndFirstTraceSurvives) {
  goro::runtime rt{goro::options{.workers = 2}};
  std::ostringstream first, second;
  goro::trace_start(first);
  EXPECT_THROW(goro::trace_start(second), std::logic_error);
  ping_pong(rt, 20);
  EXPECT_TRUE(goro::trace_stop());
  EXPECT_FALSE(goro::trace_stop());
  EXPECT_EQ(second.str(), "");
#if defined(GORO_TEST_HAVE_JSON)
  const nlohmann::json j = parse_trace(first.str());
  EXPECT_GE(slices(j), 2u);
#else
  EXPECT_NE(first.str().find("traceEvents"), std::string::npos);
#endif
}

TEST(HttpAdversarialTrace, StartStopTwice) {
  goro::runtime rt{goro::options{.workers = 2}};
  for (int round = 0; round < 2; ++round) {
    std::ostringstream out;
    goro::trace_start(out, goro::trace_options{.events_per_worker = 1024});
    ping_pong(rt, 10);
    EXPECT_TRUE(goro::trace_stop());
#if defined(GORO_TEST_HAVE_JSON)
    const nlohmann::json j = parse_trace(out.str());
    EXPECT_GE(slices(j), 2u) << "round " << round;
#endif
  }
}

TEST(HttpAdversarialTrace, UnopenablePathThrowsRuntimeErrorNamingIt) {
  const std::string path = "/nonexistent-dir-goro/deeper/trace.json";
  try {
    goro::trace_start(path);
    ADD_FAILURE() << "trace_start to an unopenable path did not throw";
    goro::trace_stop();
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
  }
  // No trace runs after the failure, and a new one can start.
  EXPECT_FALSE(goro::trace_stop());
  std::ostringstream out;
  goro::trace_start(out);
  EXPECT_TRUE(goro::trace_stop());
  EXPECT_NE(out.str().find("traceEvents"), std::string::npos);
}

TEST(HttpAdversarialTrace, ZeroEventBuffers) {
  goro::runtime rt{goro::options{.workers = 2}};
  std::ostringstream out;
  try {
    goro::trace_start(out, goro::trace_options{.events_per_worker = 0});
  } catch (const std::exception& e) {
    GTEST_SKIP() << "refused: " << e.what();
  }
  ping_pong(rt, 10);
  EXPECT_TRUE(goro::trace_stop());
#if defined(GORO_TEST_HAVE_JSON)
  const nlohmann::json j = parse_trace(out.str());
  EXPECT_EQ(slices(j), 0u);
#endif
}

TEST(HttpAdversarialTrace, FileTraceIsWritten) {
  const std::string path = (std::filesystem::temp_directory_path() /
                            ("goro-adv-trace-" + std::to_string(getpid()) + ".json"))
                               .string();
  {
    goro::runtime rt{goro::options{.workers = 2}};
    goro::trace_start(path);
    ping_pong(rt, 10);
    EXPECT_TRUE(goro::trace_stop());
  }
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  std::filesystem::remove(path);
#if defined(GORO_TEST_HAVE_JSON)
  const nlohmann::json j = parse_trace(text.str());
  EXPECT_GE(slices(j), 2u);
#else
  EXPECT_NE(text.str().find("traceEvents"), std::string::npos);
#endif
}

// Runtimes made and destroyed on other threads while a trace runs, and the stop racing them.
TEST(HttpAdversarialTrace, RuntimesComeAndGoDuringTrace) {
  std::ostringstream out;
  goro::trace_start(out, goro::trace_options{.events_per_worker = 4096});
  std::atomic<bool> stop{false};
  std::vector<std::thread> threads;
  for (int t = 0; t < 2; ++t)
    threads.emplace_back([&] {
      while (!stop.load()) {
        goro::runtime rt{goro::options{.workers = 2}};
        ping_pong(rt, 5);
      }
    });
  std::this_thread::sleep_for(200ms);
  EXPECT_TRUE(goro::trace_stop());
  // Keep making runtimes a little after the stop, then start and stop once more under them.
  std::ostringstream again;
  goro::trace_start(again);
  std::this_thread::sleep_for(50ms);
  stop = true;
  for (auto& t : threads) t.join();
  EXPECT_TRUE(goro::trace_stop());
#if defined(GORO_TEST_HAVE_JSON)
  const nlohmann::json j = parse_trace(out.str());
  EXPECT_GE(slices(j), 2u);
  parse_trace(again.str());
#endif
}

// trace_start from several threads at once: exactly one wins, the others get logic_error.
// trace_stop from a fiber while the others run ("callable from any thread or fiber").
TEST(HttpAdversarialTrace, StopFromAFiber) {
  goro::runtime rt{goro::options{.workers = 2}};
  std::ostringstream out;
  goro::trace_start(out);
  std::atomic<bool> stopped{false};
  goro::wait_group wg;
  wg.add(1);
  rt.go([&] {
    goro::this_fiber::sleep_for(20ms);
    stopped = goro::trace_stop();
    wg.done();
  });
  ping_pong(rt, 200);
  wg.wait();
  EXPECT_TRUE(stopped.load());
#if defined(GORO_TEST_HAVE_JSON)
  parse_trace(out.str());
#endif
}

TEST(HttpAdversarialTrace, ConcurrentStartsOneWins) {
  std::atomic<int> won{0}, refused{0};
  std::vector<std::ostringstream> outs(4);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&, t] {
      try {
        goro::trace_start(outs[static_cast<std::size_t>(t)],
                          goro::trace_options{.events_per_worker = 256});
        won.fetch_add(1);
      } catch (const std::logic_error&) {
        refused.fetch_add(1);
      }
    });
  for (auto& t : threads) t.join();
  EXPECT_EQ(won.load(), 1);
  EXPECT_EQ(refused.load(), 3);
  EXPECT_TRUE(goro::trace_stop());
  EXPECT_FALSE(goro::trace_stop());
}

// ---------------------------------------------------------------------------------------------
// dump and stack_high_water.

// ctest runs each test in a process of its own, where this one makes no runtime.
TEST(HttpAdversarialDiag, NoRuntimeAtAll) {
  std::ostringstream out;
  EXPECT_NO_THROW(goro::dump(out));
  EXPECT_TRUE(goro::stack_high_water().empty());
}

TEST(HttpAdversarialDiag, ConcurrentFromThreadsWhileFibersComeAndGo) {
  std::uint64_t fibers_before = 0;  // measured by earlier tests of this process, if any
  for (const goro::stack_use& s : goro::stack_high_water()) fibers_before += s.fibers;
  goro::runtime rt{goro::options{.workers = 2, .stack_watermark = true}};
  std::atomic<bool> stop{false};
  std::atomic<int> dumps{0};
  std::vector<std::thread> readers;
  for (int t = 0; t < 3; ++t)
    readers.emplace_back([&, t] {
      while (!stop.load()) {
        if (t == 0) {
          std::ostringstream out;
          goro::dump(out);
          dumps.fetch_add(1);
        } else {
          for (const goro::stack_use& s : goro::stack_high_water()) {
            EXPECT_NE(s.file, nullptr);
            EXPECT_GT(s.fibers, 0u);
            EXPECT_LE(s.max_bytes, s.stack_size);
          }
        }
      }
    });
  goro::wait_group wg;
  const int rounds = goro_test::sanitized ? 30 : 200;
  for (int round = 0; round < rounds; ++round) {
    goro::chan<int> ch(0);
    for (int i = 0; i < 8; ++i) {
      wg.add(1);
      rt.go([&, ch, i] {
        if (i % 2 == 0)
          ch.send(i);
        else
          ch.recv();
        wg.done();
      });
    }
  }
  // A fiber that calls dump itself, while others run.
  wg.add(1);
  rt.go([&] {
    std::ostringstream out;
    goro::dump(out);
    EXPECT_NE(out.str().find("fiber"), std::string::npos) << out.str();
    wg.done();
  });
  wg.wait();
  stop = true;
  for (auto& t : readers) t.join();
  EXPECT_GT(dumps.load(), 0);
  // Once everything finished, the sites are measured.
  for (int i = 0; i < 200 && rt.metrics().fibers_alive != 0; ++i) std::this_thread::sleep_for(5ms);
  const std::vector<goro::stack_use> use = goro::stack_high_water();
  ASSERT_FALSE(use.empty());
  std::uint64_t fibers = 0;
  for (const goro::stack_use& s : use) fibers += s.fibers;
  EXPECT_EQ(fibers - fibers_before, static_cast<std::uint64_t>(rounds * 8 + 1));
  for (std::size_t i = 1; i < use.size(); ++i) EXPECT_GE(use[i - 1].max_bytes, use[i].max_bytes);
}

// The dump names a parked fiber's spawn site (this file) and what it waits on.
TEST(HttpAdversarialDiag, DumpNamesAParkedFiber) {
  goro::runtime rt{goro::options{.workers = 2}};
  goro::chan<int> never(0);
  goro::chan<int> parked(1);
  goro::wait_group wg;
  wg.add(1);
  rt.go([&] {
    parked.send(1);
    never.recv();
    wg.done();
  });
  parked.recv();
  std::this_thread::sleep_for(50ms);
  std::ostringstream out;
  goro::dump(out);
  const std::string text = out.str();
  EXPECT_NE(text.find("chan receive"), std::string::npos) << text;
  EXPECT_NE(text.find("http_adversarial_test.cpp"), std::string::npos) << text;
  never.close();
  wg.wait();
}

}  // namespace
