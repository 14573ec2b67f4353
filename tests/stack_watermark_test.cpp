// SPDX-License-Identifier: Apache-2.0
// The stack high-water mark per spawn site (options::stack_watermark, goro::stack_high_water;
// docs/diagnostics.md, "Stack use"): a fiber that uses about 24 KiB of stack is reported as
// using at least that and less than its stack, a shallow one at another site as using less,
// and a runtime without the option measures nothing.
#include <gtest/gtest.h>

#include <cstdlib>
#include <cstring>
#include <iostream>
#include <sstream>
#include <stdexcept>
#include <string>

#include <goro/diag.hpp>
#include <goro/goro.hpp>

namespace {

constexpr std::size_t deep_bytes = 24 * 1024;
constexpr std::size_t stack_bytes = 128 * 1024;

// Writes every byte of a deep_bytes array on its stack, so that much of the stack is used.
__attribute__((noinline)) int use_stack_deeply() {
  volatile char big[deep_bytes];
  for (std::size_t i = 0; i < deep_bytes; ++i) big[i] = static_cast<char>(i);
  return big[deep_bytes / 2];
}

const goro::stack_use* find(const std::vector<goro::stack_use>& sites, unsigned line) {
  for (const goro::stack_use& s : sites) {
    if (s.line == line && std::strstr(s.file, "stack_watermark_test.cpp") != nullptr) return &s;
  }
  return nullptr;
}

TEST(StackWatermark, ReportsTheDeepestUsePerSite) {
  unsigned deep_line = 0;
  unsigned shallow_line = 0;
  {
    goro::runtime rt(
        goro::options{.workers = 2, .stack_size = stack_bytes, .stack_watermark = true});
    for (int i = 0; i < 3; ++i) {
      deep_line = __LINE__ + 1;
      rt.go([] { EXPECT_EQ(use_stack_deeply(), static_cast<char>(deep_bytes / 2)); });
      shallow_line = __LINE__ + 1;
      rt.go([] {});
    }
  }  // ~runtime waits for the fibers, which are measured before they count as finished
  const std::vector<goro::stack_use> sites = goro::stack_high_water();
  const goro::stack_use* deep = find(sites, deep_line);
  const goro::stack_use* shallow = find(sites, shallow_line);
  ASSERT_NE(deep, nullptr);
  ASSERT_NE(shallow, nullptr);
  EXPECT_EQ(deep->fibers, 3u);
  EXPECT_EQ(shallow->fibers, 3u);
  EXPECT_EQ(deep->stack_size, stack_bytes);
  EXPECT_GE(deep->max_bytes, deep_bytes);
  EXPECT_LT(deep->max_bytes, stack_bytes);
  EXPECT_LT(shallow->max_bytes, deep_bytes);
  EXPECT_GT(shallow->max_bytes, 0u);  // the fiber record at least
  EXPECT_LT(shallow->max_bytes, deep->max_bytes);

  std::ostringstream out;
  goro::dump(out);
  const std::string text = out.str();
  std::cout << text.substr(text.find("stack use")) << std::flush;  // the report, for the log
  EXPECT_NE(out.str().find("stack use (the most any finished fiber used, per spawn site):"),
            std::string::npos)
      << out.str();
  EXPECT_NE(out.str().find("stack_watermark_test.cpp:" + std::to_string(deep_line)),
            std::string::npos)
      << out.str();
}

TEST(StackWatermark, OffMeasuresNothing) {
  unsigned line = 0;
  {
    goro::runtime rt(goro::options{.workers = 1, .stack_size = stack_bytes});
    line = __LINE__ + 1;
    rt.go([] { use_stack_deeply(); });
  }
  EXPECT_EQ(find(goro::stack_high_water(), line), nullptr);
}

TEST(StackWatermark, EnvironmentVariable) {
  unsigned line = 0;
  ::setenv("GORO_STACK_WATERMARK", "1", 1);
  {
    goro::runtime rt(goro::options{.workers = 1, .stack_size = stack_bytes});
    line = __LINE__ + 1;
    rt.go([] { use_stack_deeply(); });
  }
  const std::vector<goro::stack_use> sites = goro::stack_high_water();
  const goro::stack_use* s = find(sites, line);
  ASSERT_NE(s, nullptr);
  EXPECT_GE(s->max_bytes, deep_bytes);
  ::setenv("GORO_STACK_WATERMARK", "yes", 1);
  EXPECT_THROW(goro::runtime(goro::options{.workers = 1}), std::invalid_argument);
  ::unsetenv("GORO_STACK_WATERMARK");
}

}  // namespace
