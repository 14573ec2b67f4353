// SPDX-License-Identifier: Apache-2.0
// Helpers shared by goro's tests: the stress size knob (GORO_STRESS_SCALE), the fixture base
// that instantiates a concurrency test over worker counts 1, 2, 4 and 8, a subprocess runner
// for death tests and whole-program tests (tests/programs/, found through
// GORO_TEST_PROGRAM_DIR), and readers for the process's resident memory and CPU time. Header
// only, so each test binary stays one source file.
#pragma once

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <iterator>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "goro/diag.hpp"
#include "goro/runtime.hpp"
#include "goro/wait_group.hpp"

extern char** environ;

// Which sanitizer this test is built with (the presets build the library and the tests alike).
#if defined(__SANITIZE_ADDRESS__)
#define GORO_TEST_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define GORO_TEST_ASAN 1
#endif
#endif
#if defined(__SANITIZE_THREAD__)
#define GORO_TEST_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define GORO_TEST_TSAN 1
#endif
#endif

namespace goro_test {

#if defined(GORO_TEST_ASAN) || defined(GORO_TEST_TSAN)
inline constexpr bool sanitized = true;
#else
inline constexpr bool sanitized = false;
#endif

#ifdef NDEBUG
inline constexpr bool optimized = true;
#else
inline constexpr bool optimized = false;
#endif

// ---- size knob ---------------------------------------------------------------------------

// GORO_STRESS_SCALE (a positive number, default 1.0) multiplies every stress size. The asan
// and tsan test presets set it below 1 so that the suite keeps its running time there.
inline double stress_scale() {
  static const double scale = [] {
    const char* env = std::getenv("GORO_STRESS_SCALE");
    if (env == nullptr || *env == '\0') return 1.0;
    char* end = nullptr;
    const double v = std::strtod(env, &end);
    if (end == env || *end != '\0' || !(v > 0.0) || !std::isfinite(v)) {
      std::fprintf(stderr, "GORO_STRESS_SCALE=\"%s\" is not a positive number; using 1\n", env);
      return 1.0;
    }
    return v;
  }();
  return scale;
}

// n scaled by the knob, at least 1.
inline std::size_t scaled(std::size_t n) {
  const double v = std::floor(static_cast<double>(n) * stress_scale());
  return v < 1.0 ? 1 : static_cast<std::size_t>(v);
}

// At most n fibers alive at once, or fewer where the build cannot hold n: ThreadSanitizer
// gives every fiber a slot in its thread table, which holds 8128 entries (GCC 12's libtsan;
// past it the process dies with "Thread limit exceeded").
inline std::size_t live_fiber_cap(std::size_t n) {
#ifdef GORO_TEST_TSAN
  return std::min<std::size_t>(n, 6000);
#else
  return n;
#endif
}

// n, or a fifth of it (at least 1) under ThreadSanitizer: the number of fibers for a test that
// spawns many only to repeat the race or the check it makes on each. TSan's fiber creation
// zeroes fresh memory for the state it keeps per fiber (perf: __tsan::FiberCreate's memset and
// its page faults), 3 to 5 ms a fiber on the two-core CI machine, which made the tests of 1,000
// to 5,000 fibers most of the tsan suite's time. Not for a test whose point is the number.
inline constexpr std::size_t fiber_count(std::size_t n) {
#ifdef GORO_TEST_TSAN
  return n / 5 > 0 ? n / 5 : 1;
#else
  return n;
#endif
}

// ---- worker-count fixture ----------------------------------------------------------------

// Base for concurrency tests run once per worker count. Instantiate each suite with
//   INSTANTIATE_TEST_SUITE_P(Workers, Suite, goro_test::worker_counts(),
//                            goro_test::worker_count_name);
// which names the instances workers_1, workers_2, workers_4 and workers_8.
class workers_test : public ::testing::TestWithParam<std::size_t> {
 protected:
  std::size_t workers() const { return GetParam(); }
  goro::options opts() const { return goro::options{.workers = GetParam()}; }
};

inline auto worker_counts() {
  return ::testing::Values(std::size_t{1}, std::size_t{2}, std::size_t{4}, std::size_t{8});
}

inline std::string worker_count_name(const ::testing::TestParamInfo<std::size_t>& info) {
  return "workers_" + std::to_string(info.param);
}

// ---- threads -----------------------------------------------------------------------------

// The calling OS thread's id. Use this, not std::this_thread::get_id(), in a fiber that may
// switch between two reads: pthread_self() is declared __attribute__((const)), so an
// optimising compiler may reuse one call's result across a fiber switch, and with it a thread
// the fiber has since left. A system call cannot be merged so.
inline long current_thread() noexcept { return ::syscall(SYS_gettid); }

// ---- environment -------------------------------------------------------------------------

// Sets (or, with nullopt, unsets) an environment variable for the guard's lifetime.
class scoped_env {
 public:
  scoped_env(const char* name, std::optional<std::string> value) : name_(name) {
    if (const char* old = std::getenv(name)) old_ = old;
    if (value) {
      ::setenv(name, value->c_str(), 1);
    } else {
      ::unsetenv(name);
    }
  }
  ~scoped_env() {
    if (old_) {
      ::setenv(name_.c_str(), old_->c_str(), 1);
    } else {
      ::unsetenv(name_.c_str());
    }
  }
  scoped_env(const scoped_env&) = delete;
  scoped_env& operator=(const scoped_env&) = delete;

