// SPDX-License-Identifier: Apache-2.0
// A program for timer_test's check that receiving on a timer's channel never deadlocks a
// worker: on a runtime of argv[1] workers, one fiber receives argv[2] times from a fresh
// timer's channel, in the way argv[3] names ("timer": goro::timer t(0ns); t.c().recv();
// "after": goro::after(0ns).recv(); "micro": a 1 us timer). Each receive parks the fiber with
// the channel's lock held until its switch is done, while due timers wait to send on that
// very channel. Prints "done" and exits 0 once every receive has completed; a deadlock shows
// as a hang, which the test kills.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "goro/goro.hpp"

int main(int argc, char** argv) {
  if (argc != 4) {
    std::fprintf(stderr, "usage: timer_recv_loop WORKERS ITERATIONS timer|after|micro\n");
    return 2;
  }
  const auto workers = static_cast<std::size_t>(std::atoi(argv[1]));
  const int iterations = std::atoi(argv[2]);
  const char* how = argv[3];
  using namespace std::chrono_literals;
  int received = 0;
  {
    goro::runtime rt{goro::options{.workers = workers}};
    rt.go([&] {
      for (int i = 0; i < iterations; ++i) {
        bool ok = false;
        if (std::strcmp(how, "timer") == 0) {
          goro::timer t(0ns);
          ok = goro::time_channel(t.c()).recv().has_value();
        } else if (std::strcmp(how, "after") == 0) {
          ok = goro::after(0ns).recv().has_value();
        } else {
          goro::timer t(1us);
          ok = goro::time_channel(t.c()).recv().has_value();
        }
        if (ok) ++received;
      }
    });
  }
  if (received != iterations) {
    std::printf("received %d of %d\n", received, iterations);
    return 1;
  }
  std::printf("done\n");
  return 0;
}
