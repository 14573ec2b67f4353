// SPDX-License-Identifier: Apache-2.0
// Helpers shared by the network tests: counting the process's open descriptors (no test may
// leak one), a fixture over worker counts that checks the count after each test, and small
// read/write helpers.
#pragma once

#include <dirent.h>
#include <unistd.h>

#include <cstddef>
#include <span>
#include <string>
#include <string_view>
#include <system_error>

#include <gtest/gtest.h>

#include "goro/net.hpp"
#include "test_support.hpp"

namespace goro_test {

// The number of the process's open descriptors, from /proc/self/fd, less those into /proc: the
// listing's own, and the deadlock monitor's, whose thread opens /proc/self/task for a moment at
// any time (src/diag/monitor.cpp) and so made a count taken then one too high.
inline int open_descriptors() {
  DIR* d = ::opendir("/proc/self/fd");
  if (d == nullptr) return -1;
  int n = 0;
  while (const dirent* e = ::readdir(d)) {
    char target[256] = {};
    const ssize_t length = ::readlinkat(::dirfd(d), e->d_name, target, sizeof target - 1);
    // A link that cannot be read is a descriptor closed since the listing was read: another
    // thread's for a moment, not open. (A fresh-clone ASan run once counted two more at a
    // test's start than at its end, "10 vs 12", with nothing leaked; transient descriptors
    // counted this way are the likeliest cause, not a proven one: 20 reruns passed.)
    if (length <= 0) continue;
    if (std::string_view(target, static_cast<std::size_t>(length)).starts_with("/proc/")) continue;
    ++n;
  }
  ::closedir(d);
  return n;
}

// Runs each test once per worker count (1, 2, 4) and fails it if it leaves a descriptor open.
// The default runtime's poller, which lives as long as the process, is made before counting.
class net_test : public ::testing::TestWithParam<std::size_t> {
 protected:
  void SetUp() override {
    static const bool default_poller_made = [] {
      // A wait from a plain thread makes the default runtime's poller.
      int fds[2];
      EXPECT_EQ(::pipe(fds), 0);
      goro::net::wait_writable(fds[1]);
      ::close(fds[0]);
      ::close(fds[1]);
      return true;
    }();
    (void)default_poller_made;
    descriptors_ = open_descriptors();
  }
  void TearDown() override { EXPECT_EQ(open_descriptors(), descriptors_) << "a descriptor leaked"; }

  std::size_t workers() const { return GetParam(); }
  goro::options opts() const { return goro::options{.workers = GetParam()}; }

 private:
  int descriptors_ = 0;
};

inline auto net_worker_counts() {
  return ::testing::Values(std::size_t{1}, std::size_t{2}, std::size_t{4});
}

// Reads exactly buf.size() bytes, or fewer if the stream ends first; returns how many.
inline std::size_t read_full(goro::net::conn& c, std::span<std::byte> buf) {
  std::size_t got = 0;
  while (got < buf.size()) {
    const std::size_t n = c.read(buf.subspan(got));
    if (n == 0) break;
    got += n;
  }
  return got;
}

inline std::span<const std::byte> bytes_of(const std::string& s) {
  return std::as_bytes(std::span(s.data(), s.size()));
}

// The std::errc a call failed with, or std::errc() if it did not throw.
template <class F>
std::errc error_of(F&& f) {
  try {
    f();
  } catch (const std::system_error& e) {
    return static_cast<std::errc>(e.code().default_error_condition().value());
  }
  return std::errc();
}

}  // namespace goro_test
