// SPDX-License-Identifier: Apache-2.0
// What every goro workload program shares (../../../shared/WORKLOADS.md): the size from argv,
// the worker count from PROCS, compact stacks if GORO_COMPACT_STACKS=1, a monotonic stopwatch,
// VmRSS, and the one-line report.
#pragma once

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>

#include <goro/goro.hpp>

namespace workload {

inline long size_arg(int argc, char** argv, long default_size) {
  return argc > 1 ? std::atol(argv[1]) : default_size;
}

inline std::size_t procs() {
  const char* p = std::getenv("PROCS");
  return p != nullptr ? static_cast<std::size_t>(std::atol(p)) : 0;  // 0: goro's default
}

// GORO_COMPACT_STACKS=1 runs the workload on compact stacks (goro::options::compact_stacks).
inline bool compact_stacks() {
  const char* c = std::getenv("GORO_COMPACT_STACKS");
  return c != nullptr && std::string(c) == "1";
}

inline goro::options runtime_options() {
  return goro::options{.workers = procs(), .compact_stacks = compact_stacks()};
}

class stopwatch {
 public:
  double elapsed_ns() const {
    return std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - start_)
        .count();
  }

 private:
  std::chrono::steady_clock::time_point start_ = std::chrono::steady_clock::now();
};

// Resident set size in bytes, from /proc/self/status.
inline long vm_rss_bytes() {
  std::ifstream in("/proc/self/status");
  std::string key;
  while (in >> key) {
    if (key == "VmRSS:") {
      long kib = 0;
      in >> kib;
      return kib * 1024;
    }
    in.ignore(1 << 20, '\n');
  }
  return -1;
}

// Prints the report line; returns the process exit status.
inline int report(const char* name, std::size_t workers, long n, double value, const char* unit,
                  const char* format, bool ok) {
  std::printf("workload=%s impl=goro procs=%zu n=%ld value=", name, workers, n);
  std::printf(format, value);
  std::printf(" unit=%s check=%s\n", unit, ok ? "ok" : "FAIL");
  return ok ? 0 : 1;
}

}  // namespace workload
