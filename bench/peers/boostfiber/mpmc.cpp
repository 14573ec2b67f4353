// SPDX-License-Identifier: Apache-2.0
//
// Boost.Fiber peer of goro's mpmc workload (WORKLOADS.md): 4 producer and 4 consumer fibers share
// one buffered channel. Producer p pushes the indices [n*p/4, n*(p+1)/4), so together they push
// each of [0, n) once; the channel is closed once every producer has been joined, and the
// consumers' sums must add up to n(n-1)/2. The result is the throughput in millions of items per
// second.

#include "common.hpp"

namespace {

constexpr int producers = 4;
constexpr int consumers = 4;

// boost::fibers::buffered_channel needs a power-of-two capacity and holds one item less than it:
// 128 is the nearest match to WORKLOADS.md's capacity of 128, and holds 127 items.
constexpr std::size_t channel_capacity = 128;

}  // namespace

int main(int argc, char** argv) {
  const unsigned procs = peer::procs_from_env();
  const std::int64_t n = peer::size_from_args(argc, argv, 10'000'000);
  peer::worker_pool pool{procs};

  boost::fibers::buffered_channel<std::int64_t> items{channel_capacity};
  std::vector<std::int64_t> sums(consumers, 0);
  std::vector<boost::fibers::fiber> producing;
  std::vector<boost::fibers::fiber> consuming;

  const peer::stopwatch timer;
  for (int p = 0; p < producers; ++p) {
    const std::int64_t first = n * p / producers;
    const std::int64_t last = n * (p + 1) / producers;
    producing.emplace_back([&items, first, last] {
      for (std::int64_t v = first; v < last; ++v) {
        items.push(v);
      }
    });
  }
  for (int c = 0; c < consumers; ++c) {
    consuming.emplace_back([&items, &sum = sums[c]] {
      for (std::int64_t v : items) {
        sum += v;
      }
    });
  }
  for (boost::fibers::fiber& producer : producing) {
    producer.join();
  }
  items.close();
  for (boost::fibers::fiber& consumer : consuming) {
    consumer.join();
  }
  const auto elapsed = timer.elapsed();

  std::int64_t total = 0;
  for (std::int64_t sum : sums) {
    total += sum;
  }
  return peer::report("mpmc", procs, n, peer::million_per_second(elapsed, n), "M/s",
                      total == n * (n - 1) / 2);
}
