// SPDX-License-Identifier: Apache-2.0
// Layer: diag. May include: diag, api, chan, sync, net, park, sched, stack, time, platform.
// The monitor thread and the deadlock detector (monitor.hpp). The rule it applies, and why it
// never fires on a program that can still make progress, is in docs/diagnostics.md,
// "Deadlock detection"; in short: every thread of the process is one goro knows, each of them
// is blocked in goro with nothing that can end its wait by itself, and two looks agree.
#include "diag/monitor.hpp"

#include <dirent.h>
#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "platform/fatal.hpp"
#include "platform/futex.hpp"
#include "sched/census.hpp"
#include "sched/scheduler.hpp"

namespace goro::detail {
namespace {

std::uint64_t now_ms() noexcept {
  return static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::milliseconds>(clock::now().time_since_epoch())
          .count());
}

std::atomic<std::uint32_t> monitor_word{0};  // bumped to wake the monitor early
std::atomic<bool> dump_requested{false};     // SIGQUIT came: the monitor writes the dump

// The SIGQUIT handler: async-signal-safe, it only asks the monitor (Go's dump runs in its
// signal-handling goroutine for the same reason: the dump allocates and takes locks).
void on_sigquit(int) {
  dump_requested.store(true, std::memory_order_relaxed);
  monitor_word.fetch_add(1, std::memory_order_release);
  futex_wake(monitor_word);
}

// What must not change between the two looks of a deadlock.
struct look {
  std::uint64_t epoch = 0;            // the census's: a thread blocked or woke
  std::vector<std::uint64_t> sleeps;  // every worker's sleep sequence
  bool operator==(const look&) const = default;
};

// The threads of this process now, as the kernel lists them.
int process_threads() noexcept {
  DIR* dir = ::opendir("/proc/self/task");
  if (dir == nullptr) return -1;
  int n = 0;
  while (const dirent* e = ::readdir(dir)) {
    if (e->d_name[0] != '.') ++n;
  }
  ::closedir(dir);
  return n;
}

// One look at the whole process. True if every thread of it is one goro knows, blocked with
// nothing that can end its wait by itself (docs/diagnostics.md, "Deadlock detection"); `mode`
// is then the weakest mode among the runtimes. REQUIRES: the census's mutex held.
bool everything_blocked(const census& c, look& out, deadlock_mode& mode) {
  // With no runtime (plain threads blocked on channels made before any), the mode is the
  // environment's, as a runtime made now would take it; a malformed value, which would make
  // that runtime throw, counts as unset.
  mode = deadlock_mode::abort;
  if (c.schedulers().empty()) {
    try {
      mode = deadlock_mode_from_environment();
    } catch (...) {  // std::invalid_argument; or no memory for its message
      mode = deadlock_mode::abort;
    }
  }
  int known = 1;  // the monitor
  for (scheduler* s : c.schedulers()) {
    if (!s->quiescent(out.sleeps)) return false;
    known += static_cast<int>(s->worker_count());
    if (s->on_deadlock() > mode) mode = s->on_deadlock();
  }
  if (c.jobs() != 0) return false;
  for (const blocked_thread* t = c.blocked(); t != nullptr; t = t->next) {
    if (t->why != nullptr && t->why->timed) return false;
    if (t->word->load(std::memory_order_seq_cst) != t->asleep_value) return false;
    ++known;
  }
  known += c.pool_threads();
  out.epoch = c.epoch();
  return process_threads() == known;
}

void write_stderr(const std::string& s) noexcept {
  const char* p = s.data();
  std::size_t n = s.size();
  while (n > 0) {
    const ssize_t k = ::write(STDERR_FILENO, p, n);
    if (k <= 0) return;
    p += k;
    n -= static_cast<std::size_t>(k);
  }
}

[[noreturn]] void monitor_main() noexcept {
  census& c = census::get();
  bool reported = false;  // this episode has been reported (report mode)
  for (;;) {
    coarse_clock_ms.store(now_ms(), std::memory_order_relaxed);
    futex_wait_until(monitor_word, monitor_word.load(std::memory_order_acquire),
                     clock::now() + monitor_period);
    coarse_clock_ms.store(now_ms(), std::memory_order_relaxed);
    if (dump_requested.exchange(false, std::memory_order_relaxed)) {
      std::string text = "goro: SIGQUIT: dump of every fiber\n";
      {
        std::lock_guard lock(c.mutex());
        describe_fibers(text, /*with_state=*/true, /*with_stacks=*/true);
      }
      write_stderr(text);
    }
    look first;
    deadlock_mode mode{};
    {
      std::lock_guard lock(c.mutex());
      if (!everything_blocked(c, first, mode)) {
        reported = false;
        continue;
      }
    }
    if (mode == deadlock_mode::off || reported) continue;
    std::this_thread::sleep_for(monitor_confirm);
    std::lock_guard lock(c.mutex());
    look second;
    if (!everything_blocked(c, second, mode) || !(first == second)) continue;
    if (mode == deadlock_mode::off) continue;
    std::string report;
    describe_fibers(report, /*with_state=*/false, /*with_stacks=*/true);
    if (mode == deadlock_mode::abort) {
      fatal_with_report(report.data(), report.size(), "all fibers are asleep - deadlock!");
    }
    write_stderr("goro: all fibers are asleep - deadlock! (GORO_DEADLOCK=report: not aborting)\n" +
                 report);
    reported = true;
  }
}

}  // namespace

