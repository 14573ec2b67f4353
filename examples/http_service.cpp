// SPDX-License-Identifier: Apache-2.0
// A small HTTP microservice on goro::http, as a Go programmer writes one with net/http: a
// handler per endpoint, each request in its own fiber, a fan-out to other services under a
// deadline, and a graceful stop on SIGINT or SIGTERM (a fiber waits on a signalfd and requests
// the server's stop; the server finishes the requests in flight and returns; exit status 0).
//   http_service --listen HOST:PORT [--workers N]   (prints the address it listens on)
// Endpoints:
//   GET  /healthz                 200 "ok"
//   GET  /plaintext               200 text/plain "Hello, World!"
//   GET  /json                    200 application/json {"message":"Hello, World!"}
//   POST /echo                    200 with the request's body
//   GET  /fanout?n=K&timeout_ms=T calls this service's own /json K times concurrently through
//                                 the goro client; 200 {"ok":A,"timed_out":B}, A counting the
//                                 calls that answered within T ms. Answers in about T ms at most.
#include <signal.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <charconv>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <stop_token>
#include <string>
#include <string_view>

#include <goro/goro.hpp>
#include <goro/http.hpp>
#include <nlohmann/json.hpp>

namespace {

// The query parameter `key` as a number in [lo, hi], or `fallback` when absent; nullopt when
// it is not a number in range.
std::optional<long> number_param(const goro::http::request& req, std::string_view key,
                                 long fallback, long lo, long hi) {
  const auto text = req.query(key);
  if (!text) return fallback;
  long v = 0;
  const auto [end, ec] = std::from_chars(text->data(), text->data() + text->size(), v);
  if (ec != std::errc() || end != text->data() + text->size() || v < lo || v > hi) {
    return std::nullopt;
  }
  return v;
}

void bad_request(goro::http::response& res, std::string_view why) {
  res.status = 400;
  res.headers.set("Content-Type", "text/plain");
  res.body = std::string(why);
}

// /fanout: K fibers each call /json with the request's deadline and a shared stop token; this
// fiber counts their answers until all came or `after(T)` fires, then cancels the rest and
// waits for them (they end at once: their calls see the stop request).
void fanout(goro::http::client& client, const std::string& json_url, const goro::http::request& req,
            goro::http::response& res) {
  const auto n = number_param(req, "n", 1, 0, 1000);
  const auto timeout_ms = number_param(req, "timeout_ms", 1000, 0, 60'000);
  if (!n || !timeout_ms) return bad_request(res, "n must be 0..1000, timeout_ms 0..60000");
  const auto timeout = std::chrono::milliseconds(*timeout_ms);
  const auto deadline = std::chrono::steady_clock::now() + timeout;

  std::stop_source cancel;
  goro::chan<bool> answers(static_cast<std::size_t>(*n));  // room for all: no sender waits
  goro::wait_group calls;
  calls.add(*n);
  for (long i = 0; i < *n; ++i) {
    goro::go([&, token = cancel.get_token()] {
      bool ok = false;
      try {
        ok = client.get(json_url, deadline, token).status == 200;
      } catch (const std::exception&) {
        // timed out, cancelled or failed: not ok
      }
      answers.send(ok);
      calls.done();
    });
  }
  long ok = 0;
  long received = 0;
  bool expired = false;
  const goro::time_channel timer = goro::after(timeout);
  while (received < *n && !expired) {
    goro::select(goro::on_recv(answers,
                               [&](std::optional<bool> v) {
                                 ++received;
                                 if (v && *v) ++ok;
                               }),
                 goro::on_recv(timer, [&] { expired = true; }));
  }
  cancel.request_stop();
  calls.wait();
  res.headers.set("Content-Type", "application/json");
  res.body = nlohmann::json{{"ok", ok}, {"timed_out", *n - ok}}.dump();
}

}  // namespace

int main(int argc, char** argv) {
  std::string address;
  goro::options opts;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (std::strcmp(argv[i], "--listen") == 0) address = argv[i + 1];
    if (std::strcmp(argv[i], "--workers") == 0)
      opts.workers = std::strtoul(argv[i + 1], nullptr, 10);
  }
  if (address.empty()) {
    std::fprintf(stderr, "usage: %s --listen HOST:PORT [--workers N]\n", argv[0]);
    return 2;
  }
  // Blocked before the runtime starts its threads, so they inherit the mask and the signals go
  // to the signalfd.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  const int signals = signalfd(-1, &stop_signals, SFD_NONBLOCK | SFD_CLOEXEC);

  int status = 0;
  {
    goro::runtime rt(opts);
    rt.go([&] {
      goro::net::listener ln;
      try {
        ln = goro::net::listen("tcp", address);
      } catch (const std::exception& e) {
        std::fprintf(stderr, "http_service: %s\n", e.what());
        status = 1;
        return;
      }
      std::printf("%s\n", ln.address().c_str());
      std::fflush(stdout);

      goro::http::client client;
      const std::string json_url = "http://" + ln.address() + "/json";
      goro::http::router routes;
      routes.get("/healthz", [](const goro::http::request&, goro::http::response& res) {
        res.headers.set("Content-Type", "text/plain");
        res.body = "ok";
      });
      routes.get("/plaintext", [](const goro::http::request&, goro::http::response& res) {
        res.headers.set("Content-Type", "text/plain");
        res.body = "Hello, World!";
      });
      routes.get("/json", [](const goro::http::request&, goro::http::response& res) {
        res.headers.set("Content-Type", "application/json");
        res.body = nlohmann::json{{"message", "Hello, World!"}}.dump();
      });
      routes.post("/echo", [](const goro::http::request& req, goro::http::response& res) {
        if (const auto type = req.headers.get("Content-Type"))
          res.headers.set("Content-Type", *type);
        res.body = req.body;
      });
      routes.get("/fanout", [&](const goro::http::request& req, goro::http::response& res) {
        fanout(client, json_url, req, res);
      });

      std::stop_source stop;
      goro::go([signals, &stop] {
        goro::net::wait_readable(signals);
        stop.request_stop();
      });
      goro::http::server(std::move(routes)).serve(ln, stop.get_token());
    });
  }  // ~runtime waits for every fiber
  close(signals);
  return status;
}
