// SPDX-License-Identifier: Apache-2.0
// stream_load: the neutral client of the stream workload (WORKLOADS.md, "Network workloads"),
// the same program for goro's stream server and Go's (bench/net/stream.cpp,
// bench/peers/go/stream). Plain C++, one blocking socket: writes --block bytes (default
// 64 KiB) at a time for --seconds, shuts its side down and waits for the server to close, so
// every byte counted was read by the server. With --server-pid it reads that process's CPU time
// (utime+stime, /proc/PID/stat) before and after. Prints one line:
//
//   stream_load bytes=N seconds=T mib_s=X client_cpu=F server_cpu_s=G server_ms_per_gib=H
//
// (server_* are "na" without --server-pid). Exits 1 if the connection fails.
#include <csignal>

#include "common.hpp"

namespace {

constexpr const char* usage =
    "usage: stream_load --connect HOST:PORT [--seconds S] [--block BYTES] [--server-pid PID]\n";

}  // namespace

int main(int argc, char** argv) {
  const netbench::flags f(argc, argv, {"connect", "seconds", "block", "server-pid"}, {}, usage);
  if (!f.has("connect")) f.fail("--connect is required");
  const double seconds = f.num("seconds", 5);
  const auto block = static_cast<std::size_t>(f.num("block", 64 * 1024));
  const auto server_pid = static_cast<long>(f.num("server-pid", 0));
  if (block == 0 || seconds <= 0) f.fail("--block and --seconds must be > 0");
  std::signal(SIGPIPE, SIG_IGN);

  sockaddr_in address{};
  try {
    address = netbench::parse_address(f.str("connect", ""));
  } catch (const std::exception& e) {
    f.fail(e.what());
  }
  const int fd = netbench::connect_tcp(address, false);
  if (fd < 0) {
    std::fprintf(stderr, "stream_load: connect: %s\n", std::strerror(errno));
    return 1;
  }
  std::vector<char> data(block, 0x5a);
  std::uint64_t bytes = 0;
  const double server_cpu0 = netbench::process_cpu_seconds(server_pid);
  const double self_cpu0 = netbench::self_cpu_seconds();
  const std::int64_t start = netbench::now_ns();
  const std::int64_t end = start + static_cast<std::int64_t>(seconds * 1e9);
  while (netbench::now_ns() < end) {
    std::size_t off = 0;
    while (off < block) {
      const ssize_t n = ::send(fd, data.data() + off, block - off, MSG_NOSIGNAL);
      if (n <= 0) {
        std::fprintf(stderr, "stream_load: send: %s\n", n < 0 ? std::strerror(errno) : "0");
        return 1;
      }
      off += static_cast<std::size_t>(n);
    }
    bytes += block;
  }
  ::shutdown(fd, SHUT_WR);
  char sink[4096];
  ssize_t n = 0;
  while ((n = ::recv(fd, sink, sizeof sink, 0)) > 0) {
  }
  if (n < 0) {
    std::fprintf(stderr, "stream_load: waiting for the server to close: %s\n",
                 std::strerror(errno));
    return 1;
  }
  const double elapsed = static_cast<double>(netbench::now_ns() - start) / 1e9;
  const double server_cpu1 = netbench::process_cpu_seconds(server_pid);
  const double self_cpu1 = netbench::self_cpu_seconds();
  ::close(fd);
  std::printf("stream_load bytes=%llu seconds=%.3f mib_s=%.1f client_cpu=%.3f",
              static_cast<unsigned long long>(bytes), elapsed,
              static_cast<double>(bytes) / elapsed / (1024.0 * 1024.0),
              (self_cpu1 - self_cpu0) / elapsed);
  if (server_cpu0 >= 0 && server_cpu1 >= 0 && bytes > 0) {
    const double cpu = server_cpu1 - server_cpu0;
    std::printf(" server_cpu_s=%.3f server_ms_per_gib=%.2f\n", cpu,
                cpu * 1e3 / (static_cast<double>(bytes) / (1024.0 * 1024.0 * 1024.0)));
  } else {
    std::printf(" server_cpu_s=na server_ms_per_gib=na\n");
  }
  return 0;
}
