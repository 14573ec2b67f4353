// SPDX-License-Identifier: Apache-2.0
// epoll_echo_server: the floor under the echo workload. One thread, no runtime, no fibers: an
// edge-triggered epoll loop that writes back whatever it reads, with the fewest system calls a
// request can take (a read and a write; epoll_wait's cost shared by the requests it reports).
// A read shorter than the buffer drained the socket, so the next byte to arrive raises a new
// edge and no read is spent to see EAGAIN. A runtime that multiplexes fibers over this loop pays
// the same kernel work, so its requests/s on one CPU cannot pass this program's: bench/echo runs
// it beside goro and Go to show how much room the setup leaves (docs/performance.md).
//
//   epoll_echo_server [--listen HOST:PORT] [--lifetime SECONDS]
//
// The bound address is stdout's first line, as with goro's and Go's servers.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <unordered_map>
#include <vector>

#include "common.hpp"

namespace {

constexpr const char* usage =
    "usage: epoll_echo_server [--listen HOST:PORT] [--lifetime SECONDS]\n";
constexpr std::size_t buffer_size = 4096;  // as goro's and Go's servers read

// Bytes read but not yet written back, kept only while a write is short (never, for 64-byte
// echo on loopback; handled so the floor is a correct server).
std::unordered_map<int, std::string> unsent;

void drop(int ep, int fd) {
  ::epoll_ctl(ep, EPOLL_CTL_DEL, fd, nullptr);
  ::close(fd);
  unsent.erase(fd);
}

// Writes what is pending for fd; false if the connection failed.
bool flush(int fd) {
  auto it = unsent.find(fd);
  if (it == unsent.end()) return true;
  std::string& rest = it->second;
  while (!rest.empty()) {
    const ssize_t n = ::write(fd, rest.data(), rest.size());
    if (n < 0) return errno == EAGAIN;
    rest.erase(0, static_cast<std::size_t>(n));
  }
  unsent.erase(it);
  return true;
}

// Echoes what fd has to read; false if the connection ended or failed.
bool echo(int fd) {
  std::array<char, buffer_size> buf;
  for (;;) {
    const ssize_t n = ::read(fd, buf.data(), buf.size());
    if (n == 0) return false;
    if (n < 0) return errno == EAGAIN;
    if (unsent.contains(fd)) {  // a write is still short: queue behind it
      unsent[fd].append(buf.data(), static_cast<std::size_t>(n));
    } else {
      const ssize_t w = ::write(fd, buf.data(), static_cast<std::size_t>(n));
      if (w < 0 && errno != EAGAIN) return false;
      const std::size_t written = w < 0 ? 0 : static_cast<std::size_t>(w);
      if (written < static_cast<std::size_t>(n)) {
        unsent[fd].assign(buf.data() + written, static_cast<std::size_t>(n) - written);
      }
    }
    if (static_cast<std::size_t>(n) < buf.size()) return true;  // drained: wait for an edge
  }
}

}  // namespace

int main(int argc, char** argv) {
  const netbench::flags f(argc, argv, {"listen", "lifetime"}, {}, usage);
  const std::string listen = f.str("listen", "127.0.0.1:0");
  sockaddr_in where{};  // parse_address wants a port; port 0 (any free one) is ours to allow
  where.sin_family = AF_INET;
  const auto colon = listen.rfind(':');
  if (colon == std::string::npos ||
      ::inet_pton(AF_INET, listen.substr(0, colon).c_str(), &where.sin_addr) != 1) {
    f.fail("--listen wants an IPv4 HOST:PORT");
  }
  where.sin_port = htons(static_cast<std::uint16_t>(std::atoi(listen.c_str() + colon + 1)));
  const double lifetime = f.num("lifetime", 0);
  if (lifetime > 0) ::alarm(static_cast<unsigned>(std::ceil(lifetime)));
  std::signal(SIGPIPE, SIG_IGN);

  const int ln = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  const int one = 1;
  ::setsockopt(ln, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (ln < 0 || ::bind(ln, reinterpret_cast<const sockaddr*>(&where), sizeof where) != 0 ||
      ::listen(ln, SOMAXCONN) != 0) {
    std::perror("epoll_echo_server: listen");
    return 1;
  }
  sockaddr_in bound{};
  socklen_t len = sizeof bound;
  ::getsockname(ln, reinterpret_cast<sockaddr*>(&bound), &len);
  std::array<char, INET_ADDRSTRLEN> host{};
  ::inet_ntop(AF_INET, &bound.sin_addr, host.data(), host.size());
  std::printf("%s:%u\n", host.data(), ntohs(bound.sin_port));
  std::fflush(stdout);

  const int ep = ::epoll_create1(EPOLL_CLOEXEC);
  epoll_event ev{};
  ev.events = EPOLLIN | EPOLLET;
  ev.data.fd = ln;
  ::epoll_ctl(ep, EPOLL_CTL_ADD, ln, &ev);
  std::vector<epoll_event> events(128);
  for (;;) {
    const int n = ::epoll_wait(ep, events.data(), static_cast<int>(events.size()), -1);
    for (int i = 0; i < n; ++i) {
      const int fd = events[static_cast<std::size_t>(i)].data.fd;
      const std::uint32_t what = events[static_cast<std::size_t>(i)].events;
      if (fd == ln) {
        for (int c; (c = ::accept4(ln, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0;) {
          netbench::set_nodelay(c);
          epoll_event cev{};
          cev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;  // registered once, as Go does
          cev.data.fd = c;
          ::epoll_ctl(ep, EPOLL_CTL_ADD, c, &cev);
        }
        continue;
      }
      bool alive = (what & (EPOLLERR | EPOLLHUP)) == 0;
      if (alive && (what & EPOLLOUT) != 0) alive = flush(fd);
      if (alive && (what & (EPOLLIN | EPOLLRDHUP)) != 0) alive = echo(fd);
      if (!alive) drop(ep, fd);
    }
  }
}
