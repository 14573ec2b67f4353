// SPDX-License-Identifier: Apache-2.0
// floor-wake: the floor under a wake-up between threads (issue 18). Two plain threads bounce a
// turn n times through one futex word: each sets the word to the other's turn, wakes it with
// FUTEX_WAKE and sleeps with FUTEX_WAIT until its own turn comes back. One round trip is two
// wake-ups and two sleeps, what an idle worker's futex costs whenever work arrives for it
// (docs/scheduler.md). Neither side spins: the figure is the kernel's price of waking a thread
// that sleeps, the most a wake-up of an idle worker can cost beyond goro's own work.
#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <thread>

#include "../workloads/workload.hpp"

namespace {

std::atomic<std::uint32_t> turn{0};  // even: main's turn; odd: the partner's

void futex_wait(std::uint32_t value) {
  ::syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(&turn), FUTEX_WAIT_PRIVATE, value, nullptr,
            nullptr, 0);
}
void futex_wake() {
  ::syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(&turn), FUTEX_WAKE_PRIVATE, 1, nullptr,
            nullptr, 0);
}

// Waits until the word is `want`, sleeping while it is `want - 1`.
void await_turn(std::uint32_t want) {
  while (turn.load(std::memory_order_acquire) != want) futex_wait(want - 1);
}

void pass_turn(std::uint32_t next) {
  turn.store(next, std::memory_order_release);
  futex_wake();
}

}  // namespace

int main(int argc, char** argv) {
  const long n = workload::size_arg(argc, argv, 200'000);
  std::thread partner([n] {
    for (long i = 0; i < n; ++i) {
      const auto mine = static_cast<std::uint32_t>(2 * i + 1);
      await_turn(mine);
      pass_turn(mine + 1);
    }
  });
  const workload::stopwatch watch;
  for (long i = 0; i < n; ++i) {
    const auto mine = static_cast<std::uint32_t>(2 * i);
    pass_turn(mine + 1);
    await_turn(mine + 2);
  }
  const double ns = watch.elapsed_ns();
  partner.join();
  return workload::report("floor-wake", 1, n, ns / static_cast<double>(n), "ns", "%.1f",
                          turn.load() == static_cast<std::uint32_t>(2 * n));
}
