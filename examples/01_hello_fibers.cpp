// SPDX-License-Identifier: Apache-2.0
// The smallest goro program: a hundred thousand fibers on the default runtime, joined with a
// wait_group, each sleeping a little without holding a thread.
#include <atomic>
#include <chrono>
#include <cstdio>

#include <goro/goro.hpp>

int main() {
  using namespace std::chrono_literals;
  constexpr int fibers = 100'000;
  std::atomic<long> sum{0};
  goro::wait_group wg;
  wg.add(fibers);
  for (int i = 0; i < fibers; ++i) {
    goro::go(
        [&sum, &wg](int id) {
          goro::this_fiber::sleep_for(10ms);  // parks the fiber, not the worker thread
          sum += id;
          wg.done();
        },
        i);
  }
  wg.wait();  // main() is a plain thread: this blocks it
  std::printf("%d fibers slept and summed to %ld\n", fibers, sum.load());
  return sum.load() == static_cast<long>(fibers) * (fibers - 1) / 2 ? 0 : 1;
}
