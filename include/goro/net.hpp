// SPDX-License-Identifier: Apache-2.0
/// @file
/// goro::net: Go's net package for fibers. TCP, UDP and Unix-domain sockets whose blocking
/// calls park the calling fiber (its worker runs other fibers meanwhile) until the runtime's
/// poller finds the descriptor ready; called outside fibers, they block the calling thread.
/// Deadlines work as Go's (absolute, per direction, kept until changed) and every blocking call
/// also has a std::stop_token form. The design, its states and races: docs/net.md.
///
/// Errors are std::system_error carrying the errno: a deadline that passed gives
/// std::errc::timed_out, a stop request std::errc::operation_canceled, a use of a closed
/// handle (or a close while blocked) std::errc::bad_file_descriptor, a host name that does not
/// resolve std::errc::host_unreachable ("no such host"). End of stream is not an error: read()
/// returns 0. Arguments no call could accept are misuse, std::invalid_argument, where Go
/// returns an *AddrError or an UnknownNetworkError: an unknown network ("sctp"), an address the
/// network cannot take (no port, a port out of range, an IPv6 address for "tcp4", a Unix path
/// too long), and the refused waits of wait_readable() and wait_writable().
#pragma once

#include <chrono>
#include <cstddef>
#include <memory>
#include <span>
#include <stop_token>
#include <string>
#include <string_view>
#include <utility>

#include "goro/blocking.hpp"
#include "goro/detail/deadline.hpp"

namespace goro::detail {
class net_fd;
struct net_fd_deleter {
  void operator()(net_fd* fd) const noexcept;
};
using fd_handle = std::unique_ptr<net_fd, net_fd_deleter>;
}  // namespace goro::detail

namespace goro::net {

/// A point in time for the deadline setters. Any clock's time_point converts to it; a
/// default-constructed one (Go's zero time) and time_point::max() mean "no deadline".
using deadline_time = std::chrono::steady_clock::time_point;

/// A stream connection: TCP or Unix. Move-only; destruction closes it. One fiber may read while
/// another writes; concurrent reads (and concurrent writes) are served one call at a time, so
/// two writes never interleave their bytes. Memory ordering: a write happens-before the read
/// that returns its bytes (through the kernel).
class conn {
 public:
  /// No connection; every call but close() and the destructor throws bad_file_descriptor.
  conn() noexcept;
  conn(conn&&) noexcept;
  conn& operator=(conn&&) noexcept;
  ~conn();

  /// Reads some bytes into `buf`, waiting until at least one is there; returns how many, 0 at
  /// end of stream (the peer closed or shut down its side) or if `buf` is empty. On a dialled
  /// datagram socket ("udp", "unixgram"): one datagram, cut to buf's size, 0 for an empty one.
  std::size_t read(std::span<std::byte> buf);
  std::size_t read(std::span<std::byte> buf, std::stop_token stop);
  /// Writes all of `data`, waiting while the socket's buffer is full; throws if it cannot (the
  /// peer reset the connection, a deadline, a stop request, a close), having perhaps written
  /// part of it. On a dialled datagram socket: one datagram (too large: EMSGSIZE).
  void write(std::span<const std::byte> data);
  void write(std::span<const std::byte> data, std::stop_token stop);
  /// write() of a string's bytes.
  void write(std::string_view data) { write(std::as_bytes(std::span(data.data(), data.size()))); }
  void write(std::string_view data, std::stop_token stop) {
    write(std::as_bytes(std::span(data.data(), data.size())), std::move(stop));
  }

  /// Deadlines: a read (write) blocked at or after `t` fails with std::errc::timed_out, also one
  /// already waiting when the deadline is set. set_deadline sets both.
  void set_deadline(deadline_time t);
  void set_read_deadline(deadline_time t);
  void set_write_deadline(deadline_time t);
  template <class Clock, class Duration>
  void set_deadline(std::chrono::time_point<Clock, Duration> t) {
    set_deadline(to_deadline(t));
  }
  template <class Clock, class Duration>
  void set_read_deadline(std::chrono::time_point<Clock, Duration> t) {
    set_read_deadline(to_deadline(t));
  }
  template <class Clock, class Duration>
  void set_write_deadline(std::chrono::time_point<Clock, Duration> t) {
    set_write_deadline(to_deadline(t));
  }

  /// Shuts the writing side down (the peer reads end of stream); reads still work.
  void close_write();
  /// Closes the connection; calls blocked on it fail with bad_file_descriptor. Closing a
  /// closed or empty conn does nothing.
  void close() noexcept;
  /// False once closed (or for an empty conn).
  bool is_open() const noexcept;
  explicit operator bool() const noexcept { return is_open(); }

  /// "127.0.0.1:8080", "[::1]:8080", or a Unix socket's path ("" when unnamed).
  std::string local_address() const;
  std::string remote_address() const;
  /// The descriptor, for socket options; goro keeps owning it.
  int native_handle() const;

