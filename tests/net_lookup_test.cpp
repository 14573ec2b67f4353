// SPDX-License-Identifier: Apache-2.0
// A dial's name lookup under its deadline and stop request, as Go's DialTimeout and
// DialContext bound theirs: a resolver that does not answer must not hold the dial past either.
//
// This binary defines getaddrinfo itself, which the C library's then serves only by dlsym: an
// executable's definition interposes for goro's calls whether libgoro is linked statically or
// shared. A lookup of slow_host waits at a gate the test opens, as one against a DNS server that
// does not answer; a few other made-up names fail as a resolver would; every other name goes to
// the C library. Nothing leaves the machine.
#include <dlfcn.h>
#include <netdb.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <optional>
#include <stop_token>
#include <string>
#include <system_error>
#include <thread>

#include "goro/goro.hpp"
#include "net_test_support.hpp"

namespace {

using namespace std::chrono_literals;

constexpr const char* slow_host = "slow.goro.test";
constexpr const char* missing_host = "missing.goro.test";
constexpr const char* failing_host = "emfile.goro.test";

// Channels work from plain threads too, where the C library calls getaddrinfo (the blocking
// pool's): started says a slow lookup has begun, gate lets one go on, finished says it returned.
goro::chan<int> started(16);
goro::chan<int> gate(16);
goro::chan<int> finished(16);

using getaddrinfo_fn = int (*)(const char*, const char*, const addrinfo*, addrinfo**);

}  // namespace

// NOLINTNEXTLINE(readability-inconsistent-declaration-parameter-name): glibc's are reserved names
extern "C" int getaddrinfo(const char* node, const char* service, const addrinfo* hints,
                           addrinfo** res) {
  static const auto real = reinterpret_cast<getaddrinfo_fn>(::dlsym(RTLD_NEXT, "getaddrinfo"));
  if (node != nullptr && std::strcmp(node, slow_host) == 0) {
    started.send(1);
    (void)gate.recv();
    // A real answer, which whoever owns the lookup then must free (LeakSanitizer checks).
    const int rc = real("127.0.0.1", service, hints, res);
    finished.send(1);
    return rc;
  }
  if (node != nullptr && std::strcmp(node, missing_host) == 0) return EAI_NONAME;
  if (node != nullptr && std::strcmp(node, failing_host) == 0) {
    errno = EMFILE;  // set on the pool's thread: the dialling fiber's errno is another
    return EAI_SYSTEM;
  }
  return real(node, service, hints, res);
}

namespace {

// What a call threw: its code and a deep copy of its message. (A std::system_error itself is
// not passed between threads: libstdc++ shares its message, reference-counted, among copies,
// with atomics ThreadSanitizer does not see.)
struct failure {
  std::error_code error;
  std::string message;