void start_monitor() {
  static std::once_flag once;
  std::call_once(once, [] {
    coarse_clock_ms.store(now_ms(), std::memory_order_relaxed);
    std::thread(monitor_main).detach();
  });
}

namespace {

// The census's hook for a plain thread about to block. A monitor that cannot be started (no
// thread, no memory) leaves a program with no runtime unwatched, as before there was this hook.
void start_monitor_for_blocked_thread() noexcept {
  try {
    start_monitor();
  } catch (...) {
  }
}

// Set before main: this file is linked wherever a thread can block in goro (the park layer
// needs the scheduler, whose default runtime starts the monitor).
[[maybe_unused]] const bool hooked = [] {
  census::get().set_thread_blocked_hook(&start_monitor_for_blocked_thread);
  return true;
}();

}  // namespace

bool dump_on_sigquit_from_environment() noexcept {
  const char* env = std::getenv("GORO_DUMP_ON_SIGQUIT");
  return env != nullptr && env[0] == '1' && env[1] == '\0';
}

bool install_sigquit_dump() noexcept {
  static std::mutex mu;
  static bool installed = false;
  const std::lock_guard lock(mu);
  if (installed) return true;
  struct sigaction old {};
  if (::sigaction(SIGQUIT, nullptr, &old) != 0) return false;
  // The application owns the signal if it set a handler or ignores it: leave it alone.
  if ((old.sa_flags & SA_SIGINFO) != 0 || old.sa_handler != SIG_DFL) return false;
  struct sigaction action {};
  action.sa_handler = on_sigquit;
  action.sa_flags = SA_RESTART;
  sigemptyset(&action.sa_mask);
  installed = ::sigaction(SIGQUIT, &action, nullptr) == 0;
  return installed;
}

deadlock_mode deadlock_mode_from_environment() {
  const char* env = std::getenv("GORO_DEADLOCK");
  if (env == nullptr || *env == '\0') return deadlock_mode::abort;
  const std::string v(env);
  if (v == "abort") return deadlock_mode::abort;
  if (v == "report") return deadlock_mode::report;
  if (v == "off") return deadlock_mode::off;
  throw std::invalid_argument("goro::runtime: GORO_DEADLOCK=\"" + v +
                              "\" is not one of \"abort\", \"report\", \"off\"");
}

double seconds_since(std::uint64_t then) noexcept {
  const std::uint64_t now = now_ms();
  return then == 0 || then > now ? 0.0 : static_cast<double>(now - then) / 1000.0;
}

}  // namespace goro::detail
