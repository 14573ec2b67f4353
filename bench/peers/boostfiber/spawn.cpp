// SPDX-License-Identifier: Apache-2.0
//
// Boost.Fiber peer of goro's spawn workload (WORKLOADS.md): spawn n detached fibers that each only
// count down, and wait for them. Boost.Fiber has no wait_group; its idiomatic stand-in here is
// peer::countdown (an atomic counter plus a fiber mutex and condition variable, common.hpp), which
// costs one atomic decrement per fiber as sync.WaitGroup.Done does. Joining every fiber would also
// do, but would make the caller keep n fiber handles and join them one by one. The check is that
// the wait returns after exactly n fibers were started. The result is the mean cost of one spawn,
// including its share of the wait.

#include "common.hpp"

int main(int argc, char** argv) {
  const unsigned procs = peer::procs_from_env();
  const std::int64_t n = peer::size_from_args(argc, argv, 1'000'000);
  peer::worker_pool pool{procs};

  peer::countdown finished{n};
  std::int64_t spawned = 0;

  const peer::stopwatch timer;
  for (std::int64_t i = 0; i < n; ++i) {
    boost::fibers::fiber{[&finished] { finished.done(); }}.detach();
    ++spawned;
  }
  finished.wait();
  const auto elapsed = timer.elapsed();

  return peer::report("spawn", procs, n, peer::nanos_per(elapsed, n), "ns", spawned == n);
}