  std::error_code code() const { return error; }
  const char* what() const { return message.c_str(); }
};

// What a call threw, or nullopt if it returned.
template <class F>
std::optional<failure> thrown_by(F&& f) {
  try {
    f();
  } catch (const std::system_error& e) {
    return failure{e.code(), std::string(e.what())};
  }
  return std::nullopt;
}

bool says(const failure& e, const std::string& text) {
  return e.message.find(text) != std::string::npos;
}

// What a dial run by dial_on_fiber threw, and whether it returned by itself in time.
struct dial_outcome {
  std::optional<failure> error;
  bool in_time = false;
};

// Runs `dial` on a fiber of rt. If it has not returned after `patience`, records a failure and
// opens the gate, so that it can return and the test end.
template <class F>
dial_outcome dial_on_fiber(goro::runtime& rt, F dial, std::chrono::milliseconds patience = 5s) {
  goro::chan<std::optional<failure>> result(1);
  rt.go([&] { result.send(thrown_by(dial)); });
  if (auto r = result.recv_for(patience)) return {std::move(*r.value), true};
  ADD_FAILURE() << "the dial waited out its lookup, past its deadline or stop";
  gate.send(1);
  return {*result.recv(), false};
}

// Lets a slow lookup that `d` left waiting at the gate go on, and waits until it has returned.
void finish_lookup(const dial_outcome& d) {
  if (d.in_time) gate.send(1);
  (void)finished.recv();
}

class NetLookup : public goro_test::net_test {};

TEST_P(NetLookup, DialTimeoutCoversTheNameLookup) {
  goro::runtime rt(opts());
  const auto start = std::chrono::steady_clock::now();
  const dial_outcome d =
      dial_on_fiber(rt, [] { goro::net::dial("tcp", "slow.goro.test:80", 50ms); });
  const double ms = goro_test::ms_since(start);
  // The lookup still waits at the gate: let it finish into what nobody reads any more.
  finish_lookup(d);
  const auto& e = d.error;
  ASSERT_TRUE(e.has_value()) << "the dial connected";
  EXPECT_EQ(e->code(), std::errc::timed_out);
  EXPECT_TRUE(says(*e, "lookup slow.goro.test: i/o timeout")) << e->what();
  EXPECT_GE(ms, 45.0) << "it gave up before its deadline";
  EXPECT_TRUE(started.try_recv()) << "no lookup was under way";
}

TEST_P(NetLookup, StopRequestCancelsTheNameLookup) {
  goro::runtime rt(opts());
  std::stop_source stop;
  rt.go([&] {
    (void)started.recv();  // the dial is inside its lookup
    stop.request_stop();
  });
  const dial_outcome d =
      dial_on_fiber(rt, [&] { goro::net::dial("tcp", "slow.goro.test:80", stop.get_token()); });
  finish_lookup(d);
  const auto& e = d.error;
  ASSERT_TRUE(e.has_value()) << "the dial connected";
  EXPECT_EQ(e->code(), std::errc::operation_canceled);
  EXPECT_TRUE(says(*e, "lookup slow.goro.test")) << e->what();
}

TEST_P(NetLookup, PlainThreadsDialTimeoutCoversTheNameLookupToo) {
  goro::chan<std::optional<failure>> result(1);
  std::thread t(
      [&] { result.send(thrown_by([] { goro::net::dial("tcp", "slow.goro.test:80", 50ms); })); });
  auto r = result.recv_for(5s);
  if (!r) ADD_FAILURE() << "the dial waited out its lookup, past its deadline";
  gate.send(1);
  t.join();
  (void)finished.recv();
  const std::optional<failure> e = r ? std::move(*r.value) : *result.recv();
  ASSERT_TRUE(e.has_value()) << "the dial connected";
  EXPECT_EQ(e->code(), std::errc::timed_out);
}

TEST_P(NetLookup, ALookupThatAnswersInTimeConnects) {
  goro::runtime rt(opts());
  goro_test::run_fibers(rt, 1, [&](std::size_t) {
    goro::net::listener ln = goro::net::listen("tcp", "127.0.0.1:0");
    const std::string port = ln.address().substr(ln.address().rfind(':') + 1);
    goro::go([] {
      (void)started.recv();
      gate.send(1);
    });
    goro::net::conn c = goro::net::dial("tcp", std::string(slow_host) + ":" + port, 10s);
    EXPECT_TRUE(c.is_open());
    goro::net::conn served = ln.accept();
    EXPECT_EQ(served.remote_address(), c.local_address());
  });
  (void)finished.recv();
}

TEST_P(NetLookup, FailedLookupsUnderADeadlineSayWhy) {
  goro::runtime rt(opts());
  const auto missing =
      dial_on_fiber(rt, [] { goro::net::dial("tcp", "missing.goro.test:80", 5s); }).error;
  ASSERT_TRUE(missing.has_value());
  EXPECT_EQ(missing->code(), std::errc::host_unreachable);
  EXPECT_TRUE(says(*missing, "lookup missing.goro.test: no such host")) << missing->what();
  // The errno of a failed system call inside the lookup is the pool thread's, carried back.
  for (const bool limited : {true, false}) {
    const auto failed = dial_on_fiber(rt, [limited] {
                          if (limited) {
                            goro::net::dial("tcp", "emfile.goro.test:80", 5s);
                          } else {
                            goro::net::dial("tcp", "emfile.goro.test:80");
                          }
                        }).error;
    ASSERT_TRUE(failed.has_value());
    EXPECT_EQ(failed->code(), std::errc::too_many_files_open) << failed->what();
  }
}

INSTANTIATE_TEST_SUITE_P(Workers, NetLookup, goro_test::net_worker_counts());

}  // namespace
