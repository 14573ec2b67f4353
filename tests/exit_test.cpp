// SPDX-License-Identifier: Apache-2.0
// How a process that uses the default runtime ends (docs/scheduler.md, "Process exit"): as Go's,
// at once when main() returns or std::exit is called, whatever its fibers are doing; and goro
// calls that would need the stopped runtime fail with a clear message instead of hanging.
#include <gtest/gtest.h>

#include <chrono>
#include <csignal>
#include <string>

#include "test_support.hpp"

namespace {

using namespace std::chrono_literals;

// Long enough for a loaded CI machine and a sanitized build; each case ends in milliseconds.
constexpr auto limit = 20s;

goro_test::process_result run(const char* mode, const char* maxprocs) {
  return goro_test::run_program(goro_test::program_path("exit_paths"), {mode}, limit,
                                {std::string("GORO_MAXPROCS=") + maxprocs});
}

class ExitTest : public testing::TestWithParam<const char*> {};

TEST_P(ExitTest, ExitFromAFiberEndsTheProcessWithItsStatus) {
  const auto r = run("exit-from-fiber", GetParam());
  ASSERT_TRUE(r.started) << r.err;
  EXPECT_FALSE(r.timed_out) << r.describe();
  EXPECT_TRUE(r.exited && r.exit_code == 3) << r.describe();
  EXPECT_NE(r.out.find("ready"), std::string::npos) << r.describe();
}

TEST_P(ExitTest, BlockingDuringExitOnTheExitingFiberFailsClearly) {
  const auto r = run("block-in-exit", GetParam());
  ASSERT_TRUE(r.started) << r.err;
  EXPECT_FALSE(r.timed_out) << r.describe();
  EXPECT_EQ(r.signal, SIGABRT) << r.describe();
  EXPECT_NE(r.err.find("goro: fatal error: a goro call blocked during process exit"),
            std::string::npos)
      << r.describe();
  EXPECT_EQ(r.out.find("unreachable"), std::string::npos) << r.describe();
}

TEST_P(ExitTest, YieldDuringExitOnTheExitingFiberGoesOn) {
  const auto r = run("yield-in-exit", GetParam());
  ASSERT_TRUE(r.started) << r.err;
  EXPECT_FALSE(r.timed_out) << r.describe();
  EXPECT_TRUE(r.exited && r.exit_code == 3) << r.describe();
  EXPECT_NE(r.out.find("the exiting fiber yielded and went on"), std::string::npos) << r.describe();
}

TEST_P(ExitTest, MainReturnsWhileAFiberSpawnsInALoop) {
  // Repeated: the fiber's go() races the exit handler, and before, a go() that lost the race
  // threw out of the fiber and aborted the process.
  for (int i = 0; i < 5; ++i) {
    const auto r = run("spawning", GetParam());
    ASSERT_TRUE(r.started) << r.err;
    ASSERT_FALSE(r.timed_out) << r.describe();
    ASSERT_TRUE(r.exited && r.exit_code == 0) << r.describe();
  }
}

TEST_P(ExitTest, MainReturnsWhileAFiberComputes) {
  const auto r = run("computing", GetParam());
  ASSERT_TRUE(r.started) << r.err;
  EXPECT_FALSE(r.timed_out) << r.describe();
  EXPECT_TRUE(r.exited && r.exit_code == 0) << r.describe();
  EXPECT_EQ(r.out.find("unreachable"), std::string::npos) << r.describe();
}

TEST_P(ExitTest, MainReturnsWhileAFiberIsInASystemCall) {
  const auto r = run("syscall", GetParam());
  ASSERT_TRUE(r.started) << r.err;
  EXPECT_FALSE(r.timed_out) << r.describe();
  EXPECT_TRUE(r.exited && r.exit_code == 0) << r.describe();
  EXPECT_EQ(r.out.find("unreachable"), std::string::npos) << r.describe();
}

TEST_P(ExitTest, GoFromAStaticDestructorFailsClearly) {
  const auto r = run("go-at-exit", GetParam());
  ASSERT_TRUE(r.started) << r.err;
  EXPECT_FALSE(r.timed_out) << r.describe();
  EXPECT_EQ(r.signal, SIGABRT) << r.describe();
  EXPECT_NE(r.err.find("goro: the default runtime has stopped"), std::string::npos) << r.describe();
  EXPECT_EQ(r.out.find("the static destructor's fiber ran"), std::string::npos) << r.describe();
}

TEST_P(ExitTest, AfterFromAStaticDestructorFailsClearly) {
  const auto r = run("after-at-exit", GetParam());
  ASSERT_TRUE(r.started) << r.err;
  EXPECT_FALSE(r.timed_out) << r.describe();
  EXPECT_EQ(r.signal, SIGABRT) << r.describe();
  EXPECT_NE(r.err.find("goro: the default runtime has stopped"), std::string::npos) << r.describe();
}

INSTANTIATE_TEST_SUITE_P(Workers, ExitTest, testing::Values("1", "2", "4"),
                         [](const testing::TestParamInfo<const char*>& p) {
                           return std::string("workers_") + p.param;
                         });

}  // namespace
