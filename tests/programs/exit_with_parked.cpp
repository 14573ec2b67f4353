// SPDX-License-Identifier: Apache-2.0
// A program for runtime_test's "main returns" check: from main() it starts fibers on the
// default runtime with goro::go, leaves some parked forever on a wait_group that never reaches
// zero and some asleep for an hour, each holding heap memory on its stack, and returns from
// main. Go's rule applies: the process must exit 0 promptly, with no hang, crash or sanitizer
// report. With the argument "yielding" it also leaves two fibers yielding to each other forever.
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "goro/goro.hpp"

int main(int argc, char** argv) {
  const bool yielding = argc > 1 && std::strcmp(argv[1], "yielding") == 0;
  // A fifth as many under ThreadSanitizer, where each fiber's creation costs milliseconds
  // (tests/test_support.hpp, fiber_count): the exit path is the same for 200 as for 1,000.
#if defined(__SANITIZE_THREAD__)
  constexpr int parked_fibers = 200;
#else
  constexpr int parked_fibers = 1000;
#endif
  constexpr int sleeping_fibers = 10;

  goro::wait_group started;
  static goro::wait_group never;  // outlives the abandoned fibers that wait on it
  never.add(1);

  started.add(parked_fibers + sleeping_fibers);
  for (int i = 0; i < parked_fibers; ++i) {
    goro::go([&started, i] {
      // Heap memory reachable only from this fiber's stack: LeakSanitizer must not report it.
      auto held = std::make_unique<std::string>(100, static_cast<char>('a' + i % 26));
      started.done();
      never.wait();
      std::printf("unreachable: %s\n", held->c_str());
    });
  }
  for (int i = 0; i < sleeping_fibers; ++i) {
    goro::go([&started] {
      std::vector<int> held(1000, 7);
      started.done();
      goro::this_fiber::sleep_for(std::chrono::hours(1));
      std::printf("unreachable: %d\n", held[0]);
    });
  }
  if (yielding) {
    started.add(2);
    for (int i = 0; i < 2; ++i) {
      goro::go([&started] {
        started.done();
        for (;;) goro::this_fiber::yield();
      });
    }
  }
  started.wait();  // blocks main() until every fiber has run up to its parking point
  std::printf("main returning\n");
  std::fflush(stdout);
  return 0;
}