 private:
  friend class listener;
  friend conn dial_limited(std::string_view, std::string_view, goro::detail::clock::time_point,
                           std::stop_token);
  explicit conn(goro::detail::fd_handle fd) noexcept;
  template <class Clock, class Duration>
  static deadline_time to_deadline(std::chrono::time_point<Clock, Duration> t) {
    if (t == std::chrono::time_point<Clock, Duration>{}) return deadline_time::max();
    return goro::detail::deadline_at(t);
  }
  goro::detail::fd_handle fd_;
};

/// A listening socket: TCP or Unix. Move-only; destruction closes it (and removes the socket
/// file of a Unix listener, as Go does).
class listener {
 public:
  listener() noexcept;
  listener(listener&&) noexcept;
  listener& operator=(listener&&) noexcept;
  ~listener();

  /// Waits for the next connection and returns it.
  conn accept();
  conn accept(std::stop_token stop);
  /// An accept blocked at or after `t` fails with std::errc::timed_out.
  void set_deadline(deadline_time t);
  template <class Clock, class Duration>
  void set_deadline(std::chrono::time_point<Clock, Duration> t) {
    set_deadline(t == std::chrono::time_point<Clock, Duration>{} ? deadline_time::max()
                                                                 : goro::detail::deadline_at(t));
  }
  /// The address it listens on, with the port chosen if 0 was asked: "127.0.0.1:43121".
  std::string address() const;
  /// Stops listening; a blocked accept() fails with bad_file_descriptor.
  void close() noexcept;
  bool is_open() const noexcept;
  explicit operator bool() const noexcept { return is_open(); }
  int native_handle() const;

 private:
  friend listener listen(std::string_view, std::string_view);
  explicit listener(goro::detail::fd_handle fd) noexcept;
  goro::detail::fd_handle fd_;
};

/// What packet_conn::read_from received: its size and who sent it.
struct datagram {
  std::size_t size = 0;
  std::string from;
};

/// A datagram socket: UDP or Unix ("unixgram"). Move-only; destruction closes it.
class packet_conn {
 public:
  packet_conn() noexcept;
  packet_conn(packet_conn&&) noexcept;
  packet_conn& operator=(packet_conn&&) noexcept;
  ~packet_conn();

  /// Waits for one datagram and copies it into `buf`, cut to buf's size as recvfrom(2) does.
  datagram read_from(std::span<std::byte> buf);
  datagram read_from(std::span<std::byte> buf, std::stop_token stop);
  /// Sends `data` as one datagram to `address` ("127.0.0.1:9000"); returns its size.
  std::size_t write_to(std::span<const std::byte> data, std::string_view address);
  std::size_t write_to(std::span<const std::byte> data, std::string_view address,
                       std::stop_token stop);

  void set_deadline(deadline_time t);
  void set_read_deadline(deadline_time t);
  void set_write_deadline(deadline_time t);
  void close() noexcept;
  bool is_open() const noexcept;
  explicit operator bool() const noexcept { return is_open(); }
  std::string local_address() const;
  int native_handle() const;

 private:
  friend packet_conn listen_packet(std::string_view, std::string_view);
  explicit packet_conn(goro::detail::fd_handle fd) noexcept;
  goro::detail::fd_handle fd_;
};

/// Listens on `address` for "tcp", "tcp4", "tcp6" ("host:port"; an empty host means every
/// address, port 0 picks a free port) or "unix" (a path; "@name" for Linux's abstract
/// namespace). Host names are resolved on the blocking pool.
listener listen(std::string_view network, std::string_view address);
/// Binds a datagram socket: "udp", "udp4", "udp6" or "unixgram".
packet_conn listen_packet(std::string_view network, std::string_view address);

/// Connects to `address` ("tcp", "tcp4", "tcp6", "unix"), trying each address a host name
/// resolves to in turn (resolution runs on the blocking pool). "udp", "udp4", "udp6" and
/// "unixgram" give a connected datagram socket, as Go's Dial does: it sends to and receives from
/// that peer only, a datagram per write and per read; a peer that is not listening shows as
/// std::errc::connection_refused on a later read or write.
conn dial(std::string_view network, std::string_view address);
conn dial(std::string_view network, std::string_view address, std::stop_token stop);
/// The general dial: gives up at `deadline` (std::errc::timed_out) or on a stop request, in its
/// name lookup too (which then finishes on the blocking pool, unseen).
conn dial_limited(std::string_view network, std::string_view address,
                  goro::detail::clock::time_point deadline, std::stop_token stop);
/// As dial, failing with std::errc::timed_out if not connected within `timeout`. A zero
/// timeout means none, as Go's DialTimeout reads it; a negative one has already passed.
template <class Rep, class Period>
conn dial(std::string_view network, std::string_view address,
          std::chrono::duration<Rep, Period> timeout, std::stop_token stop = {}) {
  const auto deadline = timeout == timeout.zero() ? goro::detail::clock::time_point::max()
                                                  : goro::detail::deadline_after(timeout);
  return dial_limited(network, address, deadline, std::move(stop));
}

/// Waits until `fd`, a descriptor some other library owns, is readable (writable): for
/// integrating such libraries with fibers. Not for descriptors of goro's own sockets (throws
/// std::invalid_argument). One wait per direction at a time: a reader and a writer may wait on
/// one descriptor at once, but a second wait for a direction already waited on throws
/// std::invalid_argument. A stop request throws std::system_error with
/// std::errc::operation_canceled.
void wait_readable(int fd);
void wait_readable(int fd, std::stop_token stop);
void wait_writable(int fd);
void wait_writable(int fd, std::stop_token stop);

}  // namespace goro::net
