// SPDX-License-Identifier: Apache-2.0
// echo_server: goro's side of the echo workload (WORKLOADS.md, "Network workloads"): a TCP
// server that writes back whatever it reads, one fiber per connection, with a 4 KiB buffer as
// its Go peer (bench/peers/go/echo) has. The accept loop is a fiber too, as Go's is a goroutine.
//
//   echo_server [--listen HOST:PORT] [--workers N] [--lifetime SECONDS]
//
// --listen defaults to 127.0.0.1:0 (any free port); the bound address is stdout's first line.
// --workers is goro::options::workers (default 1). --lifetime ends the process after that many
// seconds (SIGALRM), so a benchmark script that dies cannot leave it running. bench/echo drives
// it with echo_load.
#include <array>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <system_error>

#include <goro/goro.hpp>
#include <goro/net.hpp>

#include "common.hpp"

namespace {

constexpr const char* usage =
    "usage: echo_server [--listen HOST:PORT] [--workers N] [--lifetime SECONDS]\n";

void serve(goro::net::conn c) {
  std::array<std::byte, 4096> buf;
  try {
    for (;;) {
      const std::size_t n = c.read(buf);
      if (n == 0) return;
      c.write(std::span<const std::byte>(buf.data(), n));
    }
  } catch (const std::system_error&) {
    // The peer reset the connection: drop it, as Go's peer does.
  }
}

}  // namespace

int main(int argc, char** argv) {
  const netbench::flags f(argc, argv, {"listen", "workers", "lifetime"}, {}, usage);
  const std::string address = f.str("listen", "127.0.0.1:0");
  const auto workers = static_cast<std::size_t>(f.num("workers", 1));
  const double lifetime = f.num("lifetime", 0);
  if (workers == 0) f.fail("--workers must be > 0");
  if (lifetime > 0) ::alarm(static_cast<unsigned>(std::ceil(lifetime)));
  std::signal(SIGPIPE, SIG_IGN);

  goro::runtime rt(goro::options{.workers = workers});
  goro::net::listener ln = goro::net::listen("tcp", address);
  std::printf("%s\n", ln.address().c_str());
  std::fflush(stdout);
  rt.go([ln = std::move(ln)]() mutable {
    for (;;) {
      goro::net::conn c;
      try {
        c = ln.accept();
      } catch (const std::system_error& e) {
        std::fprintf(stderr, "echo_server: accept: %s\n", e.what());
        continue;
      }
      netbench::set_nodelay(c.native_handle());  // as Go sets it on every TCP connection
      goro::go(serve, std::move(c));
    }
  });
  // ~runtime waits for the accept loop, which never ends: the process runs until a signal.
}
