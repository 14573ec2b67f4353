// SPDX-License-Identifier: Apache-2.0
// Layer: net. May include: net, park, sched, stack, time, platform.
// goro::net's sockets (include/goro/net.hpp): each call makes its system call first and waits
// for readiness only on EAGAIN (net_fd::wait), inside a call (held open against close) and a
// turn (one call per direction). Design: docs/net.md.
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <string>
#include <system_error>

#include "goro/detail/spawn.hpp"
#include "goro/net.hpp"
#include "net/address.hpp"
#include "net/net_fd.hpp"

namespace goro::detail {
void net_fd_deleter::operator()(net_fd* fd) const noexcept { fd->release_handle(); }
}  // namespace goro::detail

namespace goro::net {

namespace {

using goro::detail::clock;
using goro::detail::io_direction;
using goro::detail::net_fd;
using goro::detail::socket_kind;
using goro::detail::throw_errno;

constexpr io_direction reading = io_direction::read;
constexpr io_direction writing = io_direction::write;

net_fd& get(const goro::detail::fd_handle& h, const char* what) {
  if (!h) goro::detail::throw_closed(what);
  return *h;
}

clock::time_point no_zero(deadline_time t) {
  return t == deadline_time{} ? clock::time_point::max() : t;
}

int open_socket(int family, int type, const char* what) {
  const int fd = ::socket(family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) throw_errno(errno, what);
  return fd;
}

void set_option(int fd, int level, int name, int value) {
  ::setsockopt(fd, level, name, &value, sizeof value);
}

// Go's defaults: no Nagle delay on TCP connections.
void tune_stream(int fd, int family) {
  if (family == AF_INET || family == AF_INET6) set_option(fd, IPPROTO_TCP, TCP_NODELAY, 1);
}

goro::detail::fd_handle adopt(int fd, int family, socket_kind kind) {
  return goro::detail::fd_handle(new net_fd(fd, family, kind));
}

std::string name_of(int fd, bool peer, const char* what) {
  sockaddr_storage ss{};
  socklen_t size = sizeof ss;
  auto* sa = reinterpret_cast<sockaddr*>(&ss);
  if ((peer ? ::getpeername(fd, sa, &size) : ::getsockname(fd, sa, &size)) != 0) {
    throw_errno(errno, what);
  }
  return goro::detail::format_address(sa, size);
}

// What every handle's setters and getters do, once: a call on the descriptor, then the work.
void set_deadline_of(const goro::detail::fd_handle& h, io_direction d, deadline_time t,
                     const char* what) {
  net_fd& fd = get(h, what);
  const net_fd::call call(fd, what);
  fd.set_deadline(d, no_zero(t));
}

std::string address_of(const goro::detail::fd_handle& h, bool peer, const char* what) {
  net_fd& fd = get(h, what);
  const net_fd::call call(fd, what);
  return name_of(fd.fd(), peer, what);
}

int descriptor_of(const goro::detail::fd_handle& h) {
  net_fd& fd = get(h, "native_handle");
  const net_fd::call call(fd, "native_handle");
  return fd.fd();
}

std::string op_name(const char* op, std::string_view network, std::string_view address) {
  return std::string(op) + " " + std::string(network) + " " + std::string(address);
}

}  // namespace

// ---- conn ---------------------------------------------------------------------------------

conn::conn() noexcept = default;
conn::conn(conn&&) noexcept = default;
conn& conn::operator=(conn&&) noexcept = default;
conn::~conn() = default;
conn::conn(goro::detail::fd_handle fd) noexcept : fd_(std::move(fd)) {}

std::size_t conn::read(std::span<std::byte> buf) { return read(buf, std::stop_token{}); }

std::size_t conn::read(std::span<std::byte> buf, std::stop_token stop) {
  net_fd& fd = get(fd_, "read");
  const net_fd::call call(fd, "read");
  if (buf.empty()) return 0;
  const net_fd::turn turn(fd, reading, stop, "read");
  fd.check_deadline(reading, "read");
  for (;;) {
    // A short read drained the socket, unless data came since: then wait first, and spare the
    // read that would only say EAGAIN (half of all reads in a request/response service).
    if (fd.probably_drained(reading)) fd.wait(reading, stop, "read");
    const std::uint32_t tick = fd.tick(reading);
    const ssize_t n = ::read(fd.fd(), buf.data(), buf.size());
    if (n >= 0) {
      // A datagram socket's read is one datagram: short says nothing of what is queued behind.
      if (n > 0 && static_cast<std::size_t>(n) < buf.size() && fd.kind() == socket_kind::stream) {
        fd.drained(reading, tick);
      }
      return static_cast<std::size_t>(n);
    }
    if (errno == EINTR) continue;
    if (errno != EAGAIN) throw_errno(errno, "read");
    fd.wait(reading, stop, "read");
  }
}

void conn::write(std::span<const std::byte> data) { write(data, std::stop_token{}); }

void conn::write(std::span<const std::byte> data, std::stop_token stop) {
  net_fd& fd = get(fd_, "write");
  const net_fd::call call(fd, "write");
  if (data.empty()) return;
  const net_fd::turn turn(fd, writing, stop, "write");
  fd.check_deadline(writing, "write");
  std::size_t done = 0;
  while (done < data.size()) {
    if (fd.probably_drained(writing)) fd.wait(writing, stop, "write");  // as in read()
    const std::uint32_t tick = fd.tick(writing);
    // MSG_NOSIGNAL: a peer that is gone gives EPIPE, not a SIGPIPE that kills the process.
    const ssize_t n = ::send(fd.fd(), data.data() + done, data.size() - done, MSG_NOSIGNAL);
    if (n >= 0) {
      done += static_cast<std::size_t>(n);
      if (done < data.size()) fd.drained(writing, tick);  // the buffer is full
    } else if (errno == EAGAIN) {
      fd.wait(writing, stop, "write");
    } else if (errno != EINTR) {
      throw_errno(errno, "write");
    }
  }
}

void conn::set_deadline(deadline_time t) {
  set_read_deadline(t);
  set_write_deadline(t);
}

void conn::set_read_deadline(deadline_time t) {
  set_deadline_of(fd_, reading, t, "set_read_deadline");
}

void conn::set_write_deadline(deadline_time t) {
  set_deadline_of(fd_, writing, t, "set_write_deadline");
}

void conn::close_write() {
  net_fd& fd = get(fd_, "close_write");
  const net_fd::call call(fd, "close_write");
  if (::shutdown(fd.fd(), SHUT_WR) != 0) throw_errno(errno, "close_write");
}

void conn::close() noexcept {
  if (fd_) fd_->close();
}

bool conn::is_open() const noexcept { return fd_ && fd_->is_open(); }

std::string conn::local_address() const { return address_of(fd_, false, "local_address"); }

std::string conn::remote_address() const { return address_of(fd_, true, "remote_address"); }

int conn::native_handle() const { return descriptor_of(fd_); }

// ---- listener -----------------------------------------------------------------------------

listener::listener() noexcept = default;
listener::listener(listener&&) noexcept = default;
listener& listener::operator=(listener&&) noexcept = default;
listener::~listener() = default;
listener::listener(goro::detail::fd_handle fd) noexcept : fd_(std::move(fd)) {}

conn listener::accept() { return accept(std::stop_token{}); }

conn listener::accept(std::stop_token stop) {
  net_fd& fd = get(fd_, "accept");
  const net_fd::call call(fd, "accept");
  const net_fd::turn turn(fd, reading, stop, "accept");
  fd.check_deadline(reading, "accept");
  for (;;) {
    const int c = ::accept4(fd.fd(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (c >= 0) {
      tune_stream(c, fd.family());
      return conn(adopt(c, fd.family(), socket_kind::stream));
    }
    // A connection reset before we took it is not the listener's failure (Go retries too).
    if (errno == EINTR || errno == ECONNABORTED) continue;
    if (errno != EAGAIN) {
      if (!fd.is_open()) goro::detail::throw_closed("accept");  // shut down by close()
      throw_errno(errno, "accept");
    }
    fd.wait(reading, stop, "accept");
  }
}

void listener::set_deadline(deadline_time t) { set_deadline_of(fd_, reading, t, "set_deadline"); }

std::string listener::address() const { return address_of(fd_, false, "address"); }

void listener::close() noexcept {
  if (fd_) fd_->close();
}

bool listener::is_open() const noexcept { return fd_ && fd_->is_open(); }

int listener::native_handle() const { return descriptor_of(fd_); }

listener listen(std::string_view network, std::string_view address) {
  const std::string what = op_name("listen", network, address);
  const auto net = goro::detail::parse_network(network, false, what.c_str());
  const auto addresses = goro::detail::resolve(net, address, true, what.c_str());
  int err = EADDRNOTAVAIL;
  for (const auto& a : addresses) {
    const int fd = open_socket(a.family(), SOCK_STREAM, what.c_str());
    if (a.family() != AF_UNIX) set_option(fd, SOL_SOCKET, SO_REUSEADDR, 1);
    // "tcp" on every address is dual-stack, as in Go; "tcp6" is IPv6 only.
    if (a.family() == AF_INET6) set_option(fd, IPPROTO_IPV6, IPV6_V6ONLY, net.family == AF_INET6);
    if (::bind(fd, a.get(), a.size) != 0 || ::listen(fd, SOMAXCONN) != 0) {
      err = errno;
      ::close(fd);
      continue;
    }
    goro::detail::fd_handle h = adopt(fd, a.family(), socket_kind::listener);
    if (a.family() == AF_UNIX && !address.empty() && address[0] != '@') {
      h->unlink_on_close(std::string(address));
    }
    return listener(std::move(h));
  }
  throw_errno(err, what.c_str());
}

// ---- dial ---------------------------------------------------------------------------------

conn dial(std::string_view network, std::string_view address) {
  return dial_limited(network, address, clock::time_point::max(), std::stop_token{});
}

conn dial(std::string_view network, std::string_view address, std::stop_token stop) {
  return dial_limited(network, address, clock::time_point::max(), std::move(stop));
}

namespace {
// "udp", "udp4", "udp6", "unixgram": dial makes a connected datagram socket, as Go's Dial does.
bool datagram_network(std::string_view network) {
  return network.starts_with("udp") || network == "unixgram";
}

// A connected datagram socket: connect(2) only fixes the peer, so nothing waits, and each
// write is one datagram, each read one datagram (conn::read).
goro::detail::fd_handle dial_datagram(std::string_view network, std::string_view address,
                                      const std::string& what,
                                      const goro::detail::wait_limit& limit) {
  const auto net = goro::detail::parse_network(network, true, what.c_str());
  const auto addresses = goro::detail::resolve(net, address, false, what.c_str(), limit);
  int err = EADDRNOTAVAIL;
  for (const auto& a : addresses) {
    goro::detail::fd_handle h =
        adopt(open_socket(a.family(), SOCK_DGRAM, what.c_str()), a.family(), socket_kind::datagram);
    if (::connect(h->fd(), a.get(), a.size) == 0) return h;
    err = errno;
  }
  throw_errno(err, what.c_str());
}
}  // namespace

conn dial_limited(std::string_view network, std::string_view address, clock::time_point deadline,
                  std::stop_token stop) {
  const std::string what = op_name("dial", network, address);
  if (datagram_network(network)) {
    return conn(dial_datagram(network, address, what, {deadline, stop}));
  }
  const auto net = goro::detail::parse_network(network, false, what.c_str());
  const auto addresses = goro::detail::resolve(net, address, false, what.c_str(), {deadline, stop});
  int err = EADDRNOTAVAIL;
  for (const auto& a : addresses) {
    goro::detail::fd_handle h =
        adopt(open_socket(a.family(), SOCK_STREAM, what.c_str()), a.family(), socket_kind::stream);
    net_fd& fd = *h;
    tune_stream(fd.fd(), a.family());
    if (::connect(fd.fd(), a.get(), a.size) == 0) return conn(std::move(h));
    if (errno != EINPROGRESS) {
      err = errno;
      continue;
    }
    {
      const net_fd::call call(fd, what.c_str());
      fd.set_deadline(writing, deadline);
      const net_fd::turn turn(fd, writing, stop, what.c_str());
      fd.check_deadline(writing, what.c_str());
      fd.wait(writing, stop, what.c_str());
      fd.set_deadline(writing, clock::time_point::max());
    }
    socklen_t size = sizeof err;
    if (::getsockopt(fd.fd(), SOL_SOCKET, SO_ERROR, &err, &size) != 0) err = errno;
    if (err == 0) return conn(std::move(h));
  }
  throw_errno(err, what.c_str());
}

// ---- packet_conn --------------------------------------------------------------------------

packet_conn::packet_conn() noexcept = default;
packet_conn::packet_conn(packet_conn&&) noexcept = default;
packet_conn& packet_conn::operator=(packet_conn&&) noexcept = default;
packet_conn::~packet_conn() = default;
packet_conn::packet_conn(goro::detail::fd_handle fd) noexcept : fd_(std::move(fd)) {}

datagram packet_conn::read_from(std::span<std::byte> buf) {
  return read_from(buf, std::stop_token{});
}

datagram packet_conn::read_from(std::span<std::byte> buf, std::stop_token stop) {
  net_fd& fd = get(fd_, "read_from");
  const net_fd::call call(fd, "read_from");
  const net_fd::turn turn(fd, reading, stop, "read_from");
  fd.check_deadline(reading, "read_from");
  for (;;) {
    sockaddr_storage from{};
    socklen_t size = sizeof from;
    const ssize_t n =
        ::recvfrom(fd.fd(), buf.data(), buf.size(), 0, reinterpret_cast<sockaddr*>(&from), &size);
    if (n >= 0) {
      return {static_cast<std::size_t>(n),
              goro::detail::format_address(reinterpret_cast<sockaddr*>(&from), size)};
    }
    if (errno == EINTR) continue;
    if (errno != EAGAIN) throw_errno(errno, "read_from");
    fd.wait(reading, stop, "read_from");
  }
}

std::size_t packet_conn::write_to(std::span<const std::byte> data, std::string_view address) {
  return write_to(data, address, std::stop_token{});
}

std::size_t packet_conn::write_to(std::span<const std::byte> data, std::string_view address,
                                  std::stop_token stop) {
  net_fd& fd = get(fd_, "write_to");
  const goro::detail::network net{fd.family() == AF_UNIX ? AF_UNIX : AF_UNSPEC, SOCK_DGRAM};
  auto to = goro::detail::resolve(net, address, false, "write_to").front();
  if (fd.family() == AF_INET6 && to.family() == AF_INET) to = goro::detail::v4_mapped(to);
  const net_fd::call call(fd, "write_to");
  const net_fd::turn turn(fd, writing, stop, "write_to");
  fd.check_deadline(writing, "write_to");
  for (;;) {
    const ssize_t n = ::sendto(fd.fd(), data.data(), data.size(), MSG_NOSIGNAL, to.get(), to.size);
    if (n >= 0) return static_cast<std::size_t>(n);
    if (errno == EINTR) continue;
    if (errno != EAGAIN) throw_errno(errno, "write_to");
    fd.wait(writing, stop, "write_to");
  }
}

void packet_conn::set_deadline(deadline_time t) {
  set_read_deadline(t);
  set_write_deadline(t);
}

void packet_conn::set_read_deadline(deadline_time t) {
  set_deadline_of(fd_, reading, t, "set_read_deadline");
}

void packet_conn::set_write_deadline(deadline_time t) {
  set_deadline_of(fd_, writing, t, "set_write_deadline");
}

void packet_conn::close() noexcept {
  if (fd_) fd_->close();
}

bool packet_conn::is_open() const noexcept { return fd_ && fd_->is_open(); }

std::string packet_conn::local_address() const { return address_of(fd_, false, "local_address"); }

int packet_conn::native_handle() const { return descriptor_of(fd_); }

packet_conn listen_packet(std::string_view network, std::string_view address) {
  const std::string what = op_name("listen_packet", network, address);
  const auto net = goro::detail::parse_network(network, true, what.c_str());
  const auto addresses = goro::detail::resolve(net, address, true, what.c_str());
  int err = EADDRNOTAVAIL;
  for (const auto& a : addresses) {
    const int fd = open_socket(a.family(), SOCK_DGRAM, what.c_str());
    if (a.family() == AF_INET6) set_option(fd, IPPROTO_IPV6, IPV6_V6ONLY, net.family == AF_INET6);
    if (::bind(fd, a.get(), a.size) != 0) {
      err = errno;
      ::close(fd);
      continue;
    }
    goro::detail::fd_handle h = adopt(fd, a.family(), socket_kind::datagram);
    if (a.family() == AF_UNIX && !address.empty() && address[0] != '@') {
      h->unlink_on_close(std::string(address));
    }
    return packet_conn(std::move(h));
  }
  throw_errno(err, what.c_str());
}

// ---- descriptors other libraries own ------------------------------------------------------

void wait_readable(int fd) { wait_readable(fd, std::stop_token{}); }
void wait_writable(int fd) { wait_writable(fd, std::stop_token{}); }

void wait_readable(int fd, std::stop_token stop) {
  goro::detail::wait_foreign(fd, reading, {clock::time_point::max(), std::move(stop)});
}

void wait_writable(int fd, std::stop_token stop) {
  goro::detail::wait_foreign(fd, writing, {clock::time_point::max(), std::move(stop)});
}

}  // namespace goro::net
