// SPDX-License-Identifier: Apache-2.0
// echo_load: the load client of the echo workload (WORKLOADS.md, "Network workloads"), the same
// program for goro's echo server and Go's. Plain C++ on one thread with one epoll set (level
// triggered) and non-blocking sockets, so that it is neutral between the servers and cheap:
// bench/echo pins it to a CPU of its own and reports its CPU use beside the result, so a run in
// which the client, not the server, was the bottleneck shows.
//
// Each of --conns keep-alive connections runs a closed loop: send a --size byte request, wait
// for the whole response, check that it is the request's bytes, send the next. Every request's
// bytes differ (they encode the connection and a sequence number), so a server that answers
// with stale or misplaced bytes fails the check. After --warmup seconds the measured window of
// --seconds begins: it counts the responses completed in it and their latencies (send to last
// byte received). With --server-pid it also reads that process's CPU time (utime+stime, from
// /proc/PID/stat) at the window's start and end. Prints one line of key=value pairs:
//
//   echo_load conns=50 size=64 threads=1 requests=N seconds=S rps=R p50_us=A p99_us=B p999_us=C
//   max_us=D
//             errors=E client_cpu=F server_cpu_s=G server_us_per_req=H
//
// client_cpu is the CPU time this client used in the window over its length (near 1.0 per
// thread: the client, not the server, may be what limits the rate); server_* are "na"
// without --server-pid. Exits 1 on any error (refused or closed connection, wrong bytes) or if
// no response completed in the window.
#include <sys/epoll.h>

#include <csignal>
#include <thread>

#include "common.hpp"