 private:
  std::string name_;
  std::optional<std::string> old_;
};

// ---- subprocesses ------------------------------------------------------------------------

struct process_result {
  bool started = false;    // posix_spawn succeeded
  bool timed_out = false;  // killed with SIGKILL after the timeout
  bool exited = false;     // WIFEXITED
  int exit_code = -1;      // WEXITSTATUS, when exited
  int signal = 0;          // WTERMSIG, when killed by a signal
  std::chrono::milliseconds elapsed{0};
  std::string out;
  std::string err;

  // For failure messages.
  std::string describe() const {
    std::string s;
    if (!started) return "did not start";
    if (timed_out) s += "timed out; ";
    if (exited) s += "exited with " + std::to_string(exit_code);
    if (signal != 0) s += std::string("killed by signal ") + ::strsignal(signal);
    s += " after " + std::to_string(elapsed.count()) + " ms\n--- stdout ---\n" + out +
         "--- stderr ---\n" + err;
    return s;
  }
};

// The path of tests/programs/<name>.cpp's executable.
inline std::string program_path(const std::string& name) {
  return std::string(GORO_TEST_PROGRAM_DIR) + "/" + name;
}

// Runs `path` with `args` (argv[1...]), the current environment plus `extra_env`
// ("NAME=value" strings; a bare "NAME" removes NAME), and stdout and stderr captured. Kills it with
// SIGKILL once `timeout` has passed. No shell is involved.
inline process_result run_program(const std::string& path, const std::vector<std::string>& args,
                                  std::chrono::milliseconds timeout,
                                  const std::vector<std::string>& extra_env = {}) {
  process_result r;
  int out_pipe[2];
  int err_pipe[2];
  if (::pipe2(out_pipe, O_CLOEXEC) != 0) return r;
  if (::pipe2(err_pipe, O_CLOEXEC) != 0) {
    ::close(out_pipe[0]);
    ::close(out_pipe[1]);
    return r;
  }

  std::vector<std::string> argv_s;
  argv_s.push_back(path);
  argv_s.insert(argv_s.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (std::string& a : argv_s) argv.push_back(a.data());
  argv.push_back(nullptr);

  std::vector<std::string> env_s;
  for (char** e = environ; *e != nullptr; ++e) {
    const std::string entry(*e);
    const std::string name = entry.substr(0, entry.find('='));
    const bool overridden = std::any_of(extra_env.begin(), extra_env.end(), [&](const auto& x) {
      return x.substr(0, x.find('=')) == name;
    });
    if (!overridden) env_s.push_back(entry);
  }
  std::copy_if(extra_env.begin(), extra_env.end(), std::back_inserter(env_s),
               [](const std::string& x) { return x.find('=') != std::string::npos; });
  std::vector<char*> envp;
  for (std::string& e : env_s) envp.push_back(e.data());
  envp.push_back(nullptr);

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, out_pipe[1], STDOUT_FILENO);
  posix_spawn_file_actions_adddup2(&actions, err_pipe[1], STDERR_FILENO);
  const auto start = std::chrono::steady_clock::now();
  pid_t pid = -1;
  const int rc = ::posix_spawn(&pid, path.c_str(), &actions, nullptr, argv.data(), envp.data());
  posix_spawn_file_actions_destroy(&actions);
  ::close(out_pipe[1]);
  ::close(err_pipe[1]);
  if (rc != 0) {
    ::close(out_pipe[0]);
    ::close(err_pipe[0]);
    r.err = std::string("posix_spawn: ") + std::strerror(rc);
    return r;
  }
  r.started = true;

  const auto deadline = start + timeout;
  pollfd fds[2] = {{out_pipe[0], POLLIN, 0}, {err_pipe[0], POLLIN, 0}};
  std::string* sinks[2] = {&r.out, &r.err};
  int open_fds = 2;
  int status = 0;
  bool reaped = false;
  while (!reaped) {
    const auto now = std::chrono::steady_clock::now();
    if (now >= deadline && !r.timed_out) {
      r.timed_out = true;
      ::kill(pid, SIGKILL);
    }
    if (open_fds > 0) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - now);
      const int wait_ms =
          r.timed_out ? 100 : static_cast<int>(std::clamp<long long>(left.count(), 1, 100));
      if (::poll(fds, 2, wait_ms) > 0) {
        for (int i = 0; i < 2; ++i) {
          if (fds[i].fd < 0 || fds[i].revents == 0) continue;
          char buf[4096];
          const ssize_t n = ::read(fds[i].fd, buf, sizeof buf);
          if (n > 0) {
            sinks[i]->append(buf, static_cast<std::size_t>(n));
          } else if (n == 0 || errno != EINTR) {
            ::close(fds[i].fd);
            fds[i].fd = -1;
            --open_fds;
          }
        }
      }
    } else {
      // Both pipes are closed; wait for the exit, polling so the timeout still applies.
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    if (::waitpid(pid, &status, WNOHANG) == pid) reaped = true;
  }
  // Drain what is left in the pipes (the child has exited, so reads cannot block forever).
  for (int i = 0; i < 2; ++i) {
    if (fds[i].fd < 0) continue;
    ::fcntl(fds[i].fd, F_SETFL, O_NONBLOCK);
    char buf[4096];
    ssize_t n;
    while ((n = ::read(fds[i].fd, buf, sizeof buf)) > 0) {
      sinks[i]->append(buf, static_cast<std::size_t>(n));
    }
    ::close(fds[i].fd);
  }
  r.elapsed = std::chrono::duration_cast<std::chrono::milliseconds>(
      std::chrono::steady_clock::now() - start);
  if (WIFEXITED(status)) {
    r.exited = true;
    r.exit_code = WEXITSTATUS(status);
  } else if (WIFSIGNALED(status)) {
    r.signal = WTERMSIG(status);
  }
  return r;
}

