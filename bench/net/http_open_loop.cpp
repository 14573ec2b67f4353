// SPDX-License-Identifier: Apache-2.0
// http_open_loop: the open-loop HTTP load client of the http-latency workload (WORKLOADS.md,
// "Network workloads"), the same program for goro's http_service and Go's. Plain C++ on one
// thread with one epoll set and non-blocking sockets.
//
// Requests go out on a fixed timetable, --rate per second: request k is due at
// start + k / rate, whatever the answers to earlier ones do. Each of --conns keep-alive
// connections carries one request at a time; a request due while every connection is busy waits
// in a queue for the next free one. Latency runs from the time a request was due, not from the
// time it was sent, so a server that stalls is charged for every request it delayed (the
// "coordinated omission" that closed-loop tools such as wrk fall into; wrk2 measures this way).
// Requests due in the first --warmup seconds are sent but not counted; those due in the next
// --seconds are. After that the client waits up to --drain seconds for answers still out;
// those that do not come are "timeouts", counted in the percentiles with the time they waited.
// With --server-pid it reads that process's CPU time (utime+stime, /proc/PID/stat) when the
// measured window starts and ends. Prints one line:
//
//   http_open_loop path=/json rate=R conns=C seconds=S scheduled=N completed=M achieved_rps=X
//       p50_us=.. p90_us=.. p99_us=.. p999_us=.. max_us=.. errors=E timeouts=T client_cpu=F
//       server_cpu_s=G server_us_per_req=H
//
// An error is a response whose status is not 200, an unparsable response, or a connection the
// server closed or reset with a request on it (the client reconnects). Responses must carry a
// Content-Length or be chunked. Exits 1 on any error or if no measured request completed.
#include <sys/epoll.h>
#include <sys/prctl.h>

#include <cctype>
#include <csignal>
#include <deque>
#include <optional>
#include <string_view>

#include "common.hpp"

namespace {

constexpr const char* usage =
    "usage: http_open_loop --connect HOST:PORT --rate R [--path P] [--conns C] [--warmup S]\n"
    "                      [--seconds S] [--drain S] [--server-pid PID]\n"
    "  --rate        requests per second, on a fixed timetable (required)\n"
    "  --path        the path to GET (default /json)\n"
    "  --conns       keep-alive connections, each with at most one request out (default 50)\n"
    "  --warmup      seconds of requests not counted (default 1)\n"
    "  --seconds     seconds of counted requests (default 5)\n"
    "  --drain       seconds to wait for answers after the last request is due (default 2)\n"
    "  --server-pid  read this process's CPU time when the measured window starts and ends\n";

struct connection {
  int fd = -1;
  bool busy = false;
  std::int64_t due = 0;  // when the request on it was due
  std::string in;        // bytes received and not yet consumed
};

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(a[i])) !=
        std::tolower(static_cast<unsigned char>(b[i]))) {
      return false;
    }
  }
  return true;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r'))
    s.remove_suffix(1);
  return s;
}

// One response parsed from the front of a buffer.
struct response {
  int status = 0;
  std::size_t length = 0;  // bytes of the buffer it takes, head and body
  bool close = false;      // the server said "Connection: close"
};

// The length of a chunked body starting at `body`, or nullopt while it is incomplete or, with
// `bad` set, malformed. Trailers are not supported.
std::optional<std::size_t> chunked_length(std::string_view body, bool& bad) {
  std::size_t pos = 0;
  for (;;) {
    const auto eol = body.find("\r\n", pos);
    if (eol == std::string_view::npos) return std::nullopt;
    std::size_t size = 0;
    std::size_t digits = 0;
    for (std::size_t i = pos; i < eol && std::isxdigit(static_cast<unsigned char>(body[i])); ++i) {
      const char d = static_cast<char>(std::tolower(static_cast<unsigned char>(body[i])));
      size = size * 16 + static_cast<std::size_t>(d <= '9' ? d - '0' : d - 'a' + 10);
      ++digits;
    }
    if (digits == 0) {
      bad = true;
      return std::nullopt;
    }
    pos = eol + 2;
    if (size == 0) {
      if (body.size() < pos + 2) return std::nullopt;
      if (body.substr(pos, 2) != "\r\n") {
        bad = true;
        return std::nullopt;
      }
      return pos + 2;
    }
    if (body.size() < pos + size + 2) return std::nullopt;
    pos += size + 2;
  }
}

