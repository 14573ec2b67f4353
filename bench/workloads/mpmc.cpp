// SPDX-License-Identifier: Apache-2.0
// mpmc: 4 producers and 4 consumers share one channel of capacity 128; consumers sum what they
// receive.
#include <atomic>

#include "workload.hpp"

int main(int argc, char** argv) {
  const long n = workload::size_arg(argc, argv, 10'000'000);
  constexpr long producers = 4;
  constexpr long consumers = 4;
  const long per_producer = n / producers;
  goro::runtime rt(workload::runtime_options());
  goro::chan<long> ch(128);
  goro::wait_group sent, received;
  std::atomic<long> total{0};
  sent.add(producers);
  received.add(consumers);
  const workload::stopwatch watch;
  for (long p = 0; p < producers; ++p) {
    rt.go([&] {
      for (long i = 0; i < per_producer; ++i) ch.send(i);
      sent.done();
    });
  }
  for (long c = 0; c < consumers; ++c) {
    rt.go([&] {
      long sum = 0;
      for (long v : ch) sum += v;
      total.fetch_add(sum);
      received.done();
    });
  }
  sent.wait();
  ch.close();
  received.wait();
  const double us = watch.elapsed_ns() / 1e3;
  const long items = per_producer * producers;
  const long expected = producers * (per_producer * (per_producer - 1) / 2);
  return workload::report("mpmc", rt.workers(), n, static_cast<double>(items) / us, "M/s", "%.2f",
                          total.load() == expected);
}
