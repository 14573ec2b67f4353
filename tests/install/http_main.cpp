// SPDX-License-Identifier: Apache-2.0
// The install-consumer test of the goro::http component (see CMakeLists.txt here): through the
// installed <goro/http.hpp> only, it serves one route on a loopback port, asks it with the
// client, checks the answer and stops the server gracefully. Exits 0 on success.
#include <goro/goro.hpp>
#include <goro/http.hpp>

#include <cstdio>
#include <stop_token>
#include <string>

int main() {
  std::string body;
  {
    goro::runtime rt{goro::options{.workers = 2}};
    rt.go([&body] {
      goro::http::router routes;
      routes.get("/hello", [](const goro::http::request&, goro::http::response& res) {
        res.body = "hello from goro::http";
      });
      goro::net::listener ln = goro::net::listen("tcp", "127.0.0.1:0");
      std::stop_source stop;
      goro::wait_group served;
      served.add(1);
      goro::go([&] {
        goro::http::server(routes).serve(ln, stop.get_token());
        served.done();
      });
      {
        goro::http::client client;
        body = client.get("http://" + ln.address() + "/hello").body;
      }
      stop.request_stop();
      served.wait();
    });
  }
  if (body != "hello from goro::http") {
    std::fprintf(stderr, "goro_consumer (http): got \"%s\"\n", body.c_str());
    return 1;
  }
  std::puts("goro_consumer (http): ok");
  return 0;
}
