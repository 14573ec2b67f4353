// SPDX-License-Identifier: Apache-2.0
// Layer: net. May include: net, park, sched, stack, time, platform.
// Network names and addresses as Go's net package spells them: "tcp", "tcp4", "tcp6", "unix",
// "udp", "udp4", "udp6", "unixgram"; "host:port", "[v6]:port", a Unix path or "@abstract".
// Numeric hosts are parsed here; names are resolved with getaddrinfo on the blocking pool.
#pragma once

#include <sys/socket.h>

#include <string>
#include <string_view>
#include <vector>

#include "goro/detail/deadline.hpp"

namespace goro::detail {

struct network {
  int family;  // AF_UNSPEC (either IP version), AF_INET, AF_INET6 or AF_UNIX
  int type;    // SOCK_STREAM or SOCK_DGRAM
};

// Parses a network name for a stream (tcp*, unix) or datagram (udp*, unixgram) socket; throws
// std::invalid_argument naming the operation otherwise.
network parse_network(std::string_view name, bool datagram, const char* what);

struct socket_address {
  sockaddr_storage storage{};
  socklen_t size = 0;
  int family() const noexcept { return storage.ss_family; }
  const sockaddr* get() const noexcept { return reinterpret_cast<const sockaddr*>(&storage); }
};

// The addresses `address` names on `net`, IPv4 first. For listening (`passive`) an empty host
// means every local address (dual-stack "::" for "tcp" and "udp"); for dialling, the local
// system. Throws std::system_error if a name does not resolve (std::errc::host_unreachable,
// or the errno of a failed system call), or if `limit` ends the lookup first (timed_out,
// operation_canceled), and std::invalid_argument if `address` is malformed.
std::vector<socket_address> resolve(const network& net, std::string_view address, bool passive,
                                    const char* what, const wait_limit& limit = {});

// An IPv4 address as the IPv4-mapped IPv6 address a dual-stack socket sends to.
socket_address v4_mapped(const socket_address& v4);

// "1.2.3.4:80", "[::1]:80", a Unix path, "@name" for the abstract namespace, "" if unnamed.
std::string format_address(const sockaddr* sa, socklen_t size);

}  // namespace goro::detail
