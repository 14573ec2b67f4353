// SPDX-License-Identifier: Apache-2.0
//
// Boost.Fiber peer of goro's parked workload (WORKLOADS.md): it measures the resident memory that
// one fiber costs while it is blocked. It reads VmRSS, spawns n detached fibers that all block
// popping from one unbuffered channel, reads VmRSS again once all are parked, and reports the
// growth divided by n. Then it closes the channel; the check is that every fiber saw the close
// and was joined (counted down on peer::countdown, as the Go peer uses a sync.WaitGroup).

#include "common.hpp"

namespace {

// How long main sleeps after the last fiber has announced itself. A fiber counts down `parked`
// just before its pop, so when parked.wait() returns the last few may still be between the two;
// this sleep lets them reach the pop and block. It only has to be long enough for a handful of
// fibers to run a few instructions, and it is not timed.
constexpr std::chrono::milliseconds settle{20};

}  // namespace

int main(int argc, char** argv) {
  const unsigned procs = peer::procs_from_env();
  const std::int64_t n = peer::size_from_args(argc, argv, 100'000);
  peer::worker_pool pool{procs};

  boost::fibers::unbuffered_channel<int> gate;
  peer::countdown parked{n};
  peer::countdown joined{n};
  std::atomic<std::int64_t> released{0};

  const std::int64_t before = peer::resident_bytes();
  for (std::int64_t i = 0; i < n; ++i) {
    boost::fibers::fiber{[&] {
      parked.done();
      int unused = 0;
      if (gate.pop(unused) == boost::fibers::channel_op_status::closed) {
        released.fetch_add(1, std::memory_order_relaxed);
      }
      joined.done();
    }}.detach();
  }
  parked.wait();
  boost::this_fiber::sleep_for(settle);
  const std::int64_t after = peer::resident_bytes();

  gate.close();
  joined.wait();

  const double per_fiber = static_cast<double>(after - before) / static_cast<double>(n);
  return peer::report("parked", procs, n, per_fiber, "bytes", released.load() == n);
}
