// SPDX-License-Identifier: Apache-2.0
// Tests of compact stacks (goro::options::compact_stacks, docs/scheduler.md "Compact stacks"):
// the size rules (default, rounding, range errors, callables that do not fit), the refusal
// without eager symbol binding, many fibers parked on a channel and woken by close (per worker
// count), sleeping and handing values through on compact stacks, the overflow report when a
// fiber runs through its canary, and the memory per parked fiber in an optimised build.
//
// Compact stacks are too small for the dynamic linker's lazy binding (a fiber's first call to
// a not yet bound library function takes about 3.6 KiB of stack on AVX-512 machines), and a
// runtime refuses them unless binding is eager, so this binary, which is not linked with
// -z now, runs itself again with LD_BIND_NOW=1. The refusal is tested in a subprocess
// (tests/programs/compact_without_bind_now.cpp) started without LD_BIND_NOW.
#include <alloca.h>
#include <fcntl.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <stdexcept>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "goro/goro.hpp"
#include "test_support.hpp"

namespace {

using namespace std::chrono_literals;
using goro_test::scaled;

__attribute__((constructor)) void bind_symbols_eagerly() {
  if (const char* now = std::getenv("LD_BIND_NOW"); now != nullptr && *now != '\0') return;
  std::string cmdline;
  if (const int fd = ::open("/proc/self/cmdline", O_RDONLY | O_CLOEXEC); fd >= 0) {
    char buf[4096];
    ssize_t k;
    while ((k = ::read(fd, buf, sizeof buf)) > 0) cmdline.append(buf, static_cast<std::size_t>(k));
    ::close(fd);
  }
  std::vector<std::string> args;
  for (std::size_t begin = 0; begin < cmdline.size();) {
    const std::size_t end = cmdline.find('\0', begin);
    args.push_back(cmdline.substr(begin, end - begin));
    begin = end == std::string::npos ? cmdline.size() : end + 1;
  }
  if (args.empty()) return;
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  ::setenv("LD_BIND_NOW", "1", 1);
  ::execv("/proc/self/exe", argv.data());  // returns only if it failed: run on, bound lazily
}

std::size_t expected_default() {
  return goro_test::sanitized || !goro_test::optimized ? 6 * goro::default_compact_stack_size
                                                       : goro::default_compact_stack_size;
}

goro::options compact(std::size_t workers, std::size_t stack_size = 0) {
  return goro::options{.workers = workers, .stack_size = stack_size, .compact_stacks = true};
}

// Uses `bytes` of stack below the caller's frame, writing every byte of it.
__attribute__((noinline)) void use_stack(std::size_t bytes) {
  auto* p = static_cast<volatile char*>(alloca(bytes));
  for (std::size_t i = 0; i < bytes; ++i) p[i] = 0;
}

// ---- sizes -------------------------------------------------------------------------------

TEST(CompactStackTest, DefaultSizeIsSmallerThanAPage) {
  goro::runtime rt{compact(1)};
  EXPECT_EQ(rt.stack_size(), expected_default());
  EXPECT_LT(goro::default_compact_stack_size, 4096u);
  EXPECT_GE(goro::default_compact_stack_size, goro::min_compact_stack_size);
}

TEST(CompactStackTest, SizesRoundUpToMultiplesOf256) {
  EXPECT_EQ(goro::runtime{compact(1, 1024)}.stack_size(), 1024u);
  EXPECT_EQ(goro::runtime{compact(1, 1025)}.stack_size(), 1280u);
  EXPECT_EQ(goro::runtime{compact(1, 3000)}.stack_size(), 3072u);
  EXPECT_EQ(goro::runtime{compact(1, 16000)}.stack_size(), 16128u);
}

TEST(CompactStackTest, SizesOutsideTheRangeThrow) {
  for (const std::size_t size : {std::size_t{1}, goro::min_compact_stack_size - 1,
                                 goro::min_stack_size, goro::default_stack_size}) {
    SCOPED_TRACE(size);
    try {
      goro::runtime rt{compact(1, size)};
      ADD_FAILURE() << "no exception";
    } catch (const std::invalid_argument& e) {
      EXPECT_NE(std::string(e.what()).find("compact stack_size " + std::to_string(size)),
                std::string::npos)
          << e.what();
    }
  }
}

TEST(CompactStackTest, WithoutTheOptionSmallSizesStillThrow) {
  const goro::options opts{.workers = 1, .stack_size = 2048};
  EXPECT_THROW(goro::runtime{opts}, std::invalid_argument);
}

TEST(CompactStackTest, ACallableTooLargeForTheStackThrows) {
  goro::runtime rt{compact(1, 2048)};
  std::array<char, 1536> big{};
  EXPECT_THROW(rt.go([big] { (void)big; }), std::invalid_argument);
  std::array<char, 256> small{};
  small[0] = 7;
  goro::chan<int> out(1);
  rt.go([small, out]() mutable { out.send(small[0]); });
  EXPECT_EQ(out.recv(), 7);
}

// ---- eager binding -----------------------------------------------------------------------

// compact_without_bind_now's report (see its header) for `env`.
goro_test::process_result run_without_bind_now(const std::vector<std::string>& env) {
  return goro_test::run_program(goro_test::program_path("compact_without_bind_now"), {},
                                std::chrono::seconds(60), env);
}

// The name after "lazy: " in the program's output, or "" if it found every object eager.
std::string lazy_object_reported(const std::string& out) {
  const std::string key = "lazy: ";
  const std::size_t at = out.find(key);
  if (at == std::string::npos) return "";
  return out.substr(at + key.size(), out.find('\n', at) - at - key.size());
}

TEST(CompactStackTest, ThisProcessBindsEagerly) {
  // The re-exec above worked, so the other tests here run with eager binding.
  const char* now = std::getenv("LD_BIND_NOW");
  ASSERT_NE(now, nullptr);
  EXPECT_STRNE(now, "");
}

TEST(CompactStackTest, WithoutBindNowConstructionThrowsUnlessEveryObjectIsBindNow) {
  // An empty LD_BIND_NOW counts as unset, as it does for glibc.
  for (const std::string unset : {"LD_BIND_NOW", "LD_BIND_NOW="}) {
    SCOPED_TRACE(unset);
    const auto r = run_without_bind_now({unset});
    ASSERT_TRUE(r.exited && r.exit_code == 0) << r.describe();
    EXPECT_NE(r.out.find("default runtime: ok"), std::string::npos) << r.describe();
    const std::string lazy = lazy_object_reported(r.out);
    if (lazy.empty()) {
      // Every loaded object was linked with -z now: compact stacks are safe, and allowed.
      EXPECT_NE(r.out.find("compact runtime: ok"), std::string::npos) << r.describe();
      continue;
    }
    EXPECT_NE(r.out.find("threw: goro::runtime: compact_stacks needs eager symbol binding (run "
                         "with LD_BIND_NOW=1): "),
              std::string::npos)
        << r.describe();
    EXPECT_NE(r.out.find("about 4 KiB"), std::string::npos) << r.describe();
    EXPECT_EQ(r.out.find("compact runtime: ok"), std::string::npos) << r.describe();
    // The library and the program walk the same objects in the same order by the same rule.
    EXPECT_NE(r.out.find("): " + lazy + " is bound lazily"), std::string::npos)
        << "the program found " << lazy << " first\n"
        << r.describe();
  }
}

TEST(CompactStackTest, WithBindNowConstructionSucceedsInAFreshProcess) {
  const auto r = run_without_bind_now({"LD_BIND_NOW=1"});
  ASSERT_TRUE(r.exited && r.exit_code == 0) << r.describe();
  EXPECT_EQ(lazy_object_reported(r.out), "") << r.describe();
  EXPECT_NE(r.out.find("compact runtime: ok"), std::string::npos) << r.describe();
  EXPECT_EQ(r.out.find("threw:"), std::string::npos) << r.describe();
}

// ---- behaviour, per worker count ---------------------------------------------------------

class CompactStackWorkersTest : public goro_test::workers_test {};
INSTANTIATE_TEST_SUITE_P(Workers, CompactStackWorkersTest, goro_test::worker_counts(),
                         goro_test::worker_count_name);

TEST_P(CompactStackWorkersTest, ManyParkedFibersWakeWhenTheChannelCloses) {
  const std::size_t n = goro_test::live_fiber_cap(scaled(10'000));
  goro::runtime rt{compact(workers())};
  goro::chan<int> gate;
  goro::wait_group parked, finished;
  std::atomic<std::size_t> woken{0};
  parked.add(static_cast<std::int64_t>(n));
  finished.add(static_cast<std::int64_t>(n));
  for (std::size_t i = 0; i < n; ++i) {
    rt.go([&] {
      parked.done();
      if (!gate.recv().has_value()) woken.fetch_add(1, std::memory_order_relaxed);
      finished.done();
    });
  }
  parked.wait();
  gate.close();
  finished.wait();
  EXPECT_EQ(woken.load(), n);
}

TEST_P(CompactStackWorkersTest, ValuesPassThroughAChainOfFibers) {
  // Each fiber receives from its left neighbour and sends one more to its right: every
  // fiber parks on a receive, then on a send, and values cross workers.
  const std::size_t n = goro_test::live_fiber_cap(scaled(2'000));
  goro::runtime rt{compact(workers())};
  goro::chan<long> first;
  goro::chan<long> left = first;
  for (std::size_t i = 0; i < n; ++i) {
    goro::chan<long> right;
    rt.go([left, right]() mutable { right.send(*left.recv() + 1); });
    left = right;
  }
  first.send(0);
  EXPECT_EQ(left.recv(), static_cast<long>(n));
}

TEST_P(CompactStackWorkersTest, SleepingFibersWakeOnTime) {
  const std::size_t n = goro_test::live_fiber_cap(scaled(1'000));
  goro::runtime rt{compact(workers())};
  std::atomic<std::size_t> late{0};
  goro_test::run_fibers(rt, n, [&](std::size_t i) {
    const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(1 + i % 20);
    goro::this_fiber::sleep_until(until);
    if (std::chrono::steady_clock::now() < until) late.fetch_add(1);
  });
  EXPECT_EQ(late.load(), 0u) << "woke before the deadline";
}

// ---- overflow ----------------------------------------------------------------------------

TEST(CompactStackDeathTest, RunningThroughTheCanaryIsReported) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  // The fiber writes below its stack and returns: its canary is broken when it exits. It is
  // the first fiber of a fresh slab, so what it damages below is an unused stack.
  EXPECT_DEATH(
      {
        goro::runtime rt{compact(1)};
        const std::size_t bytes = rt.stack_size() + 512;
        rt.go([bytes] { use_stack(bytes); });
      },
      "goro: fatal error: fiber stack overflow \\(fiber [0-9]+\\)");
}

// ---- memory ------------------------------------------------------------------------------

TEST(CompactStackTest, ParkedFiberCostsLessThan3000Bytes) {
  if (goro_test::sanitized || !goro_test::optimized) {
    GTEST_SKIP() << "sanitized and debug builds use larger stacks and frames";
  }
  // As bench/workloads/parked.cpp: n fibers parked on one channel, VmRSS growth over n.
  constexpr std::size_t n = 50'000;
  goro::runtime rt{compact(2)};
  goro::chan<int> gate;
  goro::wait_group parked, finished;
  parked.add(n);
  finished.add(n);
  const std::size_t before = goro_test::resident_bytes();
  for (std::size_t i = 0; i < n; ++i) {
    rt.go([&] {
      parked.done();
      gate.recv();
      finished.done();
    });
  }
  parked.wait();
  // parked.done() comes just before the receive; let the last few reach it.
  std::this_thread::sleep_for(100ms);
  const std::size_t during = goro_test::resident_bytes();
  gate.close();
  finished.wait();
  const double per_fiber =
      static_cast<double>(during - std::min(during, before)) / static_cast<double>(n);
  std::printf("[ figure ] VmRSS per parked fiber on %zu-byte compact stacks: %.0f bytes\n",
              rt.stack_size(), per_fiber);
  RecordProperty("rss_bytes_per_parked_compact_fiber", std::to_string(per_fiber));
  EXPECT_GT(per_fiber, 0.0);
  EXPECT_LT(per_fiber, 3000.0);
}

}  // namespace