// Parses the response at the front of `buf`: nullopt while incomplete; status -1 if malformed.
std::optional<response> parse_response(std::string_view buf) {
  const auto head_end = buf.find("\r\n\r\n");
  if (head_end == std::string_view::npos) {
    if (buf.size() > 64 * 1024) return response{-1, 0, true};
    return std::nullopt;
  }
  const std::string_view head = buf.substr(0, head_end);
  response r;
  if (head.size() < 12 || head.substr(0, 7) != "HTTP/1.") return response{-1, 0, true};
  r.status = std::atoi(std::string(head.substr(9, 3)).c_str());
  std::optional<std::size_t> content_length;
  bool chunked = false;
  std::size_t pos = head.find("\r\n");
  while (pos != std::string_view::npos && pos < head.size()) {
    const std::size_t start = pos + 2;
    std::size_t end = head.find("\r\n", start);
    if (end == std::string_view::npos) end = head.size();
    const std::string_view line = head.substr(start, end - start);
    const auto colon = line.find(':');
    if (colon != std::string_view::npos) {
      const std::string_view name = trim(line.substr(0, colon));
      const std::string_view value = trim(line.substr(colon + 1));
      if (iequals(name, "content-length")) {
        content_length = static_cast<std::size_t>(std::atoll(std::string(value).c_str()));
      } else if (iequals(name, "transfer-encoding")) {
        chunked = value.find("chunked") != std::string_view::npos;
      } else if (iequals(name, "connection")) {
        r.close = iequals(value, "close");
      }
    }
    pos = end == head.size() ? std::string_view::npos : end;
  }
  const std::size_t body_start = head_end + 4;
  if (chunked) {
    bool bad = false;
    const auto n = chunked_length(buf.substr(body_start), bad);
    if (bad) return response{-1, 0, true};
    if (!n) return std::nullopt;
    r.length = body_start + *n;
  } else if (content_length) {
    if (buf.size() < body_start + *content_length) return std::nullopt;
    r.length = body_start + *content_length;
  } else if (r.status == 204 || r.status == 304 || r.status / 100 == 1) {
    r.length = body_start;
  } else {
    return response{-1, 0, true};  // a body delimited by close: not for a keep-alive benchmark
  }
  return r;
}

void sleep_timeout(int ep, epoll_event* events, int max, std::int64_t ns, int& n) {
  const timespec ts{static_cast<time_t>(ns / 1'000'000'000), static_cast<long>(ns % 1'000'000'000)};
  n = ::epoll_pwait2(ep, events, max, &ts, nullptr);
}

}  // namespace

