// SPDX-License-Identifier: Apache-2.0
// A program for exit_test: each mode ends the process a different way while fibers of the default
// runtime are in states that used to keep it from ending. It prints "ready" once the fibers are
// where the mode wants them, then ends as the mode says.
//   exit-from-fiber      a fiber calls std::exit(3) while main() blocks on a channel
//   block-in-exit        as exit-from-fiber, and a static destructor, running on that fiber,
//                        blocks on a channel no one will send on
//   yield-in-exit        as exit-from-fiber, and a static destructor, running on that fiber,
//                        yields, then says so
//   computing            main returns while a fiber computes without ever calling goro
//   spawning             main returns while a fiber spawns fibers in a loop
//   syscall              main returns while a fiber is blocked in read(2) on a pipe
//   go-at-exit           a static destructor calls goro::go after the default runtime stopped
//   after-at-exit        a static destructor calls goro::after after the default runtime stopped
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>

#include "goro/goro.hpp"

namespace {

std::string mode;

// Constructed before the default runtime starts, so destroyed after its exit handler ran.
struct uses_goro_at_exit {
  ~uses_goro_at_exit() {
    if (mode == "go-at-exit") {
      goro::wait_group wg;
      wg.add(1);
      goro::go([&wg] { wg.done(); });
      wg.wait();
      std::printf("the static destructor's fiber ran\n");
    } else if (mode == "block-in-exit") {
      goro::chan<int> never;
      never.recv();
      std::printf("unreachable: the receive returned\n");
    } else if (mode == "spawning") {
      // Holds the exit open after the runtime stopped, so the spawning fiber surely makes
      // goro calls on a stopped runtime (a sleep, not a goro wait: nothing goro would run it).
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    } else if (mode == "yield-in-exit") {
      goro::this_fiber::yield();
      std::printf("the exiting fiber yielded and went on\n");
    } else if (mode == "after-at-exit") {
      goro::after(std::chrono::milliseconds(1)).recv();
      std::printf("the static destructor's timer fired\n");
    }
    std::fflush(stdout);
  }
} at_exit_user;

void ready() {
  std::printf("ready\n");
  std::fflush(stdout);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) return 2;
  mode = argv[1];
  goro::chan<int> started;
  if (mode == "exit-from-fiber" || mode == "block-in-exit" || mode == "yield-in-exit") {
    goro::go([] {
      ready();
      std::exit(3);
    });
    goro::chan<int> never;
    never.recv();  // main() blocks for good; the fiber's exit ends the process
    return 1;
  }
  if (mode == "computing") {
    static std::atomic<bool> forever{true};
    goro::go([started]() mutable {
      started.send(1);
      unsigned long spins = 0;
      while (forever.load(std::memory_order_relaxed)) ++spins;  // no goro call, ever
      std::printf("unreachable: %lu\n", spins);
    });
    started.recv();
    ready();
    return 0;
  }
  if (mode == "spawning") {
    goro::go([started]() mutable {
      started.send(1);
      for (;;) goro::go([] {});  // its next go() after exit begins ends it
    });
    started.recv();
    ready();
    return 0;
  }
  if (mode == "syscall") {
    static int fds[2];
    if (::pipe(fds) != 0) return 2;
    goro::go([started]() mutable {
      started.send(1);
      char c;
      const ssize_t n = ::read(fds[0], &c, 1);  // nothing is ever written: blocks for good
      std::printf("unreachable: %zd\n", n);
    });
    started.recv();
    ready();
    return 0;
  }
  if (mode == "go-at-exit" || mode == "after-at-exit") {
    goro::go([started]() mutable { started.send(1); });  // starts the default runtime
    started.recv();
    ready();
    return 0;
  }
  return 2;
}
