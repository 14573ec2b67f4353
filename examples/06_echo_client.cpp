// SPDX-License-Identifier: Apache-2.0
// A client for 05_echo_server: 8 fibers each dial, send a few lines and check the echo, under a
// deadline, then the main thread (a plain thread: goro calls simply block it) sums up.
//   06_echo_client HOST:PORT
#include <chrono>
#include <cstdio>
#include <string>
#include <system_error>

#include <goro/goro.hpp>

int main(int argc, char** argv) {
  using namespace std::chrono_literals;
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s HOST:PORT\n", argv[0]);
    return 2;
  }
  const std::string address = argv[1];
  goro::chan<int> echoed(8);
  for (int id = 0; id < 8; ++id) {
    goro::go([=] {
      int ok = 0;
      try {
        goro::net::conn c = goro::net::dial("tcp", address, 2s);
        c.set_deadline(std::chrono::steady_clock::now() + 5s);
        for (int i = 0; i < 4; ++i) {
          const std::string line = "fiber " + std::to_string(id) + " line " + std::to_string(i);
          c.write(line);
          std::string back(line.size(), '\0');
          for (std::size_t got = 0; got < back.size();) {
            const std::size_t n = c.read(std::as_writable_bytes(std::span(back)).subspan(got));
            if (n == 0) throw std::runtime_error("server closed early");
            got += n;
          }
          ok += back == line;
        }
      } catch (const std::exception& e) {
        std::fprintf(stderr, "fiber %d: %s\n", id, e.what());
      }
      echoed.send(ok);
    });
  }
  int total = 0;
  for (int i = 0; i < 8; ++i) total += *echoed.recv();
  std::printf("%d of 32 lines echoed\n", total);
  return total == 32 ? 0 : 1;
}
