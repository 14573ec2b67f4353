// SPDX-License-Identifier: Apache-2.0
// A program for runtime_test's death tests: a fiber recurses without bound, which must end in
// "goro: fiber stack overflow (fiber N)" and an abort, not silent corruption. argv[1], if
// given, is the stack size in bytes to ask for (0: the default); argv[2] == "large" recurses
// through frames of 12 KiB, larger than the guard page, which only -fstack-clash-protection
// (goro's target carries it) keeps from stepping over the guard. Reaching the end of main is a
// failure (exit 3).
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "goro/goro.hpp"

namespace {

// Each frame keeps a buffer the optimiser cannot drop, and the recursion is not a tail call.
// Its lowest byte is written first: in a large frame, that write lands a whole frame below
// the last page touched, past a single guard page.
template <std::size_t FrameBytes>
__attribute__((noinline)) unsigned recurse(unsigned depth) {
  volatile char frame[FrameBytes];
  frame[0] = static_cast<char>(depth);
  frame[sizeof frame - 1] = static_cast<char>(depth);
  const unsigned below = recurse<FrameBytes>(depth + 1);
  asm volatile("" : : "r"(frame) : "memory");  // the frame stays live across the call
  return below + static_cast<unsigned>(frame[0]);
}

}  // namespace

int main(int argc, char** argv) {
  const std::size_t stack = argc > 1 ? std::strtoull(argv[1], nullptr, 10) : 0;
  const bool large = argc > 2 && std::strcmp(argv[2], "large") == 0;
  goro::wait_group wg;
  wg.add(1);
  {
    goro::runtime rt{goro::options{.workers = 2, .stack_size = stack}};
    rt.go([&wg, large] {
      std::printf("fiber %llu recursing\n",
                  static_cast<unsigned long long>(goro::this_fiber::get_id()));
      std::fflush(stdout);
      std::printf("%u\n", large ? recurse<12 * 1024>(0) : recurse<512>(0));
      wg.done();
    });
    wg.wait();
  }
  std::puts("the overflow did not end the process");
  return 3;
}
