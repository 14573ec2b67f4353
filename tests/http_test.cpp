// SPDX-License-Identifier: Apache-2.0
// goro::http's server and client against each other on loopback (docs/http.md): keep-alive
// reuse, pipelining, chunked bodies, every limit and status code, slow clients cut off by the
// header timeout, the client's deadline and stop request in each phase of a request (connect,
// send, wait, read), and graceful shutdown with requests in flight. Every test runs on its own
// runtime and checks that the process has as many open descriptors at its end as at its start.
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <optional>
#include <set>
#include <stop_token>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include <gtest/gtest.h>

#include "goro/goro.hpp"
#include "goro/http.hpp"
#include "http_test_support.hpp"
#include "test_support.hpp"

namespace {

using namespace std::chrono_literals;
using clock_type = std::chrono::steady_clock;
namespace http = goro::http;

using goro_test::basic_routes;
using goro_test::http_test;
using goro_test::raw_server;
using goro_test::read_all;
using goro_test::read_request_head;
using goro_test::status_line;
using goro_test::test_server;

// Writes raw bytes to the server and returns its whole answer (the server closes after it).
std::string round_trip(const std::string& address, std::string_view raw) {
  goro::net::conn c = goro::net::dial("tcp", address);
  c.set_deadline(clock_type::now() + 10s);
  c.write(raw);
  return read_all(c);
}

TEST_F(http_test, KeepAliveReusesOneConnection) {
  run([] {
    test_server s(basic_routes());
    http::client cl;
    std::set<std::string> peers;
    for (int i = 0; i < 20; ++i) {
      const http::response r = cl.get(s.url("/peer"));
      EXPECT_EQ(r.status, 200);
      peers.insert(r.body);
    }
    EXPECT_EQ(peers.size(), 1u) << "each request should reuse the pooled connection";
    cl.close_idle();
  });
}

TEST_F(http_test, PipelinedRequestsAnsweredInOrder) {
  run([] {
    test_server s(basic_routes());
    const std::string answer =
        round_trip(s.address(),
                   "GET /path?1 HTTP/1.1\r\nHost: x\r\n\r\n"
                   "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nsecnd"
                   "GET /path?3 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    const std::size_t a = answer.find("/path?1");
    const std::size_t b = answer.find("secnd");
    const std::size_t c = answer.find("/path?3");
    ASSERT_NE(a, std::string::npos) << answer;
    ASSERT_NE(b, std::string::npos) << answer;
    ASSERT_NE(c, std::string::npos) << answer;
    EXPECT_LT(a, b);
    EXPECT_LT(b, c);
    EXPECT_NE(answer.find("Connection: close"), std::string::npos);
  });
}

TEST_F(http_test, ChunkedRequestBodies) {
  run([] {
    test_server s(basic_routes());
    const std::string answer = round_trip(s.address(),
                                          "POST /echo HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                                          "Transfer-Encoding: chunked\r\n\r\n"
                                          "5\r\nhello\r\n7\r\n, chunk\r\n0\r\n\r\n");
    EXPECT_EQ(status_line(answer), "HTTP/1.1 200 OK");
    EXPECT_NE(answer.find("\r\n\r\nhello, chunk"), std::string::npos) << answer;

    http::client cl;
    http::request req;
    req.method = "POST";
    req.headers.set("Transfer-Encoding", "chunked");
    req.body = std::string(100000, 'c');
    const http::response r = cl.send(s.url("/echo"), req);
    EXPECT_EQ(r.status, 200);
    EXPECT_EQ(r.body, req.body);
  });
}

TEST_F(http_test, ClientReadsChunkedAndContentLengthResponses) {
  run([] {
    raw_server srv([](goro::net::conn& c) {
      std::string req;
      char buf[1024];
      for (int answered = 0; answered < 2;) {
        const std::size_t n = c.read(std::as_writable_bytes(std::span(buf)));
        if (n == 0) return;
        req.append(buf, n);
        std::size_t end;
        while ((end = req.find("\r\n\r\n")) != std::string::npos) {
          req.erase(0, end + 4);
          c.write(answered++ == 0
                      ? std::string_view("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                                         "3\r\nabc\r\n4\r\ndefg\r\n0\r\n\r\n")
                      : std::string_view("HTTP/1.1 201 Created\r\nContent-Length: 3\r\n\r\nxyz"));
        }
      }
      read_all(c);  // until the client closes its pooled connection
    });
    {
      http::client cl;
      const std::string url = srv.url();
      const http::response a = cl.get(url);
      EXPECT_EQ(a.status, 200);
      EXPECT_EQ(a.body, "abcdefg");
      const http::response b = cl.get(url);
      EXPECT_EQ(b.status, 201);
      EXPECT_EQ(b.body, "xyz");
    }
  });
}

TEST_F(http_test, LimitsAndStatusCodes) {
  run([] {
    http::server_options opts;
    opts.max_header_bytes = 1024;
    opts.max_body_bytes = 1000;
    test_server s(basic_routes(), opts);
    EXPECT_EQ(status_line(round_trip(s.address(), "NOT HTTP AT ALL\r\n\r\n")),
              "HTTP/1.1 400 Bad Request");
    EXPECT_EQ(status_line(round_trip(s.address(), "GET /ok HTTP/1.1\r\nHost: x\r\nX-Big: " +
                                                      std::string(2000, 'a') + "\r\n\r\n")),
              "HTTP/1.1 431 Request Header Fields Too Large");
    EXPECT_EQ(status_line(round_trip(
                  s.address(), "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 1001\r\n\r\n")),
              "HTTP/1.1 413 Content Too Large");
    EXPECT_EQ(status_line(round_trip(s.address(),
                                     "POST /echo HTTP/1.1\r\nHost: x\r\n"
                                     "Transfer-Encoding: chunked\r\n\r\n"
                                     "3e8\r\n" +
                                         std::string(1000, 'a') + "\r\n1\r\na\r\n0\r\n\r\n")),
              "HTTP/1.1 413 Content Too Large");

    http::client cl;
    EXPECT_EQ(cl.get(s.url("/nowhere")).status, 404);
    http::request post;
    post.method = "POST";
    const http::response wrong = cl.send(s.url("/ok"), post);
    EXPECT_EQ(wrong.status, 405);
    EXPECT_EQ(wrong.headers.get("Allow"), "GET, HEAD");  // a GET handler answers HEAD too
    EXPECT_EQ(cl.get(s.url("/throw")).status, 500);
    http::request head;
    head.method = "HEAD";
    const http::response h = cl.send(s.url("/ok"), head);
    EXPECT_EQ(h.status, 200);
    EXPECT_EQ(h.body, "");
    EXPECT_EQ(h.headers.get("Content-Length"), "2");
    // The server keeps serving after every refusal above.
    const http::response ok = cl.get(s.url("/ok"));
    EXPECT_EQ(ok.status, 200);
    EXPECT_EQ(ok.body, "ok");
  });
}

// The router alone: a 405's Allow lists the path's methods sorted, with HEAD beside GET (a GET
// handler answers HEAD), as Go's ServeMux does.
TEST(http_router, AllowListsThePathsMethodsSortedWithHeadBesideGet) {
  http::router r;
  const http::handler ok = [](const http::request&, http::response& res) { res.body = "ok"; };
  r.post("/x", ok);
  r.get("/x", ok);
  r.handle("DELETE", "/x", ok);
  http::request req;
  req.method = "PUT";
  req.target = "/x";
  http::response res;
  r.dispatch(req, res);
  EXPECT_EQ(res.status, 405);
  EXPECT_EQ(res.headers.get("Allow"), "DELETE, GET, HEAD, POST");
  r.handle("HEAD", "/x", ok);  // an explicit HEAD is listed once
  http::response again;
  r.dispatch(req, again);
  EXPECT_EQ(again.headers.get("Allow"), "DELETE, GET, HEAD, POST");
}

// Paths match %-decoded, as Go's ServeMux matches URL.Path (they matched as sent before: "/o%6B"
// was a 404); a malformed escape is a 400, as Go's server refuses the URL.
TEST(http_router, MatchesThePathPercentDecoded) {
  http::router r;
  r.get("/ok", [](const http::request&, http::response& res) { res.body = "ok"; });
  r.get("/a b", [](const http::request&, http::response& res) { res.body = "space"; });
  const auto answer = [&r](std::string target) {
    http::request req;
    req.target = std::move(target);
    http::response res;
    r.dispatch(req, res);
    return std::to_string(res.status) + " " + res.body;
  };
  EXPECT_EQ(answer("/o%6B"), "200 ok");
  EXPECT_EQ(answer("/o%6b?x=%zz"), "200 ok");  // the query is not the path
  EXPECT_EQ(answer("/a%20b"), "200 space");
  EXPECT_EQ(answer("/ok%"), "400 invalid URL escape");
  EXPECT_EQ(answer("/o%6"), "400 invalid URL escape");
  EXPECT_EQ(answer("/%zz"), "400 invalid URL escape");
  EXPECT_EQ(answer("/o%2Fk"), "404 not found");
}

TEST_F(http_test, ExpectContinueGetsInterimAnswer) {
  run([] {
    test_server s(basic_routes());
    goro::net::conn c = goro::net::dial("tcp", s.address());
    c.set_deadline(clock_type::now() + 10s);
    c.write(
        std::string_view("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n"
                         "Expect: 100-continue\r\nConnection: close\r\n\r\n"));
    char buf[256];
    const std::size_t n = c.read(std::as_writable_bytes(std::span(buf)));
    EXPECT_EQ(std::string_view(buf, n), "HTTP/1.1 100 Continue\r\n\r\n");
    c.write(std::string_view("body"));
    const std::string rest = read_all(c);
    EXPECT_EQ(status_line(rest), "HTTP/1.1 200 OK");
    EXPECT_NE(rest.find("\r\n\r\nbody"), std::string::npos);
  });
}

TEST_F(http_test, SlowLorisCutOffByHeaderTimeout) {
  run([] {
    http::server_options opts;
    opts.read_header_timeout = 200ms;
    test_server s(basic_routes(), opts);
    goro::net::conn c = goro::net::dial("tcp", s.address());
    const auto start = clock_type::now();
    const std::string_view trickle =
        "GET /ok HTTP/1.1\r\nHost: x\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaa";
    bool cut = false;
    for (char ch : trickle) {
      try {
        c.write(std::string_view(&ch, 1));
      } catch (const std::system_error&) {
        cut = true;  // reset by the server
        break;
      }
      // One byte per 50 ms: a client whose header takes 1.3 s.
      goro::this_fiber::sleep_for(50ms);
    }
    if (!cut) {
      c.set_read_deadline(clock_type::now() + 5s);
      try {
        EXPECT_EQ(read_all(c), "") << "the server answered a request it never got whole";
      } catch (const std::system_error& e) {
        EXPECT_EQ(e.code(), std::errc::connection_reset);
      }
    }
    const auto elapsed = clock_type::now() - start;
    EXPECT_GE(elapsed, 200ms);
    EXPECT_LT(elapsed, 5s);
  });
}

TEST_F(http_test, IdleConnectionClosedByIdleTimeout) {
  run([] {
    http::server_options opts;
    opts.idle_timeout = 100ms;
    test_server s(basic_routes(), opts);
    goro::net::conn c = goro::net::dial("tcp", s.address());
    c.set_deadline(clock_type::now() + 5s);
    const auto start = clock_type::now();
    EXPECT_EQ(read_all(c), "");
    EXPECT_GE(clock_type::now() - start, 90ms);

    // A pooled connection the server closed this way is replaced by the client, unseen.
    http::client cl;
    EXPECT_EQ(cl.get(s.url("/ok")).status, 200);
    goro::this_fiber::sleep_for(300ms);  // past the server's idle timeout: it closes the conn
    EXPECT_EQ(cl.get(s.url("/ok")).body, "ok");
  });
}

// ---- the client's deadline and stop request in each phase of a request

enum class phase { connect, send, wait, read };
enum class limit { deadline, stop };

struct phase_case {
  phase when;
  limit how;
};

class http_client_limit_test : public http_test,
                               public ::testing::WithParamInterface<phase_case> {};

// A peer that lets the client get as far as `when` and no further, until `release` closes;
// `reached` receives once the client is in that phase.
void misbehave(phase when, goro::net::conn& c, goro::chan<int> reached, goro::chan<int> release) {
  if (when == phase::send) {
    reached.send(1);  // never read: the client's write fills the socket buffers and waits
    release.recv();
    return;
  }
  if (read_request_head(c).find("\r\n\r\n") == std::string::npos) return;  // the client left
  if (when == phase::read) {
    c.write(std::string_view("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly ten.."));
  }
  reached.send(1);
  release.recv();
}

TEST_P(http_client_limit_test, EndsTheRequest) {
  const phase_case pc = GetParam();
  run([pc] {
    goro::chan<int> reached(1);
    goro::chan<int> release;
    std::string address;
    int raw_listener = -1;
    std::vector<int> fillers;
    std::optional<raw_server> peer;
    if (pc.when == phase::connect) {
      // A listener whose accept queue is full: the kernel drops the next SYN, and the dial
      // waits for an answer that does not come.
      raw_listener = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
      sockaddr_in sa{};
      sa.sin_family = AF_INET;
      sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      socklen_t len = sizeof sa;
      ASSERT_EQ(::bind(raw_listener, reinterpret_cast<sockaddr*>(&sa), sizeof sa), 0);
      ASSERT_EQ(::listen(raw_listener, 0), 0);
      ASSERT_EQ(::getsockname(raw_listener, reinterpret_cast<sockaddr*>(&sa), &len), 0);
      for (int i = 0; i < 2; ++i) {
        const int f = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        ::connect(f, reinterpret_cast<sockaddr*>(&sa), sizeof sa);
        fillers.push_back(f);
      }
      address = "127.0.0.1:" + std::to_string(ntohs(sa.sin_port));
      reached.send(1);
    } else {
      peer.emplace([&](goro::net::conn& c) { misbehave(pc.when, c, reached, release); });
      address = peer->address();
    }

    std::stop_source stop;
    if (pc.how == limit::stop) {
      goro::go([&] {
        reached.recv();
        // Into the phase: the dial waiting for its SYN to be answered, the write for room.
        if (pc.when == phase::connect || pc.when == phase::send) goro::this_fiber::sleep_for(100ms);
        stop.request_stop();
      });
    }
    http::client cl;
    http::request req;
    if (pc.when == phase::send) {
      req.method = "POST";
      req.body = std::string(32 * 1024 * 1024, 's');
    }
    const auto start = clock_type::now();
    const auto deadline =
        pc.how == limit::deadline ? start + 300ms : goro::net::deadline_time::max();
    try {
      cl.send("http://" + address + "/", std::move(req), deadline, stop.get_token());
      ADD_FAILURE() << "the request should have failed";
    } catch (const std::system_error& e) {
      EXPECT_EQ(e.code(),
                pc.how == limit::deadline ? std::errc::timed_out : std::errc::operation_canceled)
          << e.what();
    }
    const auto elapsed = clock_type::now() - start;
    if (pc.how == limit::deadline) {
      EXPECT_GE(elapsed, 290ms);
    }
    EXPECT_LT(elapsed, 10s);
    if (pc.how == limit::deadline && pc.when != phase::connect) reached.recv();
    release.close();
    peer.reset();
    for (int f : fillers) ::close(f);
    if (raw_listener >= 0) ::close(raw_listener);
  });
}

std::vector<phase_case> every_phase_and_limit() {
  std::vector<phase_case> cases;
  for (phase p : {phase::connect, phase::send, phase::wait, phase::read}) {
    for (limit l : {limit::deadline, limit::stop}) cases.push_back({p, l});
  }
  return cases;
}

std::string phase_case_name(const ::testing::TestParamInfo<phase_case>& info) {
  static constexpr const char* phases[] = {"Connect", "Send", "Wait", "Read"};
  return std::string(phases[static_cast<int>(info.param.when)]) +
         (info.param.how == limit::deadline ? "Deadline" : "Stop");
}

INSTANTIATE_TEST_SUITE_P(Phases, http_client_limit_test,
                         ::testing::ValuesIn(every_phase_and_limit()), phase_case_name);

// ---- graceful shutdown

TEST_F(http_test, GracefulShutdownFinishesRequestsInFlight) {
  run([] {
    constexpr int in_flight = 8;
    goro::chan<int> entered(in_flight);
    goro::chan<int> release;
    http::router r = basic_routes();
    r.get("/slow", [&](const http::request&, http::response& res) {
      entered.send(1);
      release.recv();  // until the test closes it
      res.body = std::string(100000, 'z');
    });
    test_server s(std::move(r));

    // Two idle keep-alive connections: each made one request and waits.
    std::vector<goro::net::conn> idle;
    for (int i = 0; i < 2; ++i) {
      goro::net::conn c = goro::net::dial("tcp", s.address());
      c.set_deadline(clock_type::now() + 10s);
      c.write(std::string_view("GET /ok HTTP/1.1\r\nHost: x\r\n\r\n"));
      char buf[512];
      std::string got;
      while (got.find("\r\n\r\nok") == std::string::npos) {
        const std::size_t n = c.read(std::as_writable_bytes(std::span(buf)));
        ASSERT_GT(n, 0u);
        got.append(buf, n);
      }
      idle.push_back(std::move(c));
    }

    http::client cl;
    std::atomic<int> complete{0};
    goro::wait_group clients;
    clients.add(in_flight);
    for (int i = 0; i < in_flight; ++i) {
      goro::go([&] {
        try {
          const http::response res = cl.get(s.url("/slow"), clock_type::now() + 20s);
          if (res.status == 200 && res.body == std::string(100000, 'z') &&
              res.headers.get("Connection") == "close") {
            complete.fetch_add(1);
          }
        } catch (const std::exception& e) {
          ADD_FAILURE() << "a request in flight failed: " << e.what();
        }
        clients.done();
      });
    }
    for (int i = 0; i < in_flight; ++i) entered.recv();

    s.request_stop();
    // Idle connections are closed at once; the server answers no new request on them.
    for (auto& c : idle) EXPECT_EQ(read_all(c), "");
    release.close();
    clients.wait();
    s.stop();  // serve() has returned
    EXPECT_EQ(complete.load(), in_flight) << "a request in flight was lost or cut";
    EXPECT_FALSE(s.listening());
    cl.close_idle();
  });
}

// ---- many fibers at once

class http_workers_test : public http_test, public ::testing::WithParamInterface<std::size_t> {};

TEST_P(http_workers_test, ConcurrentClientsAllAnswered) {
  run(
      [] {
        test_server s(basic_routes());
        http::client cl;
        constexpr int fibers = 16;
        constexpr int each = 20;
        std::atomic<int> ok{0};
        goro::wait_group wg;
        wg.add(fibers);
        for (int f = 0; f < fibers; ++f) {
          goro::go([&, f] {
            for (int i = 0; i < each; ++i) {
              http::request req;
              req.method = "POST";
              req.body = std::to_string(f) + ":" + std::to_string(i);
              const http::response r = cl.send(s.url("/echo"), req, clock_type::now() + 20s);
              if (r.status == 200 && r.body == req.body) ok.fetch_add(1);
            }
            wg.done();
          });
        }
        wg.wait();
        EXPECT_EQ(ok.load(), fibers * each);
        cl.close_idle();
      },
      GetParam());
}

INSTANTIATE_TEST_SUITE_P(Workers, http_workers_test, ::testing::Values(1, 2, 4),
                         goro_test::worker_count_name);

}  // namespace
