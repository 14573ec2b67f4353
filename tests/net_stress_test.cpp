// SPDX-License-Identifier: Apache-2.0
// goro::net under load, on loopback: 1,000 concurrent connections each sending 1 MiB (scaled by
// GORO_STRESS_SCALE) through an echo server and checking a checksum of what comes back, on 1, 2
// and 4 workers; and closes racing blocked reads and writes, many times over. No descriptor may
// leak.
#include <sys/resource.h>

#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include "goro/goro.hpp"
#include "net_test_support.hpp"

namespace {

using goro_test::error_of;

class NetStress : public goro_test::net_test {};

// Raises the soft descriptor limit to the hard one; returns how many connections (two
// descriptors each in this process, plus slack) fit under it, at most `wanted`.
std::size_t connections_that_fit(std::size_t wanted) {
  rlimit lim{};
  ::getrlimit(RLIMIT_NOFILE, &lim);
  lim.rlim_cur = lim.rlim_max;
  ::setrlimit(RLIMIT_NOFILE, &lim);
  const auto fit = static_cast<std::size_t>((lim.rlim_cur - 64) / 2);
  return std::min(wanted, fit);
}

// xorshift64*: the bytes connection `id` sends, and the checksum both sides compute.
struct byte_stream {
  std::uint64_t state;
  explicit byte_stream(std::uint64_t id) : state(0x9E3779B97F4A7C15ULL * (id + 1)) {}
  std::byte next() {
    state ^= state >> 12;
    state ^= state << 25;
    state ^= state >> 27;
    return std::byte(static_cast<unsigned char>((state * 0x2545F4914F6CDD1DULL) >> 56));
  }
};

std::uint64_t fold(std::uint64_t sum, std::span<const std::byte> bytes) {
  for (std::byte b : bytes) sum = (sum ^ static_cast<std::uint64_t>(b)) * 0x100000001B3ULL;
  return sum;
}

TEST_P(NetStress, ThousandConnectionsEchoOneMebibyteEach) {
  // A fifth under TSan (fiber_count): two fibers a connection, each milliseconds to create
  // there, for the same races as a thousand.
  const std::size_t conns = connections_that_fit(goro_test::fiber_count(1000));
  if (conns < 1000) std::fprintf(stderr, "descriptor limit: %zu connections\n", conns);
  const std::size_t size = std::max<std::size_t>(goro_test::scaled(1 << 20), 16 * 1024);
  goro::runtime rt(opts());
  goro::net::listener ln = goro::net::listen("tcp", "127.0.0.1:0");
  rt.go([&ln] {
    try {
      for (;;) {
        goro::go(
            [](goro::net::conn c) {
              std::byte buf[16 * 1024];
              while (std::size_t n = c.read(buf)) c.write(std::span<const std::byte>(buf, n));
            },
            ln.accept());
      }
    } catch (const std::system_error& e) {
      EXPECT_EQ(e.code(), std::errc::bad_file_descriptor);
    }
  });
  const std::string where = ln.address();
  std::atomic<std::size_t> matched{0};
  goro_test::run_fibers(rt, conns, [&](std::size_t id) {
    goro::net::conn c = goro::net::dial("tcp", where);
    std::uint64_t sent_sum = 0xcbf29ce484222325ULL;
    goro::wait_group wrote;
    wrote.add(1);
    goro::go([&] {
      byte_stream bytes(id);
      std::byte chunk[16 * 1024];
      for (std::size_t off = 0; off < size; off += sizeof chunk) {
        const std::size_t n = std::min(sizeof chunk, size - off);
        for (std::size_t i = 0; i < n; ++i) chunk[i] = bytes.next();
        sent_sum = fold(sent_sum, std::span(chunk, n));
        c.write(std::span<const std::byte>(chunk, n));
      }
      c.close_write();
      wrote.done();
    });
    std::uint64_t got_sum = 0xcbf29ce484222325ULL;
    std::size_t got = 0;
    std::byte buf[16 * 1024];
    while (std::size_t n = c.read(buf)) {
      got_sum = fold(got_sum, std::span(buf, n));
      got += n;
    }
    wrote.wait();
    if (got == size && got_sum == sent_sum) matched.fetch_add(1, std::memory_order_relaxed);
  });
  ln.close();
  EXPECT_EQ(matched.load(), conns);
}

TEST_P(NetStress, ClosesRaceBlockedCalls) {
  const std::size_t rounds = std::max<std::size_t>(goro_test::scaled(2000), 50);
  const std::vector<std::byte> big(16 << 20);  // more than both sockets' buffers hold
  goro::runtime rt(opts());
  std::atomic<std::size_t> ok{0};
  goro_test::run_fibers(rt, 8, [&](std::size_t) {
    // A listener each, so that `s` is this fiber's peer: the test's own close is the only one.
    goro::net::listener ln = goro::net::listen("tcp", "127.0.0.1:0");
    for (std::size_t r = 0; r < rounds / 8; ++r) {
      goro::net::conn c = goro::net::dial("tcp", ln.address());
      goro::net::conn s = ln.accept();
      goro::chan<std::errc> result(2);
      goro::go([&] {
        std::byte buf[8];
        result.send(error_of([&] { c.read(buf); }));
      });
      goro::go([&] { result.send(error_of([&] { c.write(big); })); });
      if (r % 3 != 0) goro::this_fiber::yield();  // sometimes before they block, sometimes after
      c.close();
      const std::errc a = *result.recv();
      const std::errc b = *result.recv();
      // Each call either finished before the close or failed because of it.
      const auto fine = [](std::errc e) {
        return e == std::errc() || e == std::errc::bad_file_descriptor;
      };
      if (fine(a) && fine(b)) {
        ok.fetch_add(1, std::memory_order_relaxed);
      } else {
        ADD_FAILURE() << "calls racing a close failed with " << static_cast<int>(a) << " and "
                      << static_cast<int>(b);
      }
    }
  });
  EXPECT_EQ(ok.load(), rounds / 8 * 8);
}

INSTANTIATE_TEST_SUITE_P(Workers, NetStress, goro_test::net_worker_counts(),
                         goro_test::worker_count_name);

}  // namespace