// ---- resources ---------------------------------------------------------------------------

// The process's resident set size (VmRSS in /proc/self/status), in bytes; 0 if unreadable.
inline std::size_t resident_bytes() {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmRSS:", 0) == 0) {
      return static_cast<std::size_t>(std::strtoull(line.c_str() + 6, nullptr, 10)) * 1024;
    }
  }
  return 0;
}

// CPU time used so far by every thread of this process.
inline std::chrono::nanoseconds process_cpu_time() {
  timespec ts{};
  ::clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return std::chrono::seconds(ts.tv_sec) + std::chrono::nanoseconds(ts.tv_nsec);
}

// Wall time since `start`, in (fractional) milliseconds.
inline double ms_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start)
      .count();
}

// How long a check that proves "this operation blocks" waits before concluding it does.
constexpr auto blocked_for = std::chrono::milliseconds(5);

// Runs body(i) for i in [0, n) on n fibers of rt and waits until every one has returned.
template <class F>
void run_fibers(goro::runtime& rt, std::size_t n, F body) {
  goro::wait_group wg;
  wg.add(static_cast<std::int64_t>(n));
  for (std::size_t i = 0; i < n; ++i) {
    rt.go([&wg, &body, i] {
      body(i);
      wg.done();
    });
  }
  wg.wait();
}

// xorshift64*: a small seeded generator, one per fiber, for randomized stress tests.
class rng {
 public:
  explicit rng(std::uint64_t seed) : s_(seed * 0x9E3779B97F4A7C15ULL + 1) {}
  std::uint32_t below(std::uint32_t n) {
    s_ ^= s_ >> 12;
    s_ ^= s_ << 25;
    s_ ^= s_ >> 27;
    return static_cast<std::uint32_t>(((s_ * 0x2545F4914F6CDD1DULL) >> 32) % n);
  }

 private:
  std::uint64_t s_;
};

// Waits for wg for up to `limit`. Past it the test cannot unwind (its fibers use its locals and
// may be parked for good), so it prints every fiber (goro::dump, with what each waits on) and
// aborts: a deadlock or a lost wake-up fails the run within the limit, never hangs it.
inline void await(goro::wait_group& wg, std::chrono::seconds limit, const std::string& what) {
  if (wg.wait_for(limit)) return;
  std::cerr << "stuck for " << limit.count() << " s: " << what << "\n";
  goro::dump(std::cerr);
  std::abort();
}

}  // namespace goro_test
