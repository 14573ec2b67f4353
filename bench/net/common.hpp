// SPDX-License-Identifier: Apache-2.0
// What the programs of goro's network benchmarks share (the load clients echo_load.cpp,
// http_open_loop.cpp and stream_load.cpp, and the goro servers echo_server.cpp and stream.cpp):
// flag parsing, HOST:PORT resolution, a monotonic clock in nanoseconds, percentiles of recorded
// latencies, and CPU time read from /proc/PID/stat and getrusage. These clients are plain C++
// (no goro), so one program drives both goro's server and Go's; see WORKLOADS.md, "Network
// workloads", and bench/echo and bench/http, which run them.
#pragma once

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>
#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <fstream>
#include <map>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace netbench {

// --- flags -----------------------------------------------------------------------------------

// "--name value" pairs (also "--name=value"); a flag named in `switches` takes no value.
class flags {
 public:
  flags(int argc, char** argv, std::vector<std::string> known, std::vector<std::string> switches,
        const char* usage)
      : usage_(usage) {
    for (int i = 1; i < argc; ++i) {
      std::string a = argv[i];
      if (a == "-h" || a == "--help") {
        std::fputs(usage_, stdout);
        std::exit(0);
      }
      if (a.rfind("--", 0) != 0) fail("unexpected argument '" + a + "'");
      std::string name = a.substr(2), value;
      const auto eq = name.find('=');
      const bool has_value = eq != std::string::npos;
      if (has_value) {
        value = name.substr(eq + 1);
        name.erase(eq);
      }
      if (std::find(switches.begin(), switches.end(), name) != switches.end()) {
        values_.insert_or_assign(name,
                                 std::string("1"));  // not = "1": GCC 12 -Wrestrict false positive
        continue;
      }
      if (std::find(known.begin(), known.end(), name) == known.end()) {
        fail("unknown flag '--" + name + "'");
      }
      if (!has_value) {
        if (i + 1 >= argc) fail("--" + name + " wants a value");
        value = argv[++i];
      }
      values_[name] = value;
    }
  }

  bool has(const std::string& name) const { return values_.count(name) != 0; }
  std::string str(const std::string& name, const std::string& def) const {
    auto it = values_.find(name);
    return it == values_.end() ? def : it->second;
  }
  double num(const std::string& name, double def) const {
    auto it = values_.find(name);
    if (it == values_.end()) return def;
    char* end = nullptr;
    const double v = std::strtod(it->second.c_str(), &end);
    if (end == it->second.c_str() || *end != '\0' || v < 0) {
      fail("--" + name + " wants a non-negative number, got '" + it->second + "'");
    }
    return v;
  }

  [[noreturn]] void fail(const std::string& why) const {
    std::fprintf(stderr, "%s\n%s", why.c_str(), usage_);
    std::exit(2);
  }

 private:
  const char* usage_;
  std::map<std::string, std::string> values_;
};

// --- addresses and sockets -------------------------------------------------------------------

// "127.0.0.1:8080" as an IPv4 socket address (loopback benchmarks need no more).
inline sockaddr_in parse_address(const std::string& hostport) {
  const auto colon = hostport.rfind(':');
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  std::string host = colon == std::string::npos ? "" : hostport.substr(0, colon);
  if (host.empty() || host == "localhost") host = "127.0.0.1";
  const long port = colon == std::string::npos ? -1 : std::atol(hostport.c_str() + colon + 1);
  if (port <= 0 || port > 65535 || inet_pton(AF_INET, host.c_str(), &sa.sin_addr) != 1) {
    throw std::invalid_argument("want an IPv4 HOST:PORT, got '" + hostport + "'");
  }
  sa.sin_port = htons(static_cast<std::uint16_t>(port));
  return sa;
}

// Disables Nagle's algorithm on a TCP socket, as Go does on every TCP connection.
inline void set_nodelay(int fd) {
  const int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

// A blocking connect, then the socket made non-blocking (if asked) with TCP_NODELAY, as Go
// sets it on every TCP connection. Returns -1 with errno set on failure.
inline int connect_tcp(const sockaddr_in& sa, bool nonblocking) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  if (::connect(fd, reinterpret_cast<const sockaddr*>(&sa), sizeof sa) != 0) {
    const int e = errno;
    ::close(fd);
    errno = e;
    return -1;
  }
  set_nodelay(fd);
  if (nonblocking) {
    ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK);
  }
  return fd;
}

// --- time and CPU ----------------------------------------------------------------------------

inline std::int64_t now_ns() {
  timespec ts{};
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<std::int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

// This process's user+system CPU time in seconds.
inline double self_cpu_seconds() {
  rusage ru{};
  ::getrusage(RUSAGE_SELF, &ru);
  return static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
         static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

// utime+stime of process `pid` (all its threads, live and exited) in seconds, from
// /proc/PID/stat; -1 if it cannot be read. Resolution: one clock tick (usually 10 ms).
inline double process_cpu_seconds(long pid) {
  if (pid <= 0) return -1;
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  if (!std::getline(in, line)) return -1;
  // The command name (field 2) is in parentheses and may hold spaces: fields count from the
  // last ')'. utime and stime are fields 14 and 15.
  const auto close = line.rfind(')');
  if (close == std::string::npos) return -1;
  std::istringstream rest(line.substr(close + 2));
  std::string field;
  unsigned long long utime = 0, stime = 0;
  for (int i = 3; i <= 15 && rest >> field; ++i) {
    if (i == 14) utime = std::stoull(field);
    if (i == 15) stime = std::stoull(field);
  }
  return static_cast<double>(utime + stime) / static_cast<double>(::sysconf(_SC_CLK_TCK));
}

// --- latencies -------------------------------------------------------------------------------

// The q-quantile (0..1) of `samples` in nanoseconds, reordering them; 0 when empty. Nearest
// rank: the smallest sample with at least q of all samples at or below it.
inline std::int64_t quantile(std::vector<std::int64_t>& samples, double q) {
  if (samples.empty()) return 0;
  auto rank = static_cast<std::size_t>(q * static_cast<double>(samples.size()) + 0.999999);
  rank = std::clamp<std::size_t>(rank, 1, samples.size());
  std::nth_element(samples.begin(), samples.begin() + static_cast<std::ptrdiff_t>(rank - 1),
                   samples.end());
  return samples[rank - 1];
}

inline double us(std::int64_t ns) { return static_cast<double>(ns) / 1e3; }

}  // namespace netbench