namespace {

constexpr const char* usage =
    "usage: echo_load --connect HOST:PORT [--conns N] [--size BYTES] [--warmup S] [--seconds S]\n"
    "                 [--server-pid PID] [--threads T]\n"
    "  --conns       keep-alive connections, each with one request in flight (default 50)\n"
    "  --size        bytes per request and response (default 64)\n"
    "  --warmup      seconds before the measured window (default 1)\n"
    "  --seconds     length of the measured window (default 5)\n"
    "  --server-pid  read this process's CPU time at the window's start and end\n"
    "  --threads     client threads, each with its own epoll set and conns/T connections\n"
    "                (default 1; give them CPUs of their own with taskset)\n";

struct connection {
  int fd = -1;
  std::uint32_t id = 0;
  std::uint64_t seq = 0;
  std::int64_t sent_at = 0;
  std::size_t written = 0;   // bytes of the current request written so far
  std::size_t received = 0;  // bytes of the current response received so far
  bool want_out = false;     // EPOLLOUT is registered: a write was cut short
  std::vector<unsigned char> request, response;
};

// The bytes of request `seq` on connection `id`: the sequence number, the connection, then a
// pattern derived from both.
void fill_request(connection& c) {
  auto& r = c.request;
  for (std::size_t i = 0; i < r.size(); ++i) {
    r[i] = static_cast<unsigned char>((c.seq * 131 + c.id * 7 + i * 13) & 0xff);
  }
  for (std::size_t i = 0; i < 8 && i < r.size(); ++i) {
    r[i] = static_cast<unsigned char>(c.seq >> (8 * i));
  }
  for (std::size_t i = 0; i < 4 && 8 + i < r.size(); ++i) {
    r[8 + i] = static_cast<unsigned char>(c.id >> (8 * i));
  }
}

// One thread's share of the connections, driven by its own epoll set until t_end.
struct shard_result {
  long requests = 0;
  long errors = 0;
  std::vector<std::int64_t> latencies;
};

void run_shard(std::vector<connection>& cs, std::size_t size, std::int64_t t_start,
               std::int64_t t_measure, std::int64_t t_end, double seconds, shard_result& out) {
  const int ep = ::epoll_create1(EPOLL_CLOEXEC);
  for (std::size_t i = 0; i < cs.size(); ++i) {
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u64 = i;
    ::epoll_ctl(ep, EPOLL_CTL_ADD, cs[i].fd, &ev);
  }
  std::size_t open = cs.size();
  auto fail_conn = [&](connection& c, const char* what) {
    if (out.errors++ < 5) {
      std::fprintf(stderr, "echo_load: connection %u, request %llu: %s\n", c.id,
                   static_cast<unsigned long long>(c.seq), what);
    }
    ::epoll_ctl(ep, EPOLL_CTL_DEL, c.fd, nullptr);
    ::close(c.fd);
    c.fd = -1;
    --open;
  };
  // Writes what is left of the current request; registers for EPOLLOUT if the socket is full.
  auto push = [&](std::size_t index) {
    connection& c = cs[index];
    while (c.written < size) {
      const ssize_t n = ::send(c.fd, c.request.data() + c.written, size - c.written, MSG_NOSIGNAL);
      if (n > 0) {
        c.written += static_cast<std::size_t>(n);
      } else if (n < 0 && errno == EAGAIN) {
        break;
      } else {
        fail_conn(c, n < 0 ? std::strerror(errno) : "send returned 0");
        return;
      }
    }
    const bool want_out = c.written < size;
    if (want_out != c.want_out) {
      epoll_event ev{};
      ev.events = EPOLLIN | (want_out ? EPOLLOUT : 0u);
      ev.data.u64 = index;
      ::epoll_ctl(ep, EPOLL_CTL_MOD, c.fd, &ev);
      c.want_out = want_out;
    }
  };
  auto start_request = [&](std::size_t index, std::int64_t now) {
    connection& c = cs[index];
    ++c.seq;
    fill_request(c);
    c.written = c.received = 0;
    c.sent_at = now;
    push(index);
  };

  out.latencies.reserve(static_cast<std::size_t>(std::min(seconds * 400'000.0, 5e7)));
  for (std::size_t i = 0; i < cs.size(); ++i) start_request(i, t_start);
  std::vector<epoll_event> events(cs.size());
  std::int64_t now = netbench::now_ns();
  while (now < t_end && open > 0) {
    const int timeout_ms = static_cast<int>((t_end - now + 999'999) / 1'000'000);
    const int n = ::epoll_wait(ep, events.data(), static_cast<int>(events.size()), timeout_ms);
    now = netbench::now_ns();
    for (int k = 0; k < n; ++k) {
      const std::size_t index = events[static_cast<std::size_t>(k)].data.u64;
      connection& c = cs[index];
      if (c.fd < 0) continue;
      const std::uint32_t what = events[static_cast<std::size_t>(k)].events;
      if ((what & EPOLLOUT) != 0) push(index);
      if (c.fd < 0 || (what & (EPOLLIN | EPOLLERR | EPOLLHUP)) == 0) continue;
      const ssize_t got = ::recv(c.fd, c.response.data() + c.received, size - c.received, 0);
      if (got < 0 && errno == EAGAIN) continue;
      if (got <= 0) {
        fail_conn(c, got == 0 ? "server closed the connection" : std::strerror(errno));
        continue;
      }
      c.received += static_cast<std::size_t>(got);
      if (c.received < size) continue;
      if (c.written < size || c.response != c.request) {
        fail_conn(c, "the response is not the request's bytes");
        continue;
      }
      if (now >= t_measure && now < t_end) {
        ++out.requests;
        out.latencies.push_back(now - c.sent_at);
      }
      if (now < t_end) start_request(index, now);
    }
  }
  for (auto& c : cs) {
    if (c.fd >= 0) ::close(c.fd);
  }
  ::close(ep);
}

void sleep_until_ns(std::int64_t t) {
  const timespec ts{static_cast<time_t>(t / 1'000'000'000), static_cast<long>(t % 1'000'000'000)};
  while (::clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, nullptr) == EINTR) {
  }
}

}  // namespace

int main(int argc, char** argv) {
  const netbench::flags f(
      argc, argv, {"connect", "conns", "size", "warmup", "seconds", "server-pid", "threads"}, {},
      usage);
  if (!f.has("connect")) f.fail("--connect is required");
  const auto conns = static_cast<std::size_t>(f.num("conns", 50));
  const auto size = static_cast<std::size_t>(f.num("size", 64));
  const double warmup = f.num("warmup", 1);
  const double seconds = f.num("seconds", 5);
  const auto server_pid = static_cast<long>(f.num("server-pid", 0));
  const auto threads = std::min(static_cast<std::size_t>(f.num("threads", 1)), conns);
  if (conns == 0 || size == 0 || seconds <= 0 || threads == 0) {
    f.fail("--conns, --size, --seconds and --threads must be > 0");
  }
  std::signal(SIGPIPE, SIG_IGN);

  sockaddr_in address{};
  try {
    address = netbench::parse_address(f.str("connect", ""));
  } catch (const std::exception& e) {
    f.fail(e.what());
  }

  // Connection i goes to thread i % threads.
  std::vector<std::vector<connection>> shards(threads);
  for (std::size_t i = 0; i < conns; ++i) {
    connection c;
    c.id = static_cast<std::uint32_t>(i);
    c.request.resize(size);
    c.response.resize(size);
    c.fd = netbench::connect_tcp(address, true);
    if (c.fd < 0) {
      std::fprintf(stderr, "echo_load: connect to %s: %s\n", f.str("connect", "").c_str(),
                   std::strerror(errno));
      return 1;
    }
    shards[i % threads].push_back(std::move(c));
  }

  const std::int64_t t_start = netbench::now_ns();
  const std::int64_t t_measure = t_start + static_cast<std::int64_t>(warmup * 1e9);
  const std::int64_t t_end = t_measure + static_cast<std::int64_t>(seconds * 1e9);
  std::vector<shard_result> results(threads);
  std::vector<std::thread> workers;
  for (std::size_t t = 0; t < threads; ++t) {
    workers.emplace_back(run_shard, std::ref(shards[t]), size, t_start, t_measure, t_end, seconds,
                         std::ref(results[t]));
  }
  sleep_until_ns(t_measure);
  const double server_cpu0 = netbench::process_cpu_seconds(server_pid);
  const double self_cpu0 = netbench::self_cpu_seconds();
  sleep_until_ns(t_end);
  const double server_cpu1 = netbench::process_cpu_seconds(server_pid);
  const double self_cpu1 = netbench::self_cpu_seconds();
  for (auto& w : workers) w.join();

  long requests = 0, errors = 0;
  std::vector<std::int64_t> latencies;
  for (auto& r : results) {
    requests += r.requests;
    errors += r.errors;
    latencies.insert(latencies.end(), r.latencies.begin(), r.latencies.end());
  }
  std::printf(
      "echo_load conns=%zu size=%zu threads=%zu requests=%ld seconds=%.3f rps=%.1f "
      "p50_us=%.1f p99_us=%.1f p999_us=%.1f max_us=%.1f errors=%ld client_cpu=%.3f",
      conns, size, threads, requests, seconds, static_cast<double>(requests) / seconds,
      netbench::us(netbench::quantile(latencies, 0.50)),
      netbench::us(netbench::quantile(latencies, 0.99)),
      netbench::us(netbench::quantile(latencies, 0.999)),
      netbench::us(netbench::quantile(latencies, 1.0)), errors, (self_cpu1 - self_cpu0) / seconds);
  if (server_cpu0 >= 0 && server_cpu1 >= 0 && requests > 0) {
    const double cpu = server_cpu1 - server_cpu0;
    std::printf(" server_cpu_s=%.3f server_us_per_req=%.3f\n", cpu,
                cpu * 1e6 / static_cast<double>(requests));
  } else {
    std::printf(" server_cpu_s=na server_us_per_req=na\n");
  }
  return errors == 0 && requests > 0 ? 0 : 1;
}
