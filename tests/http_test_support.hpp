// SPDX-License-Identifier: Apache-2.0
// Helpers shared by the HTTP tests (http_test.cpp, http_adversarial_test.cpp): a fixture that
// runs each test on a runtime of its own and fails it if it leaves a descriptor open (counted
// by net_test_support.hpp), a goro::http server on a loopback port and the base for one with
// its own accept loop, a raw one-connection server for scripting a misbehaving peer, the routes
// most tests serve, and readers for what a peer sends back.
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <span>
#include <stdexcept>
#include <stop_token>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>

#include <gtest/gtest.h>

#include "goro/goro.hpp"
#include "goro/http.hpp"
#include "net_test_support.hpp"

namespace goro_test {

// Runs `body` in a fiber of a fresh runtime and returns once every fiber it started ended; the
// descriptor count of the process must be the same before and after.
class http_test : public ::testing::Test {
 protected:
  void SetUp() override { fds_before_ = open_descriptors(); }
  void TearDown() override { EXPECT_EQ(open_descriptors(), fds_before_) << "a descriptor leaked"; }

  static void run(std::function<void()> body, std::size_t workers = 2) {
    goro::runtime rt{goro::options{.workers = workers}};
    rt.go(std::move(body));
  }

 private:
  int fds_before_ = 0;
};

// A listener on a loopback port and the fibers that serve it, each counted in done_. stop()
// asks them to stop and waits for them (a graceful stop), as the destructor does; a derived
// server whose fibers use its own members calls stop() in its own destructor, before they go.
class loopback_server {
 public:
  loopback_server(const loopback_server&) = delete;
  loopback_server& operator=(const loopback_server&) = delete;

  std::string url(std::string_view path) const { return "http://" + address_ + std::string(path); }
  const std::string& address() const { return address_; }
  bool listening() const { return ln_.is_open(); }
  void request_stop() { stop_.request_stop(); }
  void stop() {
    stop_.request_stop();
    if (!stopped_) done_.wait();
    stopped_ = true;
  }

 protected:
  loopback_server() : ln_(goro::net::listen("tcp", "127.0.0.1:0")), address_(ln_.address()) {}
  ~loopback_server() { stop(); }

  goro::net::listener ln_;
  std::stop_source stop_;
  goro::wait_group done_;

 private:
  std::string address_;
  bool stopped_ = false;
};

// A goro::http server on a loopback port, serving through server::serve (the documented path)
// from a fiber.
class test_server : public loopback_server {
 public:
  explicit test_server(goro::http::router routes, goro::http::server_options opts = {}) {
    done_.add(1);
    goro::go([this, srv = goro::http::server(std::move(routes), opts)]() mutable {
      srv.serve(ln_, stop_.get_token());
      done_.done();
    });
  }
};

// A one-connection raw server on a loopback port: accepts once and calls `script` with the
// connection, whose deadline is 20 s away. A system_error out of the script (the client went
// away) ends it quietly; the destructor waits for it.
class raw_server {
 public:
  explicit raw_server(std::function<void(goro::net::conn&)> script)
      : ln_(goro::net::listen("tcp", "127.0.0.1:0")) {
    done_.add(1);
    goro::go([this, script = std::move(script)] {
      try {
        goro::net::conn c = ln_.accept(stop_.get_token());
        c.set_deadline(std::chrono::steady_clock::now() + std::chrono::seconds(20));
        script(c);
      } catch (const std::system_error&) {
      }
      done_.done();
    });
  }
  ~raw_server() {
    stop_.request_stop();
    done_.wait();
  }
  raw_server(const raw_server&) = delete;
  raw_server& operator=(const raw_server&) = delete;

  std::string url(std::string_view path = "/") const {
    return "http://" + ln_.address() + std::string(path);
  }
  std::string address() const { return ln_.address(); }

 private:
  goro::net::listener ln_;
  std::stop_source stop_;
  goro::wait_group done_;
};

// /ok answers "ok", /peer the client's address, /path the request target; a POST to /echo
// answers its body; /throw's handler throws.
inline goro::http::router basic_routes() {
  namespace http = goro::http;
  http::router r;
  r.get("/ok", [](const http::request&, http::response& res) { res.body = "ok"; });
  r.get("/peer",
        [](const http::request& req, http::response& res) { res.body = req.remote_address; });
  r.get("/path", [](const http::request& req, http::response& res) { res.body = req.target; });
  r.post("/echo", [](const http::request& req, http::response& res) { res.body = req.body; });
  r.get("/throw", [](const http::request&, http::response&) -> void {
    throw std::runtime_error("handler failed");
  });
  return r;
}

// Appends everything the peer sends to `got` until it closes the connection. A read's
// system_error propagates, with what came before it already in `got`.
inline void read_all(goro::net::conn& c, std::string& got) {
  char buf[4096];
  for (;;) {
    const std::size_t n = c.read(std::as_writable_bytes(std::span(buf)));
    if (n == 0) return;
    got.append(buf, n);
  }
}

// Everything the peer sends until it closes the connection.
inline std::string read_all(goro::net::conn& c) {
  std::string got;
  read_all(c, got);
  return got;
}

// Reads one request's header section (no body) from `c`: up to the blank line, or what came
// before the end of the stream.
inline std::string read_request_head(goro::net::conn& c) {
  std::string got;
  char buf[4096];
  while (got.find("\r\n\r\n") == std::string::npos) {
    const std::size_t n = c.read(std::as_writable_bytes(std::span(buf)));
    if (n == 0) return got;
    got.append(buf, n);
  }
  return got;
}

// An answer's first line, without its CRLF.
inline std::string status_line(const std::string& answer) {
  return answer.substr(0, answer.find("\r\n"));
}

}  // namespace goro_test