int main(int argc, char** argv) {
  const netbench::flags f(
      argc, argv, {"connect", "rate", "path", "conns", "warmup", "seconds", "drain", "server-pid"},
      {}, usage);
  if (!f.has("connect") || !f.has("rate")) f.fail("--connect and --rate are required");
  const double rate = f.num("rate", 0);
  const std::string path = f.str("path", "/json");
  const auto conns = static_cast<std::size_t>(f.num("conns", 50));
  const double warmup = f.num("warmup", 1);
  const double seconds = f.num("seconds", 5);
  const double drain = f.num("drain", 2);
  const auto server_pid = static_cast<long>(f.num("server-pid", 0));
  if (rate <= 0 || conns == 0 || seconds <= 0) f.fail("--rate, --conns and --seconds must be > 0");
  std::signal(SIGPIPE, SIG_IGN);
  // Timers fire on time, not up to 50 us late (the default slack of a normal thread).
  ::prctl(PR_SET_TIMERSLACK, 1UL, 0UL, 0UL, 0UL);

  const std::string hostport = f.str("connect", "");
  sockaddr_in address{};
  try {
    address = netbench::parse_address(hostport);
  } catch (const std::exception& e) {
    f.fail(e.what());
  }
  const std::string request = "GET " + path + " HTTP/1.1\r\nHost: " + hostport + "\r\n\r\n";

  const int ep = ::epoll_create1(EPOLL_CLOEXEC);
  std::vector<connection> cs(conns);
  std::deque<std::size_t> idle;
  auto open_conn = [&](std::size_t i) {
    connection& c = cs[i];
    c.fd = netbench::connect_tcp(address, true);
    if (c.fd < 0) {
      std::fprintf(stderr, "http_open_loop: connect to %s: %s\n", hostport.c_str(),
                   std::strerror(errno));
      std::exit(1);
    }
    c.busy = false;
    c.in.clear();
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u64 = i;
    ::epoll_ctl(ep, EPOLL_CTL_ADD, c.fd, &ev);
    idle.push_back(i);
  };
  for (std::size_t i = 0; i < conns; ++i) open_conn(i);

  const auto interval = static_cast<std::int64_t>(1e9 / rate);
  const std::int64_t t_start = netbench::now_ns();
  const std::int64_t t_measure = t_start + static_cast<std::int64_t>(warmup * 1e9);
  const std::int64_t t_end = t_measure + static_cast<std::int64_t>(seconds * 1e9);
  const std::int64_t t_give_up = t_end + static_cast<std::int64_t>(drain * 1e9);
  auto measured = [&](std::int64_t due) { return due >= t_measure && due < t_end; };

  std::int64_t next_due = t_start;  // the next request not yet queued
  std::deque<std::int64_t> queue;   // requests due, waiting for a free connection
  std::vector<std::int64_t> latencies;
  latencies.reserve(static_cast<std::size_t>(rate * seconds * 1.1) + 16);
  long scheduled = 0, completed = 0, errors = 0, outstanding = 0;  // measured requests only
  double server_cpu0 = -1, server_cpu1 = -1, self_cpu0 = 0, self_cpu1 = 0;
  bool started = false, ended = false;

  auto error = [&](const std::string& what) {
    if (errors++ < 5) std::fprintf(stderr, "http_open_loop: %s\n", what.c_str());
  };
  // Drops connection i (after an error or "Connection: close") and opens a new one.
  auto reopen = [&](std::size_t i) {
    ::epoll_ctl(ep, EPOLL_CTL_DEL, cs[i].fd, nullptr);
    ::close(cs[i].fd);
    std::erase(idle, i);
    open_conn(i);
  };
  auto finish = [&](connection& c, std::int64_t now, bool ok) {
    if (measured(c.due)) {
      --outstanding;
      if (ok) {
        ++completed;
        latencies.push_back(now - c.due);
      }
    }
    c.busy = false;
  };

  std::vector<epoll_event> events(conns);
  for (;;) {
    std::int64_t now = netbench::now_ns();
    if (!started && now >= t_measure) {
      started = true;
      server_cpu0 = netbench::process_cpu_seconds(server_pid);
      self_cpu0 = netbench::self_cpu_seconds();
    }
    if (!ended && now >= t_end) {
      ended = true;
      server_cpu1 = netbench::process_cpu_seconds(server_pid);
      self_cpu1 = netbench::self_cpu_seconds();
    }
    while (next_due <= now && next_due < t_end) {
      queue.push_back(next_due);
      if (measured(next_due)) ++scheduled, ++outstanding;
      next_due += interval;
    }
    while (!queue.empty() && !idle.empty()) {
      const std::size_t i = idle.front();
      idle.pop_front();
      connection& c = cs[i];
      c.busy = true;
      c.due = queue.front();
      queue.pop_front();
      const ssize_t n = ::send(c.fd, request.data(), request.size(), MSG_NOSIGNAL);
      if (n != static_cast<ssize_t>(request.size())) {
        error(std::string("send: ") + (n < 0 ? std::strerror(errno) : "cut short"));
        finish(c, now, false);
        reopen(i);
      }
    }
    if (ended && (outstanding == 0 || now >= t_give_up)) break;

    std::int64_t wake = t_give_up;
    if (next_due < t_end) wake = std::min(wake, next_due);
    if (!started) wake = std::min(wake, t_measure);
    if (!ended) wake = std::min(wake, t_end);
    int n = 0;
    sleep_timeout(ep, events.data(), static_cast<int>(events.size()),
                  std::max<std::int64_t>(0, wake - now), n);
    if (n <= 0) continue;
    now = netbench::now_ns();
    for (int k = 0; k < n; ++k) {
      const std::size_t i = events[static_cast<std::size_t>(k)].data.u64;
      connection& c = cs[i];
      char buf[16 * 1024];
      const ssize_t got = ::recv(c.fd, buf, sizeof buf, 0);
      if (got < 0 && errno == EAGAIN) continue;
      if (got <= 0) {
        if (c.busy) {
          error(got == 0 ? "the server closed a connection with a request on it"
                         : std::string("recv: ") + std::strerror(errno));
          finish(c, now, false);
        }
        reopen(i);
        continue;
      }
      c.in.append(buf, static_cast<std::size_t>(got));
      const auto r = parse_response(c.in);
      if (!r) continue;
      if (!c.busy) {
        error("a response to no request");
        reopen(i);
        continue;
      }
      const bool ok = r->status == 200;
      if (!ok) {
        error(r->status < 0 ? "an unparsable response (or one without Content-Length)"
                            : "status " + std::to_string(r->status));
      }
      finish(c, now, ok);
      if (r->status < 0 || r->close || r->length != c.in.size()) {
        reopen(i);  // a malformed answer, the server closing, or bytes beyond the response
      } else {
        c.in.clear();
        idle.push_back(i);
      }
    }
  }
  if (!ended) {
    server_cpu1 = netbench::process_cpu_seconds(server_pid);
    self_cpu1 = netbench::self_cpu_seconds();
  }
  // Requests that never got an answer (never sent, or sent and not answered) count as waiting
  // until the client gave up.
  const std::int64_t give_up = netbench::now_ns();
  for (auto& c : cs) {
    if (c.busy && measured(c.due)) latencies.push_back(give_up - c.due);
    if (c.fd >= 0) ::close(c.fd);
  }
  for (const std::int64_t due : queue) {
    if (measured(due)) latencies.push_back(give_up - due);
  }
  ::close(ep);
  const long timeouts = outstanding;

  std::printf(
      "http_open_loop path=%s rate=%.1f conns=%zu seconds=%.3f scheduled=%ld "
      "completed=%ld achieved_rps=%.1f p50_us=%.1f p90_us=%.1f p99_us=%.1f p999_us=%.1f "
      "max_us=%.1f errors=%ld timeouts=%ld client_cpu=%.3f",
      path.c_str(), rate, conns, seconds, scheduled, completed,
      static_cast<double>(completed) / seconds, netbench::us(netbench::quantile(latencies, 0.50)),
      netbench::us(netbench::quantile(latencies, 0.90)),
      netbench::us(netbench::quantile(latencies, 0.99)),
      netbench::us(netbench::quantile(latencies, 0.999)),
      netbench::us(netbench::quantile(latencies, 1.0)), errors, timeouts,
      (self_cpu1 - self_cpu0) / seconds);
  if (server_cpu0 >= 0 && server_cpu1 >= 0 && completed > 0) {
    const double cpu = server_cpu1 - server_cpu0;
    std::printf(" server_cpu_s=%.3f server_us_per_req=%.3f\n", cpu,
                cpu * 1e6 / static_cast<double>(completed));
  } else {
    std::printf(" server_cpu_s=na server_us_per_req=na\n");
  }
  return errors == 0 && completed > 0 ? 0 : 1;
}
