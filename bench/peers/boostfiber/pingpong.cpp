// SPDX-License-Identifier: Apache-2.0
//
// Boost.Fiber peer of goro's pingpong workload (WORKLOADS.md): two fibers bounce an int over two
// unbuffered channels n times. The pinger sends its last received value and the ponger sends it
// back incremented, so after n round trips the pinger holds n. The result is the mean time of
// one round trip.

#include "common.hpp"

int main(int argc, char** argv) {
  using channel = boost::fibers::unbuffered_channel<std::int64_t>;

  const unsigned procs = peer::procs_from_env();
  const std::int64_t n = peer::size_from_args(argc, argv, 1'000'000);
  peer::worker_pool pool{procs};

  channel ping;
  channel pong;
  std::int64_t last = 0;

  const peer::stopwatch timer;
  boost::fibers::fiber pinger{[&] {
    for (std::int64_t i = 0; i < n; ++i) {
      ping.push(last);
      last = pong.value_pop();
    }
    ping.close();
  }};
  boost::fibers::fiber ponger{[&] {
    for (std::int64_t v : ping) {
      pong.push(v + 1);
    }
  }};
  pinger.join();
  ponger.join();
  const auto elapsed = timer.elapsed();

  return peer::report("pingpong", procs, n, peer::nanos_per(elapsed, n), "ns", last == n);
}
