// SPDX-License-Identifier: Apache-2.0
// Layer: net. May include: net, park, sched, stack, time, platform.
// Parsing, resolving and printing network addresses (address.hpp).
#include "net/address.hpp"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/un.h>

#include <algorithm>
#include <charconv>
#include <cstring>
#include <memory>
#include <stdexcept>
#include <system_error>

#include "goro/blocking.hpp"
#include "net/blocking_pool.hpp"
#include "net/net_fd.hpp"

namespace goro::detail {

namespace {

// `what` names the operation and its address already ("dial tcp 127.0.0.1"); `address` is the
// part that is wrong, named again only where it is not all of what the caller gave.
[[noreturn]] void bad_address(const char* what, std::string_view address, const char* why) {
  std::string message = std::string("goro::net: ") + what;
  const std::string_view named(what);
  if (named.size() < address.size() || named.substr(named.size() - address.size()) != address) {
    message += ": address ";
    message += address;
  }
  throw std::invalid_argument(message + ": " + why);
}

socket_address unix_address(std::string_view path, const char* what) {
  socket_address a;
  auto* un = reinterpret_cast<sockaddr_un*>(&a.storage);
  un->sun_family = AF_UNIX;
  // A path needs room for its terminating NUL; an abstract name ("@name") does not.
  const bool abstract = !path.empty() && path[0] == '@';
  if (path.size() > sizeof un->sun_path - (abstract ? 0 : 1)) {
    bad_address(what, path, "path too long");
  }
  std::memcpy(un->sun_path, path.data(), path.size());
  if (!path.empty() && path[0] == '@') un->sun_path[0] = '\0';  // the abstract namespace
  a.size = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + path.size() +
                                  (path.empty() || path[0] == '@' ? 0 : 1));
  return a;
}

// Splits "host:port" or "[host]:port".
void split_host_port(std::string_view address, std::string_view& host, std::string_view& port,
                     const char* what) {
  const std::size_t colon = address.rfind(':');
  if (colon == std::string_view::npos) bad_address(what, address, "missing port in address");
  host = address.substr(0, colon);
  port = address.substr(colon + 1);
  if (!host.empty() && host.front() == '[') {
    if (host.back() != ']') bad_address(what, address, "missing ']' in address");
    host = host.substr(1, host.size() - 2);
  } else if (host.find(':') != std::string_view::npos) {
    bad_address(what, address, "too many colons in address");
  }
}

bool numeric_port(std::string_view port, std::uint16_t& out) {
  unsigned value = 0;
  const auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
  if (ec != std::errc() || end != port.data() + port.size() || value > 65535) return false;
  out = static_cast<std::uint16_t>(value);
  return true;
}

socket_address ip_address(int family, const void* addr, std::uint16_t port) {
  socket_address a;
  if (family == AF_INET) {
    auto* in = reinterpret_cast<sockaddr_in*>(&a.storage);
    in->sin_family = AF_INET;
    in->sin_port = htons(port);
    std::memcpy(&in->sin_addr, addr, sizeof in->sin_addr);
    a.size = sizeof(sockaddr_in);
  } else {
    auto* in6 = reinterpret_cast<sockaddr_in6*>(&a.storage);
    in6->sin6_family = AF_INET6;
    in6->sin6_port = htons(port);
    std::memcpy(&in6->sin6_addr, addr, sizeof in6->sin6_addr);
    a.size = sizeof(sockaddr_in6);
  }
  return a;
}

// One getaddrinfo call, with its answer and its errno (set on the pool's thread, where the
// call runs). Shared with that thread when the caller may stop waiting (blocking_pool.hpp):
// a lookup given up on finishes into it, and the last owner frees the answer.
struct lookup_call {
  std::string host;
  std::string port;
  addrinfo hints{};
  addrinfo* found = nullptr;
  int rc = 0;
  int error = 0;

  lookup_call() = default;
  lookup_call(const lookup_call&) = delete;
  lookup_call& operator=(const lookup_call&) = delete;
  ~lookup_call() {
    if (found != nullptr) ::freeaddrinfo(found);
  }
  static void run(void* self) noexcept {
    auto* c = static_cast<lookup_call*>(self);
    c->rc = ::getaddrinfo(c->host.empty() ? nullptr : c->host.c_str(), c->port.c_str(), &c->hints,
                          &c->found);
    c->error = errno;
  }
};

// Resolves on the blocking pool. Within `limit`, as Go's dial bounds its lookup by its
// deadline and context: once the limit ends the wait, the lookup is left to finish alone.
std::vector<socket_address> lookup(const network& net, std::string host, std::string port,
                                   bool passive, const char* what, const wait_limit& limit) {
  const auto call = std::make_shared<lookup_call>();
  call->host = std::move(host);
  call->port = std::move(port);
  call->hints.ai_family = net.family;
  call->hints.ai_socktype = net.type;
  call->hints.ai_flags = AI_ADDRCONFIG | (passive ? AI_PASSIVE : 0);
  const std::string named = std::string(what) + ": lookup " + call->host;
  if (limit.unlimited()) {
    run_blocking(&lookup_call::run, call.get());
  } else if (const std::errc ended = run_blocking_limited(call, &lookup_call::run, limit);
             ended != std::errc()) {
    if (ended == std::errc::timed_out) throw_timed_out(named.c_str());
    throw_cancelled(named.c_str());
  }
  if (call->rc != 0) {
    const std::error_code code = call->rc == EAI_SYSTEM
                                     ? std::error_code(call->error, std::system_category())
                                     : std::make_error_code(std::errc::host_unreachable);
    // Go's wording for a name that does not resolve; glibc's is "Name or service not known".
    const char* why = call->rc == EAI_NONAME ? "no such host" : ::gai_strerror(call->rc);
    throw std::system_error(code, "goro::net: " + named + ": " + why);
  }
  std::vector<socket_address> out;
  for (const addrinfo* ai = call->found; ai != nullptr; ai = ai->ai_next) {
    socket_address a;
    std::memcpy(&a.storage, ai->ai_addr, ai->ai_addrlen);
    a.size = ai->ai_addrlen;
    out.push_back(a);
  }
  return out;
}

}  // namespace

