// SPDX-License-Identifier: Apache-2.0
// The install-consumer test program (see CMakeLists.txt here): through the installed umbrella
// header only, it spawns fibers on an explicit runtime and on the default runtime, waits for
// them with a wait_group, and checks what they computed. Exits 0 on success.
#include <goro/goro.hpp>

#include <atomic>
#include <cstdint>
#include <cstdio>

int main() {
  constexpr std::uint64_t n = 1000;
  std::atomic<std::uint64_t> sum{0};
  goro::wait_group wg;
  wg.add(2 * n);
  {
    goro::runtime rt{goro::options{.workers = 2}};
    for (std::uint64_t i = 0; i < n; ++i) {
      rt.go(
          [&](std::uint64_t v) {
            goro::this_fiber::yield();
            sum.fetch_add(v);
            wg.done();
          },
          i);
    }
    for (std::uint64_t i = 0; i < n; ++i) {
      goro::go([&, i] {
        sum.fetch_add(i);
        wg.done();
      });
    }
    wg.wait();
  }
  const std::uint64_t expected = n * (n - 1);
  if (sum.load() != expected) {
    std::fprintf(stderr, "goro_consumer: sum %llu, expected %llu\n",
                 static_cast<unsigned long long>(sum.load()),
                 static_cast<unsigned long long>(expected));
    return 1;
  }
  std::puts("goro_consumer: ok");
  return 0;
}
