// SPDX-License-Identifier: Apache-2.0
// stream: goro's side of the stream workload (WORKLOADS.md, "Network workloads"): bulk transfer
// over one loopback TCP connection. One program, two roles, as its Go peer
// (bench/peers/go/stream) has:
//
//   stream --listen HOST:PORT [--workers N] [--lifetime SECONDS]
//       the server: one fiber per connection reads into a 64 KiB buffer and discards, until end
//       of stream, then closes. Prints the bound address first (port 0: any free port).
//   stream --connect HOST:PORT [--seconds S] [--block BYTES] [--workers N]
//       the client: from a fiber, writes --block bytes (default 64 KiB) at a time for S seconds
//       (default 5), shuts its side down and waits for the server to close, so every byte
//       counted was read by the server; prints
//       "stream impl=goro bytes=N seconds=T mib_s=X".
//
// bench/echo runs the server against the neutral client bench/net/stream_load (the server's
// receive path, goro against Go) and this client against this server (both ends goro, set
// against both ends Go).
#include <cmath>
#include <csignal>
#include <cstdio>
#include <system_error>
#include <vector>

#include <goro/goro.hpp>
#include <goro/net.hpp>

#include "common.hpp"

namespace {

constexpr const char* usage =
    "usage: stream --listen HOST:PORT [--workers N] [--lifetime SECONDS]\n"
    "       stream --connect HOST:PORT [--seconds S] [--block BYTES] [--workers N]\n";

void drain(goro::net::conn c) {
  std::vector<std::byte> buf(64 * 1024);
  try {
    while (c.read(buf) != 0) {
    }
  } catch (const std::system_error&) {
    // A reset ends the transfer; the client sees its own error.
  }
}

int serve(goro::runtime& rt, const std::string& address) {
  goro::net::listener ln = goro::net::listen("tcp", address);
  std::printf("%s\n", ln.address().c_str());
  std::fflush(stdout);
  rt.go([ln = std::move(ln)]() mutable {
    for (;;) {
      goro::net::conn c;
      try {
        c = ln.accept();
      } catch (const std::system_error& e) {
        std::fprintf(stderr, "stream: accept: %s\n", e.what());
        continue;
      }
      netbench::set_nodelay(c.native_handle());
      goro::go(drain, std::move(c));
    }
  });
  return 0;  // ~runtime waits for the accept loop: the server runs until a signal.
}

int send_for(goro::runtime& rt, const std::string& address, double seconds, std::size_t block) {
  int status = 1;
  goro::chan<int> done;
  rt.go([&, done]() mutable {
    try {
      goro::net::conn c = goro::net::dial("tcp", address);
      netbench::set_nodelay(c.native_handle());
      std::vector<std::byte> data(block, std::byte{0x5a});
      std::uint64_t bytes = 0;
      const std::int64_t start = netbench::now_ns();
      const std::int64_t end = start + static_cast<std::int64_t>(seconds * 1e9);
      while (netbench::now_ns() < end) {
        c.write(data);
        bytes += block;
      }
      c.close_write();
      std::vector<std::byte> sink(4096);
      while (c.read(sink) != 0) {
      }
      const double elapsed = static_cast<double>(netbench::now_ns() - start) / 1e9;
      std::printf("stream impl=goro bytes=%llu seconds=%.3f mib_s=%.1f\n",
                  static_cast<unsigned long long>(bytes), elapsed,
                  static_cast<double>(bytes) / elapsed / (1024.0 * 1024.0));
      status = 0;
    } catch (const std::system_error& e) {
      std::fprintf(stderr, "stream: %s: %s\n", address.c_str(), e.what());
    }
    done.send(0);
  });
  done.recv();
  return status;
}

}  // namespace

int main(int argc, char** argv) {
  const netbench::flags f(
      argc, argv, {"listen", "connect", "workers", "lifetime", "seconds", "block"}, {}, usage);
  const auto workers = static_cast<std::size_t>(f.num("workers", 1));
  const double lifetime = f.num("lifetime", 0);
  const auto block = static_cast<std::size_t>(f.num("block", 64 * 1024));
  if (workers == 0 || block == 0) f.fail("--workers and --block must be > 0");
  if (f.has("listen") == f.has("connect")) f.fail("give one of --listen and --connect");
  if (lifetime > 0) ::alarm(static_cast<unsigned>(std::ceil(lifetime)));
  std::signal(SIGPIPE, SIG_IGN);

  goro::runtime rt(goro::options{.workers = workers});
  if (f.has("listen")) return serve(rt, f.str("listen", ""));
  return send_for(rt, f.str("connect", ""), f.num("seconds", 5), block);
}