network parse_network(std::string_view name, bool datagram, const char* what) {
  const std::string_view ip = datagram ? "udp" : "tcp";
  const int type = datagram ? SOCK_DGRAM : SOCK_STREAM;
  if (name == ip) return {AF_UNSPEC, type};
  if (name.size() == 4 && name.substr(0, 3) == ip && name[3] == '4') return {AF_INET, type};
  if (name.size() == 4 && name.substr(0, 3) == ip && name[3] == '6') return {AF_INET6, type};
  if (name == (datagram ? "unixgram" : "unix")) return {AF_UNIX, type};
  throw std::invalid_argument(std::string("goro::net: ") + what + ": unknown network " +
                              std::string(name));
}

std::vector<socket_address> resolve(const network& net, std::string_view address, bool passive,
                                    const char* what, const wait_limit& limit) {
  if (net.family == AF_UNIX) return {unix_address(address, what)};
  std::string_view host;
  std::string_view port;
  split_host_port(address, host, port, what);
  std::uint16_t number = 0;
  const bool digits =
      !port.empty() && port.find_first_not_of("+-0123456789") == std::string_view::npos;
  if (digits && !numeric_port(port, number)) bad_address(what, address, "invalid port");
  if (digits) {
    in_addr v4{};
    in6_addr v6{};
    const std::string h(host);
    const bool want4 = net.family != AF_INET6;
    const bool want6 = net.family != AF_INET;
    if (host.empty()) {
      if (passive) {
        if (want6) return {ip_address(AF_INET6, &in6addr_any, number)};
        v4.s_addr = htonl(INADDR_ANY);
        return {ip_address(AF_INET, &v4, number)};
      }
      if (want4) {
        v4.s_addr = htonl(INADDR_LOOPBACK);
        return {ip_address(AF_INET, &v4, number)};
      }
      return {ip_address(AF_INET6, &in6addr_loopback, number)};
    }
    if (::inet_pton(AF_INET, h.c_str(), &v4) == 1) {
      if (!want4) bad_address(what, address, "an IPv4 address on an IPv6 network");
      return {ip_address(AF_INET, &v4, number)};
    }
    if (::inet_pton(AF_INET6, h.c_str(), &v6) == 1) {
      if (!want6) bad_address(what, address, "an IPv6 address on an IPv4 network");
      return {ip_address(AF_INET6, &v6, number)};
    }
  }
  std::vector<socket_address> found =
      lookup(net, std::string(host), std::string(port), passive, what, limit);
  std::stable_partition(found.begin(), found.end(),
                        [](const socket_address& a) { return a.family() == AF_INET; });
  return found;
}

socket_address v4_mapped(const socket_address& v4) {
  const auto* in = reinterpret_cast<const sockaddr_in*>(&v4.storage);
  in6_addr mapped{};
  mapped.s6_addr[10] = 0xff;
  mapped.s6_addr[11] = 0xff;
  std::memcpy(&mapped.s6_addr[12], &in->sin_addr, 4);
  return ip_address(AF_INET6, &mapped, ntohs(in->sin_port));
}

std::string format_address(const sockaddr* sa, socklen_t size) {
  char text[INET6_ADDRSTRLEN] = {};
  switch (sa->sa_family) {
    case AF_INET: {
      const auto* in = reinterpret_cast<const sockaddr_in*>(sa);
      ::inet_ntop(AF_INET, &in->sin_addr, text, sizeof text);
      return std::string(text) + ":" + std::to_string(ntohs(in->sin_port));
    }
    case AF_INET6: {
      const auto* in6 = reinterpret_cast<const sockaddr_in6*>(sa);
      // An IPv4 peer of a dual-stack socket, ::ffff:a.b.c.d, reads as a.b.c.d:port, as Go's
      // IP.String gives it (a server's log, or a limit keyed on the client's address, sees
      // the same text whichever socket the connection came through).
      if (IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr)) {
        ::inet_ntop(AF_INET, &in6->sin6_addr.s6_addr[12], text, sizeof text);
        return std::string(text) + ":" + std::to_string(ntohs(in6->sin6_port));
      }
      ::inet_ntop(AF_INET6, &in6->sin6_addr, text, sizeof text);
      // Appended, not "[" + std::string: GCC 12 warns falsely on that (-Wrestrict, its bug 105329).
      std::string out(1, '[');
      out += text;
      return out + "]:" + std::to_string(ntohs(in6->sin6_port));
    }
    case AF_UNIX: {
      const auto* un = reinterpret_cast<const sockaddr_un*>(sa);
      const std::size_t offset = offsetof(sockaddr_un, sun_path);
      if (size <= offset) return "";
      std::size_t n = size - offset;
      if (un->sun_path[0] == '\0') return std::string(1, '@').append(un->sun_path + 1, n - 1);
      return std::string(un->sun_path, strnlen(un->sun_path, n));
    }
    default: return "";
  }
}

}  // namespace goro::detail
