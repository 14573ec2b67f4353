// SPDX-License-Identifier: Apache-2.0
// pingpong: two fibers bounce an int over two unbuffered channels, n round trips.
#include "workload.hpp"

int main(int argc, char** argv) {
  const long n = workload::size_arg(argc, argv, 1'000'000);
  goro::runtime rt(workload::runtime_options());
  goro::chan<long> ping, pong, done;
  rt.go([=]() mutable {
    for (long i = 0; i < n; ++i) pong.send(*ping.recv() + 1);
  });
  double ns = 0;
  long last = 0;
  rt.go([=, &ns, &last]() mutable {
    const workload::stopwatch watch;
    long v = 0;
    for (long i = 0; i < n; ++i) {
      ping.send(v);
      v = *pong.recv();
    }
    ns = watch.elapsed_ns();
    last = v;
    done.send(0);
  });
  done.recv();
  return workload::report("pingpong", rt.workers(), n, ns / static_cast<double>(n), "ns", "%.1f",
                          last == n);
}
