// SPDX-License-Identifier: Apache-2.0
// Fibers in known places, for tests/gdb_script_test.py: gdb/goro.py must list them, in this
// live process and in a core file of it, and walk the parked ones' stacks. One fiber parks on
// a channel three named calls deep, one on a mutex, one on a wait_group, one sleeps and one
// keeps running. Once goro::dump shows all of them where they should be, the program writes
// that dump, then "ready", and waits for its standard input to close. Each spawn line carries
// a `gdb-site:` mark the test finds the line numbers by.
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <sstream>
#include <string>
#include <thread>

#include <goro/diag.hpp>
#include <goro/goro.hpp>

namespace {

std::atomic<bool> keep_running{true};

// Named frames the test expects in the backtrace of the fiber parked on `c`. Not inlined, and
// each does work after its call, so no call is a tail call even when optimised.
__attribute__((noinline)) int gdb_depth_three(goro::chan<int>& c) {
  const int v = c.recv().value_or(0);
  return v + 1;
}
__attribute__((noinline)) int gdb_depth_two(goro::chan<int>& c) { return gdb_depth_three(c) * 3; }
__attribute__((noinline)) int gdb_depth_one(goro::chan<int>& c) { return gdb_depth_two(c) + 5; }

std::size_t count(const std::string& text, const std::string& what) {
  std::size_t n = 0;
  for (std::size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) {
    ++n;
  }
  return n;
}

}  // namespace

int main() {
  goro::runtime rt(goro::options{.workers = 2});
  goro::chan<int> never;
  static goro::mutex held;
  goro::wait_group never_done;
  never_done.add(1);
  held.lock();

  rt.go([never]() mutable {  // gdb-site: chan
    volatile int r = gdb_depth_one(never);
    (void)r;
  });
  rt.go([] {  // gdb-site: mutex
    held.lock();
    held.unlock();
  });
  rt.go([&never_done] { never_done.wait(); });                        // gdb-site: wait_group
  rt.go([] { goro::this_fiber::sleep_for(std::chrono::hours(1)); });  // gdb-site: sleep
  rt.go([] {                                                          // gdb-site: running
    // Stays on its worker (the thread sleeps, the fiber does not park): a running fiber.
    while (keep_running.load()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  });

  // Waits, through goro's own dump, until every fiber is where the test expects it.
  std::string dump;
  for (int i = 0; i < 2000; ++i) {
    std::ostringstream out;
    goro::dump(out);
    dump = out.str();
    if (count(dump, "[parked: ") == 4 && count(dump, "[running]") == 1) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  std::printf("%s\nready %d\n", dump.c_str(), static_cast<int>(::getpid()));
  std::fflush(stdout);
  while (std::getchar() != EOF) {
  }
  // The fibers stay parked for good; ~runtime would wait for them.
  std::_Exit(0);
}
