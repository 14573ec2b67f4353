// SPDX-License-Identifier: Apache-2.0
// A TCP echo server, one fiber per connection, as a Go programmer writes it: accept in a loop,
// `go` a handler that reads and writes back until the peer closes. SIGINT or SIGTERM stop it
// gracefully: a fiber waits on a signalfd (goro::net::wait_readable, for descriptors goro does
// not own), closes the listener, and the accept loop ends.
//   05_echo_server [--listen HOST:PORT] [--workers N]   (default 127.0.0.1:0, one worker per CPU)
#include <signal.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <system_error>

#include <goro/goro.hpp>

namespace {

void serve(goro::net::conn c) {
  std::byte buf[16 * 1024];
  try {
    while (std::size_t n = c.read(buf)) c.write(std::span<const std::byte>(buf, n));
  } catch (const std::system_error& e) {
    std::fprintf(stderr, "connection: %s\n", e.what());  // a peer reset, for one
  }
}

}  // namespace

int main(int argc, char** argv) {
  std::string address = "127.0.0.1:0";
  goro::options opts;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (std::strcmp(argv[i], "--listen") == 0) address = argv[i + 1];
    if (std::strcmp(argv[i], "--workers") == 0)
      opts.workers = std::strtoul(argv[i + 1], nullptr, 10);
  }
  // Blocked before the runtime starts its threads, so they inherit the mask and the signals go
  // to the signalfd.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  const int signals = signalfd(-1, &stop_signals, SFD_NONBLOCK | SFD_CLOEXEC);

  goro::runtime rt(opts);
  rt.go([signals, address] {
    goro::net::listener ln = goro::net::listen("tcp", address);
    std::printf("%s\n", ln.address().c_str());
    std::fflush(stdout);
    goro::go([&ln, signals] {
      goro::net::wait_readable(signals);
      ln.close();  // the accept below fails, and the server stops
    });
    try {
      for (;;) goro::go(serve, ln.accept());
    } catch (const std::system_error&) {
      // closed by the signal fiber
    }
  });
  // ~runtime waits for every fiber: the accept loop, and the connections still open.
  return 0;
}
