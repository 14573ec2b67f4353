// SPDX-License-Identifier: Apache-2.0
// goro::net and goro::blocking, tried by a sceptical user: many fibers (and threads, and two
// runtimes) on one conn at once, close racing every call, deadlines from everywhere and of every
// clock, stop tokens stopped before the call, runtimes destroyed under their sockets, huge
// writes, zero-length calls, half-close, resets, datagrams cut short, Unix paths at their limits,
// bad addresses, wait_readable on pipes and eventfds, goro::blocking's corners. Loopback only;
// every wait is bounded (deadlines, recv_for), so a lost wake-up fails instead of hanging. Tests
// named DISABLED_ show a bug not yet fixed (see the comment above each); those marked Fixed
// were found the same way.
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <memory>
#include <numeric>
#include <optional>
#include <stdexcept>
#include <stop_token>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "goro/goro.hpp"
#include "net_test_support.hpp"

namespace {

using namespace std::chrono_literals;
using goro_test::bytes_of;
using goro_test::error_of;
using goro_test::read_full;
using clock_type = std::chrono::steady_clock;

class NetAdversarial : public goro_test::net_test {};

// How long any single wait in these tests may take before it counts as hung.
constexpr auto hang_limit = 10s;

struct pair_of_conns {
  goro::net::conn client;
  goro::net::conn server;
};

// A connected TCP pair, made on the calling fiber or thread.
pair_of_conns connect_pair() {
  goro::net::listener ln = goro::net::listen("tcp", "127.0.0.1:0");
  pair_of_conns p;
  p.client = goro::net::dial("tcp", ln.address());
  p.server = ln.accept();
  return p;
}

// Both ends get deadlines `hang_limit` away: a lost wake-up fails the call, not the run.
void bound(pair_of_conns& p) {
  p.client.set_deadline(clock_type::now() + hang_limit);
  p.server.set_deadline(clock_type::now() + hang_limit);
}

// A result that must come within hang_limit; std::errc::timed_out standing in if it did not,
// marked by `hung`.
template <class T>
T recv_bounded(goro::chan<T>& ch, bool* hung = nullptr) {
  auto r = ch.recv_for(hang_limit);
  if (!r) {
    if (hung != nullptr) *hung = true;
    ADD_FAILURE() << "no result within the hang limit";
    return T{};
  }
  return *r.value;
}

// ---- one conn, many callers ---------------------------------------------------------------

// Checks that `stream` is made of whole records of `record` bytes each, every one of a single
// byte value, no value twice: two writes never interleaved their bytes.
void expect_whole_records(const std::vector<std::byte>& stream, std::size_t record,
                          std::size_t records) {
  ASSERT_EQ(stream.size(), record * records);
  std::vector<bool> seen(256, false);
  for (std::size_t r = 0; r < records; ++r) {
    const std::byte v = stream[r * record];
    const auto first_other =
        std::find_if(stream.begin() + static_cast<std::ptrdiff_t>(r * record),
                     stream.begin() + static_cast<std::ptrdiff_t>((r + 1) * record),
                     [v](std::byte b) { return b != v; });
    ASSERT_EQ(first_other, stream.begin() + static_cast<std::ptrdiff_t>((r + 1) * record))
        << "record " << r << " has bytes of two writes";
    ASSERT_FALSE(seen[static_cast<unsigned char>(v)]) << "a record came twice";
    seen[static_cast<unsigned char>(v)] = true;
  }
}

// Fibers of two runtimes and plain threads write big records to one conn at once, while a slow
// reader makes each write block part way: the records arrive whole.
TEST_P(NetAdversarial, ConcurrentWritesFromFibersThreadsAndTwoRuntimesDoNotInterleave) {
  goro::runtime rt(opts());
  goro::runtime other(goro::options{.workers = 2});
  pair_of_conns p;
  goro_test::run_fibers(rt, 1, [&](std::size_t) { p = connect_pair(); });
  bound(p);
  constexpr std::size_t record = 96 * 1024;
  constexpr std::size_t per_writer = 6;
  constexpr std::size_t writers = 8;  // 3 on rt, 3 on other, 2 plain threads
  const auto write_records = [&](std::size_t w) {
    for (std::size_t k = 0; k < per_writer; ++k) {
      const std::vector<std::byte> data(record,
                                        std::byte(static_cast<unsigned char>(w * per_writer + k)));
      try {
        p.client.write(data);
      } catch (const std::system_error& e) {
        ADD_FAILURE() << "write: " << e.what();
        return;
      }
    }
  };
  goro::wait_group done;
  done.add(6);
  for (std::size_t w = 0; w < 3; ++w) {
    rt.go([&, w] {
      write_records(w);
      done.done();
    });
    other.go([&, w] {
      write_records(3 + w);
      done.done();
    });
  }
  std::thread t1([&] { write_records(6); });
  std::thread t2([&] { write_records(7); });
  std::vector<std::byte> stream;
  stream.reserve(record * per_writer * writers);
  std::byte buf[3000];  // small reads: the writers block in the middle of their records
  while (stream.size() < record * per_writer * writers) {
    std::size_t n = 0;
    try {
      n = p.server.read(buf);
    } catch (const std::system_error& e) {
      ADD_FAILURE() << "read: " << e.what();
      break;
    }
    if (n == 0) break;
    stream.insert(stream.end(), buf, buf + n);
  }
  t1.join();
  t2.join();
  done.wait();
  expect_whole_records(stream, record, per_writer * writers);
}

// Many readers on one conn: every byte goes to exactly one of them.
TEST_P(NetAdversarial, ConcurrentReadersShareTheBytesExactlyOnce) {
  goro::runtime rt(opts());
  constexpr std::size_t total = 4 << 20;
  std::atomic<std::uint64_t> got_bytes{0};
  std::atomic<std::uint64_t> got_sum{0};
  goro_test::run_fibers(rt, 1, [&](std::size_t) {
    pair_of_conns p = connect_pair();
    bound(p);
    goro::wait_group readers;
    constexpr int n_readers = 8;
    readers.add(n_readers);
    for (int i = 0; i < n_readers; ++i) {
      goro::go([&] {
        std::byte buf[1500];
        try {
          while (std::size_t n = p.server.read(buf)) {
            std::uint64_t s = 0;
            for (std::size_t k = 0; k < n; ++k) s += static_cast<unsigned char>(buf[k]);
            got_bytes.fetch_add(n);
            got_sum.fetch_add(s);
          }
        } catch (const std::system_error& e) {
          ADD_FAILURE() << "read: " << e.what();
        }
        readers.done();
      });
    }
    std::vector<std::byte> data(total);
    for (std::size_t i = 0; i < total; ++i) data[i] = std::byte(static_cast<unsigned char>(i * 31));
    for (std::size_t off = 0; off < total; off += 7777) {
      p.client.write(std::span(data).subspan(off, std::min<std::size_t>(7777, total - off)));
    }
    p.client.close_write();
    readers.wait();
    std::uint64_t want = 0;
    for (std::byte b : data) want += static_cast<unsigned char>(b);
    EXPECT_EQ(got_bytes.load(), total);
    EXPECT_EQ(got_sum.load(), want);
  });
}

// A read woken by a close from another thread or fiber destroys the handle it came through as
// soon as it fails (docs/net.md: "a call woken by a close from another fiber that then
// destroyed the handle"), while a read queued behind it is still in flight: nothing freed is
// touched (ASan), and the queued read fails too. (Destroying the handle from a third party while
// calls are inside it would race on the handle itself, as it would in Go.)
TEST_P(NetAdversarial, HandleDestroyedByTheCallWokenByClose) {
  goro::runtime rt(opts());
  goro_test::run_fibers(rt, 1, [&](std::size_t) {
    for (int round = 0; round < 20; ++round) {
      auto p = std::make_unique<pair_of_conns>(connect_pair());
      bound(*p);
      goro::chan<std::errc> first(1);
      goro::chan<std::errc> second(1);
      goro::net::conn* c = &p->client;
      goro::go([first, c] {
        std::byte buf[8];
        const std::errc e = error_of([&] { c->read(buf); });
        *c = goro::net::conn();  // destroys the handle; the queued read is still in flight
        first.send(e);
      });
      goro::this_fiber::sleep_for(goro_test::blocked_for);  // lets the first block
      goro::go([second, c] {
        std::byte buf[8];
        second.send(error_of([&] { c->read(buf); }));  // queued for its turn
      });
      goro::this_fiber::sleep_for(goro_test::blocked_for);  // lets the second queue
      if (round % 2 == 0) {
        p->client.close();
      } else {
        std::thread([&] { p->client.close(); }).join();  // close reads only the handle
      }
      EXPECT_EQ(recv_bounded(first), std::errc::bad_file_descriptor);
      EXPECT_EQ(recv_bounded(second), std::errc::bad_file_descriptor);
    }
  });
}

// ---- deadlines ----------------------------------------------------------------------------

// Deadlines in every clock's terms: system_clock, coarse durations, max() of each, zero values.
TEST_P(NetAdversarial, DeadlinesOfEveryClock) {
  goro::runtime rt(opts());
  goro_test::run_fibers(rt, 1, [&](std::size_t) {
    pair_of_conns p = connect_pair();
    std::byte buf[8];
    auto start = clock_type::now();
    p.client.set_read_deadline(std::chrono::system_clock::now() + 40ms);
    EXPECT_EQ(error_of([&] { p.client.read(buf); }), std::errc::timed_out);
    EXPECT_GE(goro_test::ms_since(start), 39.0);
    EXPECT_LT(goro_test::ms_since(start), 5000.0);
    // max() of coarse and foreign clocks means "no deadline", not an overflow into the past.
    for (int i = 0; i < 4; ++i) {
      switch (i) {
        case 0: p.client.set_read_deadline(std::chrono::system_clock::time_point::max()); break;
        case 1:
          p.client.set_read_deadline(
              std::chrono::time_point<std::chrono::steady_clock, std::chrono::hours>::max());
          break;
        case 2: p.client.set_read_deadline(std::chrono::system_clock::time_point{}); break;
        case 3: p.client.set_read_deadline(goro::net::deadline_time::max()); break;
      }
      goro::chan<std::errc> result(1);
      goro::go([&] { result.send(error_of([&] { EXPECT_EQ(p.client.read(buf), 1u); })); });
      goro::this_fiber::sleep_for(20ms);  // lets the read block: it must stay blocked
      p.server.write("x");
      EXPECT_EQ(recv_bounded(result), std::errc()) << "case " << i;
    }
    // min(): long past.
    p.client.set_read_deadline(goro::net::deadline_time::min());
    EXPECT_EQ(error_of([&] { p.client.read(buf); }), std::errc::timed_out);
    // A system_clock deadline a second before the epoch (in the past).
    p.client.set_read_deadline(std::chrono::system_clock::time_point{} - 1s);
    EXPECT_EQ(error_of([&] { p.client.read(buf); }), std::errc::timed_out);
    // The listener's template too.
    goro::net::listener ln = goro::net::listen("tcp", "127.0.0.1:0");
    ln.set_deadline(std::chrono::system_clock::now() + 20ms);
    EXPECT_EQ(error_of([&] { ln.accept(); }), std::errc::timed_out);
    ln.set_deadline(std::chrono::system_clock::time_point::max());
    goro::net::conn c = goro::net::dial("tcp", ln.address());
    EXPECT_TRUE(ln.accept().is_open());
  });
}

// Fixed (was a bug): deadlines of a clock other than steady_clock at the ends of their range
// turned into their opposite. goro::detail::deadline_at (include/goro/detail/deadline.hpp) converts
// a foreign clock's time point as deadline_after(tp - Clock::now()), and that subtraction
// overflows:
//  - system_clock::time_point::min() (long past): min() - now() wraps to a huge positive
//    duration, the deadline lands ~235 years ahead, and the read waits (here until the guard's
//    stop request; without one, forever) instead of failing with timed_out at once;
//  - time_point<system_clock, hours>::max() (no deadline, as any clock's max() is documented
//    to be): tp - now() is computed in nanoseconds, hours::max() overflows them, the deadline
//    lands in the past, and the read fails with timed_out at once instead of waiting.
// The same function serves every timed call of goro (recv_until, try_lock_until, ...), so they
// share it. The subtraction is now done in long double seconds, and max() means never.
TEST_P(NetAdversarial, ForeignClockDeadlinesAtTheEndsOfTheirRange) {
  goro::runtime rt(opts());
  goro_test::run_fibers(rt, 1, [&](std::size_t) {
    pair_of_conns p = connect_pair();
    std::byte buf[8];
    // Long past: must fail at once with timed_out. A stop request after 1 s bounds the hang.
    p.client.set_read_deadline(std::chrono::system_clock::time_point::min());
    std::stop_source guard;
    goro::chan<bool> done(1);
    goro::go([done, guard]() mutable {  // copies: it may outlive this scope
      if (!done.recv_for(1s)) guard.request_stop();
    });
    EXPECT_EQ(error_of([&] { p.client.read(buf, guard.get_token()); }), std::errc::timed_out)
        << "system_clock::time_point::min() did not count as past";
    done.send(true);
    // No deadline: the read must wait for the data.
    p.client.set_read_deadline(
        std::chrono::time_point<std::chrono::system_clock, std::chrono::hours>::max());
    goro::chan<std::errc> result(1);
    goro::go([&] { result.send(error_of([&] { EXPECT_EQ(p.client.read(buf), 1u); })); });
    goro::this_fiber::sleep_for(20ms);  // lets the read block: it must stay blocked
    p.server.write("x");
    EXPECT_EQ(recv_bounded(result), std::errc())
        << "time_point<system_clock, hours>::max() counted as past";
  });
}

// A deadline moved a thousand times, from a plain thread and from fibers, while a read is
// blocked: the read keeps waiting, then gets its data; then a past one fails it.
TEST_P(NetAdversarial, DeadlineMovedRepeatedlyFromThreadsAndFibers) {
  goro::runtime rt(opts());
  pair_of_conns p;
  goro_test::run_fibers(rt, 1, [&](std::size_t) { p = connect_pair(); });
  p.client.set_read_deadline(clock_type::now() + hang_limit);
  goro::chan<std::errc> result(1);
  rt.go([&] {
    std::byte buf[8];
    result.send(error_of([&] { EXPECT_EQ(p.client.read(buf), 2u); }));
  });
  std::atomic<bool> stop{false};
  std::thread mover([&] {
    for (int i = 0; i < 1000 && !stop; ++i) {
      p.client.set_read_deadline(clock_type::now() + hang_limit + std::chrono::milliseconds(i));
    }
  });
  goro_test::run_fibers(rt, 4, [&](std::size_t k) {
    for (int i = 0; i < 250; ++i) {
      p.client.set_deadline(std::chrono::system_clock::now() + hang_limit +
                            std::chrono::microseconds(i * 4 + static_cast<int>(k)));
      if (i % 50 == 0) goro::this_fiber::yield();
    }
  });
  mover.join();
  EXPECT_EQ(result.try_recv().status, goro::chan_status::empty) << "the read ended early";
  p.server.write("ok");
  EXPECT_EQ(recv_bounded(result), std::errc());
  rt.go([&] {
    std::byte buf[8];
    result.send(error_of([&] { p.client.read(buf); }));
  });
  std::this_thread::sleep_for(goro_test::blocked_for);  // lets the read block
  p.client.set_read_deadline(clock_type::now() - 1h);
  EXPECT_EQ(recv_bounded(result), std::errc::timed_out);
}

// Fixed (was a bug): a read queued behind another for its turn kept the deadline it found when
// it queued; a deadline setter now wakes the queued calls too, and they queue again.
// Pushing the deadline out (Go: "SetReadDeadline ... applies to all future and pending reads")
// moves the read that holds the turn, but the queued one still fails at the old deadline.
// Cause: net_fd::turn locks io_lock with {fd.deadline(d), stop} read once; set_deadline claims
// only the record's waiter (the turn holder), nothing wakes the io_lock queue to re-read it.
TEST_P(NetAdversarial, QueuedReadFollowsADeadlinePushedOut) {
  goro::runtime rt(opts());
  goro_test::run_fibers(rt, 1, [&](std::size_t) {
    pair_of_conns p = connect_pair();
    p.client.set_read_deadline(clock_type::now() + 100ms);
    goro::chan<std::errc> result(2);
    for (int i = 0; i < 2; ++i) {  // one holds the turn, one is queued for it
      goro::go([&] {
        std::byte buf[1];
        result.send(error_of([&] { EXPECT_EQ(p.client.read(buf), 1u); }));
      });
    }
    goro::this_fiber::sleep_for(20ms);  // lets both block
    p.client.set_read_deadline(clock_type::now() + hang_limit);
    goro::this_fiber::sleep_for(200ms);  // past the old deadline
    p.server.write("ab");
    EXPECT_EQ(recv_bounded(result), std::errc());
    EXPECT_EQ(recv_bounded(result), std::errc()) << "the queued read kept the old deadline";
  });
}

// The same for a deadline pulled in: a queued read with no deadline fails once one is set in the
// past (it holds here: the turn holder fails, hands over, and the next checks the deadline).
TEST_P(NetAdversarial, QueuedReadsFailOnADeadlinePulledIn) {
  goro::runtime rt(opts());
  goro_test::run_fibers(rt, 1, [&](std::size_t) {
    pair_of_conns p = connect_pair();
    goro::chan<std::errc> result(3);
    for (int i = 0; i < 3; ++i) {
      goro::go([&] {
        std::byte buf[1];
        result.send(error_of([&] { p.client.read(buf); }));
      });
    }
    goro::this_fiber::sleep_for(goro_test::blocked_for);  // lets them block
    p.client.set_read_deadline(clock_type::now());
    for (int i = 0; i < 3; ++i) EXPECT_EQ(recv_bounded(result), std::errc::timed_out);
  });
}

// A write deadline does not disturb reads, and the reverse.
TEST_P(NetAdversarial, DeadlinesArePerDirection) {
  goro::runtime rt(opts());
  goro_test::run_fibers(rt, 1, [&](std::size_t) {
    pair_of_conns p = connect_pair();
    bound(p);
    p.client.set_write_deadline(clock_type::now() - 1s);
    EXPECT_EQ(error_of([&] { p.client.write("x"); }), std::errc::timed_out);
    p.server.write("y");
    std::byte b[1];
    EXPECT_EQ(p.client.read(b), 1u);
    p.client.set_write_deadline(goro::net::deadline_time{});
    p.client.set_read_deadline(clock_type::now() - 1s);
    p.client.write("z");
    EXPECT_EQ(p.server.read(b), 1u);
  });
}

// ---- stop tokens --------------------------------------------------------------------------

TEST_P(NetAdversarial, StopRequestedBeforeTheCall) {
  goro::runtime rt(opts());
  goro_test::run_fibers(rt, 1, [&](std::size_t) {
    pair_of_conns p = connect_pair();
    bound(p);
    std::stop_source stopped;
    stopped.request_stop();
    std::byte buf[8];
    // Nothing to read: fails at once, not at the deadline.
    const auto start = clock_type::now();
    EXPECT_EQ(error_of([&] { p.client.read(buf, stopped.get_token()); }),
              std::errc::operation_canceled);
    goro::net::listener ln = goro::net::listen("tcp", "127.0.0.1:0");
    ln.set_deadline(clock_type::now() + hang_limit);
    EXPECT_EQ(error_of([&] { ln.accept(stopped.get_token()); }), std::errc::operation_canceled);
    goro::net::packet_conn pc = goro::net::listen_packet("udp", "127.0.0.1:0");
    pc.set_deadline(clock_type::now() + hang_limit);
    EXPECT_EQ(error_of([&] { pc.read_from(buf, stopped.get_token()); }),
              std::errc::operation_canceled);
    int fds[2];
    ASSERT_EQ(::pipe2(fds, O_CLOEXEC | O_NONBLOCK), 0);
    EXPECT_EQ(error_of([&] { goro::net::wait_readable(fds[0], stopped.get_token()); }),
              std::errc::operation_canceled);
    ::close(fds[0]);
    ::close(fds[1]);
    EXPECT_LT(goro_test::ms_since(start), 2000.0);
    // A write into a socket with room succeeds (the system call comes first), as a read with
    // data waiting does.
    EXPECT_EQ(error_of([&] { p.client.write(bytes_of("x"), stopped.get_token()); }), std::errc());
    EXPECT_EQ(p.server.read(buf, stopped.get_token()), 1u);
  });
}

// Go's DialContext fails with a context cancelled before the call, even to a listener that
// would take the connection; goro's dial with a stop token already stopped should too ("gives up
// ... on a stop request"). Kept enabled if it holds; see the report otherwise.
TEST_P(NetAdversarial, DialWithStopAlreadyRequested) {
  goro::runtime rt(opts());
  goro_test::run_fibers(rt, 1, [&](std::size_t) {
    goro::net::listener ln = goro::net::listen("tcp", "127.0.0.1:0");
    std::stop_source stopped;
    stopped.request_stop();
    int fails = 0;
    for (int i = 0; i < 20; ++i) {
      const std::errc e =
          error_of([&] { goro::net::dial("tcp", ln.address(), stopped.get_token()); });
      EXPECT_TRUE(e == std::errc() || e == std::errc::operation_canceled);
      if (e == std::errc::operation_canceled) ++fails;
    }
    RecordProperty("cancelled_of_20", fails);
    // Drain what connected.
    ln.set_deadline(clock_type::now() + 50ms);
    while (error_of([&] { ln.accept(); }) == std::errc()) {
    }
  });
}

// A read queued for its turn behind a blocked one fails on its own stop request, and the blocked
// one is undisturbed.
TEST_P(NetAdversarial, StopWhileQueuedForTheTurn) {
  goro::runtime rt(opts());
  goro_test::run_fibers(rt, 1, [&](std::size_t) {
    pair_of_conns p = connect_pair();
    bound(p);
    goro::chan<std::errc> first(1);
    goro::chan<std::errc> second(1);
    std::stop_source stop;
    goro::go([&] {
      std::byte b[1];
      first.send(error_of([&] { EXPECT_EQ(p.client.read(b), 1u); }));
    });
    goro::this_fiber::sleep_for(goro_test::blocked_for);  // lets the first block
    goro::go([&] {
      std::byte b[1];
      second.send(error_of([&] { p.client.read(b, stop.get_token()); }));
    });
    goro::this_fiber::sleep_for(goro_test::blocked_for);  // lets the second queue
    std::thread t([&] { stop.request_stop(); });
    t.join();
    EXPECT_EQ(recv_bounded(second), std::errc::operation_canceled);
    p.server.write("x");
    EXPECT_EQ(recv_bounded(first), std::errc());
  });
}

// ---- close racing everything --------------------------------------------------------------

TEST_P(NetAdversarial, CloseRacesAcceptAndIncomingDials) {
  goro::runtime rt(opts());
  const std::size_t rounds = std::max<std::size_t>(goro_test::scaled(200), 20);
  goro_test::run_fibers(rt, 1, [&](std::size_t) {
    for (std::size_t r = 0; r < rounds; ++r) {
      goro::net::listener ln = goro::net::listen("tcp", "127.0.0.1:0");
      ln.set_deadline(clock_type::now() + hang_limit);
      const std::string where = ln.address();
      goro::chan<std::errc> accepted(1);
      goro::chan<std::errc> dialled(1);
      goro::go([&] {
        accepted.send(error_of([&] {
          for (;;) ln.accept();  // until the close
        }));
      });
      goro::go([&] {
        // Dials racing the close: each connects, is refused, or is reset; none hangs.
        const std::errc e =
            error_of([&] { goro::net::conn c = goro::net::dial("tcp", where, 2s); });
        dialled.send(e == std::errc::connection_refused || e == std::errc::connection_reset
                         ? std::errc()
                         : e);
      });
      if (r % 3 == 0) goro::this_fiber::yield();
      if (r % 3 == 1) goro::this_fiber::sleep_for(goro_test::blocked_for);  // accept blocks
      if (r % 2 == 0) {
        ln.close();
      } else {
        std::thread([&] { ln.close(); }).join();
      }
      EXPECT_EQ(recv_bounded(accepted), std::errc::bad_file_descriptor);
      EXPECT_EQ(recv_bounded(dialled), std::errc());
    }
  });
}

// Fixed: a listener closed while an accept was blocked on it kept its port open until that
// accept had run and left (the last call out closes the descriptor), so a dial made right after
// close() returned was taken into the backlog and then reset, instead of refused as after Go's
// Close, which waits for the descriptor's end. Found by a review of the documented promises
// (ECONNRESET in 5 of 15 runs). Now close() shuts the listener down at once.
TEST_P(NetAdversarial, DialAfterCloseOfAListenerWithABlockedAcceptIsRefused) {
  goro::runtime rt(opts());
  goro_test::run_fibers(rt, 1, [&](std::size_t) {
    for (int r = 0; r < 20; ++r) {
      goro::net::listener ln = goro::net::listen("tcp", "127.0.0.1:0");
      ln.set_deadline(clock_type::now() + hang_limit);
      const std::string where = ln.address();
      goro::chan<std::errc> accepted(1);
      goro::go([&] { accepted.send(error_of([&] { ln.accept(); })); });
      goro::this_fiber::sleep_for(goro_test::blocked_for);  // so that the accept blocks
      ln.close();
      EXPECT_EQ(error_of([&] { goro::net::conn c = goro::net::dial("tcp", where, hang_limit); }),
                std::errc::connection_refused);
      EXPECT_EQ(recv_bounded(accepted), std::errc::bad_file_descriptor);
    }
  });
}

// The refusal above must not come from shutting the socket down: a copy of the descriptor (a
// dup, a forked child's, one passed to a new process for a graceful restart) keeps listening
// after the listener's close, as after Go's. (A first fix used shutdown(2), which stopped the
// copy too; found in review.)
TEST_P(NetAdversarial, ACopyOfAClosedListenersDescriptorKeepsListening) {
  goro::runtime rt(opts());
  goro_test::run_fibers(rt, 1, [&](std::size_t) {
    goro::net::listener ln = goro::net::listen("tcp", "127.0.0.1:0");
    ln.set_deadline(clock_type::now() + hang_limit);
    const std::string where = ln.address();
    const int copy = ::dup(ln.native_handle());
    ASSERT_GE(copy, 0);
    goro::chan<std::errc> accepted(1);
    goro::go([&] { accepted.send(error_of([&] { ln.accept(); })); });
    goro::this_fiber::sleep_for(goro_test::blocked_for);  // so that the accept blocks
    ln.close();
    EXPECT_EQ(recv_bounded(accepted), std::errc::bad_file_descriptor);
    std::optional<goro::net::conn> c;  // the copy's backlog takes it
    EXPECT_EQ(error_of([&] { c = goro::net::dial("tcp", where, hang_limit); }), std::errc());
    const int taken = ::accept4(copy, nullptr, nullptr, SOCK_CLOEXEC);
    EXPECT_GE(taken, 0) << std::strerror(errno);
    if (taken >= 0) ::close(taken);
    ::close(copy);
  });
}

// Fixed: a Unix listener's file was removed by the last call out, not by close(). With an
// accept blocked at the close, the path outlived it (a listen on it failed with EADDRINUSE), and
// if the path was unlinked and listened on again, the old accept's late unlink removed the new
// listener's file. Found in review. Go's UnixListener.Close removes the file itself.
TEST_P(NetAdversarial, AUnixListenersFileGoesWithItsClose) {
  goro::runtime rt(opts());
  const std::string path = "/tmp/goro-adv-relisten-" + std::to_string(::getpid()) + ".sock";
  ::unlink(path.c_str());
  goro_test::run_fibers(rt, 1, [&](std::size_t) {
    goro::net::listener ln = goro::net::listen("unix", path);
    ln.set_deadline(clock_type::now() + hang_limit);
    goro::chan<std::errc> accepted(1);
    goro::go([&] { accepted.send(error_of([&] { ln.accept(); })); });
    goro::this_fiber::sleep_for(goro_test::blocked_for);  // so that the accept blocks
    ln.close();
    EXPECT_NE(::access(path.c_str(), F_OK), 0);
    goro::net::listener again;
    EXPECT_EQ(error_of([&] { again = goro::net::listen("unix", path); }), std::errc());
    EXPECT_EQ(recv_bounded(accepted), std::errc::bad_file_descriptor);
    if (!again.is_open()) return;
    EXPECT_EQ(::access(path.c_str(), F_OK), 0);  // the old accept's exit left the new file
    std::optional<goro::net::conn> c;
    EXPECT_EQ(error_of([&] { c = goro::net::dial("unix", path, hang_limit); }), std::errc());
  });
  ::unlink(path.c_str());
}

TEST_P(NetAdversarial, CloseRacesReadFromAndWriteTo) {
  goro::runtime rt(opts());
  const std::size_t rounds = std::max<std::size_t>(goro_test::scaled(300), 30);
  goro_test::run_fibers(rt, 1, [&](std::size_t) {
    goro::net::packet_conn sink = goro::net::listen_packet("udp", "127.0.0.1:0");
    for (std::size_t r = 0; r < rounds; ++r) {
      goro::net::packet_conn pc = goro::net::listen_packet("udp", "127.0.0.1:0");
      pc.set_deadline(clock_type::now() + hang_limit);
      goro::chan<std::errc> result(2);
      goro::go([&] {
        std::byte buf[64];
        result.send(error_of([&] { pc.read_from(buf); }));
      });
      goro::go([&] {
        result.send(error_of([&] {
          for (int i = 0; i < 50; ++i) pc.write_to(bytes_of("data"), sink.local_address());
        }));
      });
      if (r % 2 == 0) goro::this_fiber::yield();
      pc.close();
      for (int i = 0; i < 2; ++i) {
        const std::errc e = recv_bounded(result);
        EXPECT_TRUE(e == std::errc() || e == std::errc::bad_file_descriptor) << static_cast<int>(e);
      }
    }
  });
}

// Deadline setters, stop requests and reads hammered from threads and fibers while the conn is
// closed: every call either works or fails with bad_file_descriptor; nothing crashes (TSan,
// ASan).
TEST_P(NetAdversarial, CloseRacesSetDeadlineAndStop) {
  goro::runtime rt(opts());
  const std::size_t rounds = std::max<std::size_t>(goro_test::scaled(200), 20);
  for (std::size_t r = 0; r < rounds; ++r) {
    pair_of_conns p;
    goro_test::run_fibers(rt, 1, [&](std::size_t) { p = connect_pair(); });
    std::atomic<int> bad{0};
    std::stop_source stop;
    goro::wait_group wg;
    wg.add(2);
    rt.go([&] {
      std::byte b[4];
      const std::errc e = error_of([&] {
        p.client.set_read_deadline(clock_type::now() + hang_limit);
        p.client.read(b, stop.get_token());
      });
      if (e != std::errc::bad_file_descriptor && e != std::errc::operation_canceled &&
          e != std::errc::timed_out) {
        ++bad;
      }
      wg.done();
    });
    rt.go([&] {
      for (int i = 0; i < 50; ++i) {
        const std::errc e =
            error_of([&] { p.client.set_deadline(clock_type::now() + hang_limit); });
        if (e != std::errc() && e != std::errc::bad_file_descriptor) ++bad;
      }
      wg.done();
    });
    std::thread setter([&] {
      for (int i = 0; i < 50; ++i) {
        const std::errc e =
            error_of([&] { p.client.set_write_deadline(std::chrono::system_clock::now() + 1h); });
        if (e != std::errc() && e != std::errc::bad_file_descriptor) ++bad;
      }
    });
    std::thread closer([&] {
      if (r % 4 == 0) stop.request_stop();
      p.client.close();
    });
    setter.join();
    closer.join();
    wg.wait();
    EXPECT_EQ(bad.load(), 0);
    EXPECT_FALSE(p.client.is_open());
  }
}

// ---- threads, two runtimes, runtimes destroyed ---------------------------------------------

// A conn dialled on a plain thread, then used by fibers of two runtimes and by the thread, taking
// turns: every hand-over wakes promptly.
TEST_P(NetAdversarial, ConnSharedByTwoRuntimesAndAThread) {
  goro::runtime a(opts());
  goro::runtime b(goro::options{.workers = 1});
  goro::net::listener ln = goro::net::listen("tcp", "127.0.0.1:0");
  goro::net::conn c = goro::net::dial("tcp", ln.address());  // a plain thread's
  goro::net::conn s;
  goro_test::run_fibers(a, 1, [&](std::size_t) { s = ln.accept(); });
  c.set_deadline(clock_type::now() + hang_limit);
  s.set_deadline(clock_type::now() + hang_limit);
  constexpr int rounds = 200;
  // s echoes on a fiber of `a`; c is read by fibers of `b`, of `a`, and by this thread in turn.
  a.go([&] {
    std::byte buf[16];
    try {
      while (std::size_t n = s.read(buf)) s.write(std::span<const std::byte>(buf, n));
    } catch (const std::system_error& e) {
      ADD_FAILURE() << e.what();
    }
    s.close();  // the end of stream for c's last read
  });
  const char* const who[] = {"the plain thread", "a fiber of the conn's accepting runtime",
                             "a fiber of the other runtime"};
  const auto ping = [&](int i) {
    try {
      const std::string msg = "ping" + std::to_string(i % 10);
      c.write(msg);
      std::byte buf[5];
      EXPECT_EQ(read_full(c, buf), 5u);
      EXPECT_EQ(std::string(reinterpret_cast<char*>(buf), 5), msg);
      return true;
    } catch (const std::system_error& e) {
      ADD_FAILURE() << "round " << i << " on " << who[i % 3] << ": " << e.what();
      return false;
    }
  };
  for (int i = 0; i < rounds; ++i) {
    bool ok = true;
    switch (i % 3) {
      case 0: ok = ping(i); break;
      case 1: goro_test::run_fibers(a, 1, [&](std::size_t) { ok = ping(i); }); break;
      case 2: goro_test::run_fibers(b, 1, [&](std::size_t) { ok = ping(i); }); break;
    }
    if (!ok) break;
  }
  c.close_write();
  goro_test::run_fibers(b, 1, [&](std::size_t) {
    std::byte buf[4];
    EXPECT_EQ(error_of([&] { EXPECT_EQ(c.read(buf), 0u); }), std::errc());
  });
}

// A runtime destroyed while conns registered with its poller stay open: using them afterwards
// fails clearly when they would wait, works when they need not, and closes without a leak.
TEST_P(NetAdversarial, RuntimeDestroyedUnderOpenConns) {
  pair_of_conns p;
  goro::net::listener ln;
  {
    goro::runtime rt(opts());
    goro_test::run_fibers(rt, 1, [&](std::size_t) {
      p = connect_pair();
      ln = goro::net::listen("tcp", "127.0.0.1:0");
      ln.set_deadline(clock_type::now() + 1ms);
      EXPECT_EQ(error_of([&] { ln.accept(); }), std::errc::timed_out);  // registers it with rt
      p.client.set_read_deadline(clock_type::now() + 1ms);
      std::byte b[1];
      EXPECT_EQ(error_of([&] { p.client.read(b); }), std::errc::timed_out);
      p.client.set_read_deadline(goro::net::deadline_time{});
    });
  }
  p.client.set_read_deadline(clock_type::now() + hang_limit);
  std::byte buf[8];
  // Would wait on a poller nobody polls: fails at once, not at the deadline.
  const auto start = clock_type::now();
  const std::errc e = error_of([&] { p.client.read(buf); });
  EXPECT_NE(e, std::errc());
  EXPECT_NE(e, std::errc::timed_out) << "waited on a dead runtime's poller";
  EXPECT_LT(goro_test::ms_since(start), 2000.0);
  // Need not wait: works.
  p.server.write("hi");
  EXPECT_EQ(read_full(p.client, std::span(buf, 2)), 2u);
  ln.set_deadline(goro::net::deadline_time{});
  EXPECT_NE(error_of([&] { ln.accept(); }), std::errc());
  // From another runtime's fiber too.
  goro::runtime other(opts());
  goro_test::run_fibers(other, 1, [&](std::size_t) {
    EXPECT_NE(error_of([&] { p.client.read(buf); }), std::errc());
  });
  p.client.close();
  p.server.close();
  ln.close();
}

// Fixed: a plain thread blocked reading a conn whose runtime (the one whose poller the conn is
// registered with) was destroyed meanwhile was never woken: data then arrived and the read slept
// on until its deadline (without one, forever), as no worker polled the poller any more. Now
// the poller, detached, polls on a thread of its own while waits are in flight.
TEST_P(NetAdversarial, ThreadBlockedOnConnWhenItsRuntimeIsDestroyed) {
  const int baseline = goro_test::open_descriptors();
  pair_of_conns p;
  auto rt = std::make_unique<goro::runtime>(opts());
  goro_test::run_fibers(*rt, 1, [&](std::size_t) {
    p = connect_pair();
    p.client.set_read_deadline(clock_type::now() + 1ms);
    std::byte b[1];
    EXPECT_EQ(error_of([&] { p.client.read(b); }), std::errc::timed_out);  // registers with rt
  });
  p.client.set_read_deadline(clock_type::now() + 3s);  // bounds the hang
  std::atomic<bool> returned{false};
  std::errc result{};
  std::thread reader([&] {
    std::byte b[8];
    result = error_of([&] { p.client.read(b); });
    returned = true;
  });
  std::this_thread::sleep_for(20ms);  // lets the read block
  rt.reset();
  p.server.write("data");
  const auto start = clock_type::now();
  while (!returned && goro_test::ms_since(start) < 1000) std::this_thread::sleep_for(1ms);
  EXPECT_TRUE(returned.load()) << "the read still sleeps 1 s after its runtime went and data came";
  reader.join();
  EXPECT_NE(result, std::errc::timed_out);
  // A later call fails clearly: nothing polls for it any more.
  std::byte b[8];
  EXPECT_EQ(error_of([&] { p.client.read(b); }), std::errc::bad_file_descriptor);
  p.client.close();
  p.server.close();
  // The poller's own thread leaves soon after the last wait, closing the poller's descriptors.
  const auto left = clock_type::now();
  while (goro_test::open_descriptors() > baseline && goro_test::ms_since(left) < 2000) {
    std::this_thread::sleep_for(1ms);
  }
}

// ---- big, empty, ended, half-closed, reset --------------------------------------------------

TEST_P(NetAdversarial, HugeWriteToASlowReader) {
  goro::runtime rt(opts());
  const std::size_t size = std::max<std::size_t>(goro_test::scaled(100 << 20), 4 << 20);
  goro_test::run_fibers(rt, 1, [&](std::size_t) {
    pair_of_conns p = connect_pair();
    p.client.set_deadline(clock_type::now() + 60s);
    p.server.set_deadline(clock_type::now() + 60s);
    std::vector<std::byte> data(size);
    for (std::size_t i = 0; i < size; ++i) data[i] = std::byte(static_cast<unsigned char>(i % 251));
    goro::chan<std::errc> wrote(1);
    goro::go([&] { wrote.send(error_of([&] { p.client.write(data); })); });
    std::size_t got = 0;
    bool same = true;
    std::vector<std::byte> buf(60000);
    std::size_t reads = 0;
    while (got < size) {
      const std::size_t n = p.server.read(buf);
      if (n == 0) break;
      for (std::size_t k = 0; k < n; ++k) {
        same = same && buf[k] == std::byte(static_cast<unsigned char>((got + k) % 251));
      }
      got += n;
      if (++reads % 64 == 0) goro::this_fiber::yield();  // slow: the writer blocks often
    }
    EXPECT_EQ(got, size);
    EXPECT_TRUE(same);
    auto r = wrote.recv_for(60s);
    ASSERT_TRUE(r);
    EXPECT_EQ(*r.value, std::errc());
  });
}

TEST_P(NetAdversarial, ZeroLengthCallsAndEndOfStream) {
  goro::runtime rt(opts());
  goro_test::run_fibers(rt, 1, [&](std::size_t) {
    pair_of_conns p = connect_pair();
    bound(p);
    // Nothing to read: an empty read returns 0 at once, it does not wait.
    EXPECT_EQ(p.client.read(std::span<std::byte>()), 0u);
    p.client.write(std::span<const std::byte>());
    p.client.write(std::string_view());
    p.client.write("abc");
    p.client.close();
    std::byte buf[8];
    EXPECT_EQ(read_full(p.server, buf), 3u);
    for (int i = 0; i < 5; ++i) EXPECT_EQ(p.server.read(buf), 0u) << "end of stream stays";
    EXPECT_EQ(p.server.read(std::span<std::byte>()), 0u);
    // Empty calls on a closed conn fail as the others do.
    EXPECT_EQ(error_of([&] { p.client.read(std::span<std::byte>()); }),
              std::errc::bad_file_descriptor);
    EXPECT_EQ(error_of([&] { p.client.write(std::span<const std::byte>()); }),
              std::errc::bad_file_descriptor);
    EXPECT_EQ(error_of([&] { p.client.set_deadline(clock_type::now()); }),
              std::errc::bad_file_descriptor);
    EXPECT_EQ(error_of([&] { (void)p.client.local_address(); }), std::errc::bad_file_descriptor);
    EXPECT_EQ(error_of([&] { (void)p.client.native_handle(); }), std::errc::bad_file_descriptor);
    EXPECT_EQ(error_of([&] { p.client.close_write(); }), std::errc::bad_file_descriptor);
    goro::net::conn empty;
    EXPECT_FALSE(empty);
    EXPECT_EQ(error_of([&] { empty.write("x"); }), std::errc::bad_file_descriptor);
    empty.close();
  });
}

// TCP urgent data (MSG_OOB) makes a read stop short at the urgent mark, with the rest of the
// stream queued behind it and no further edge to announce it: that short read must not count as
// draining the socket. Found by session 12's audit: 18 of 50 rounds waited out their deadline
// with the rest queued.
TEST_P(NetAdversarial, UrgentDataDoesNotStallTheRead) {
  goro::runtime rt(opts());
  goro_test::run_fibers(rt, 1, [&](std::size_t) {
    for (int round = 0; round < 30; ++round) {
      pair_of_conns p = connect_pair();
      bound(p);
      p.server.set_read_deadline(clock_type::now() + 2s);  // a stalled read fails the round
      const int peer = p.client.native_handle();
      std::string got;
      std::errc error{};
      goro::wait_group reader;
      reader.add(1);
      goro::go([&] {
        error = error_of([&] {
          char buf[64];
          const auto span = std::as_writable_bytes(std::span(buf));
          while (got.size() < std::string_view("1helloabworld").size()) {
            const std::size_t n = p.server.read(span);
            if (n == 0) break;
            got.append(buf, n);
          }
        });
        reader.done();
      });
      EXPECT_EQ(::send(peer, "1", 1, 0), 1);
      goro::this_fiber::sleep_for(2ms);  // the reader takes "1" and waits for more meanwhile
      EXPECT_EQ(::send(peer, "hello", 5, 0), 5);
      EXPECT_EQ(::send(peer, "abc", 3, MSG_OOB), 3);  // 'c' is urgent: out of the stream
      EXPECT_EQ(::send(peer, "world", 5, 0), 5);
      reader.wait();
      ASSERT_EQ(error, std::errc()) << "round " << round << ", read so far: " << got;
      ASSERT_EQ(got, "1helloabworld") << "round " << round;
    }
  });
}

TEST_P(NetAdversarial, HalfCloseBothWays) {
  goro::runtime rt(opts());
  goro_test::run_fibers(rt, 1, [&](std::size_t) {
    pair_of_conns p = connect_pair();
    bound(p);
    std::byte buf[16];
    p.client.close_write();
    EXPECT_EQ(p.server.read(buf), 0u);
    p.server.write("still");  // the other direction is open
    EXPECT_EQ(read_full(p.client, std::span(buf, 5)), 5u);
    p.server.close_write();
    EXPECT_EQ(p.client.read(buf), 0u);
    EXPECT_EQ(p.server.read(buf), 0u);
    // Writing after our own close_write: an error (EPIPE), not a SIGPIPE.
    const std::errc e = error_of([&] { p.client.write("late"); });
    EXPECT_EQ(e, std::errc::broken_pipe);
    const std::errc again = error_of([&] { p.client.close_write(); });  // an error, not a crash
    EXPECT_TRUE(again == std::errc() || again == std::errc::not_connected)
        << static_cast<int>(again);
    EXPECT_TRUE(p.client.is_open());
  });
}

// The peer resets while our write is blocked on a full buffer: the write fails promptly with a
// reset or broken pipe, not at its deadline.
TEST_P(NetAdversarial, ResetDuringABlockedWrite) {
  goro::runtime rt(opts());
  goro_test::run_fibers(rt, 1, [&](std::size_t) {
    for (int round = 0; round < 3; ++round) {
      pair_of_conns p = connect_pair();
      p.client.set_write_deadline(clock_type::now() + hang_limit);
      const std::vector<std::byte> big(32 << 20);
      goro::chan<std::errc> result(1);
      goro::go([&] { result.send(error_of([&] { p.client.write(big); })); });
      goro::this_fiber::sleep_for(30ms);  // lets the write fill the buffers and block
      const linger abort_on_close{1, 0};  // close sends RST
      ::setsockopt(p.server.native_handle(), SOL_SOCKET, SO_LINGER, &abort_on_close,
                   sizeof abort_on_close);
      const auto start = clock_type::now();
      p.server.close();
      const std::errc e = recv_bounded(result);
      EXPECT_TRUE(e == std::errc::connection_reset || e == std::errc::broken_pipe)
          << static_cast<int>(e);
      EXPECT_LT(goro_test::ms_since(start), 2000.0);
      // Further writes fail, reads see the end.
      EXPECT_NE(error_of([&] { p.client.write("x"); }), std::errc());
    }
  });
}

// ---- datagrams ----------------------------------------------------------------------------

TEST_P(NetAdversarial, DatagramsCutEmptyAndTooBig) {
  goro::runtime rt(opts());
  goro_test::run_fibers(rt, 1, [&](std::size_t) {
    goro::net::packet_conn a = goro::net::listen_packet("udp", "127.0.0.1:0");
    goro::net::packet_conn b = goro::net::listen_packet("udp", "127.0.0.1:0");
    a.set_deadline(clock_type::now() + hang_limit);
    b.set_deadline(clock_type::now() + hang_limit);
    std::vector<std::byte> big(1000, std::byte{7});
    EXPECT_EQ(b.write_to(big, a.local_address()), 1000u);
    EXPECT_EQ(b.write_to(bytes_of("second"), a.local_address()), 6u);
    EXPECT_EQ(b.write_to(std::span<const std::byte>(), a.local_address()), 0u);
    std::byte small[10];
    auto d = a.read_from(small);
    EXPECT_EQ(d.size, 10u) << "cut to the buffer";
    EXPECT_EQ(d.from, b.local_address());
    d = a.read_from(small);
    EXPECT_EQ(d.size, 6u) << "the rest of the first is gone, as with recvfrom";
    EXPECT_EQ(std::string(reinterpret_cast<char*>(small), 6), "second");
    d = a.read_from(small);
    EXPECT_EQ(d.size, 0u) << "an empty datagram";
    EXPECT_EQ(d.from, b.local_address());
    // An empty buffer takes (and drops) a datagram.
    b.write_to(bytes_of("x"), a.local_address());
    EXPECT_EQ(a.read_from(std::span<std::byte>()).size, 0u);
    a.set_read_deadline(clock_type::now() + 20ms);
    EXPECT_EQ(error_of([&] { a.read_from(small); }), std::errc::timed_out);
    // Too big for UDP: an error, not a crash.
    std::vector<std::byte> huge(70000);
    EXPECT_EQ(error_of([&] { b.write_to(huge, a.local_address()); }), std::errc::message_size);
    EXPECT_THROW(b.write_to(bytes_of("x"), "no-port"), std::invalid_argument);
    a.close();
    EXPECT_EQ(error_of([&] { a.write_to(bytes_of("x"), b.local_address()); }),
              std::errc::bad_file_descriptor);
    EXPECT_EQ(error_of([&] { a.read_from(small); }), std::errc::bad_file_descriptor);
  });
}

// Many fibers reading one packet_conn and many writing to it: each datagram is received whole,
// exactly once.
TEST_P(NetAdversarial, ManyDatagramReadersAndWriters) {
  goro::runtime rt(opts());
  constexpr int writers = 4;
  constexpr int per_writer = 200;
  goro_test::run_fibers(rt, 1, [&](std::size_t) {
    goro::net::packet_conn in = goro::net::listen_packet("udp", "127.0.0.1:0");
    const int rcvbuf = 1 << 20;
    ::setsockopt(in.native_handle(), SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
    in.set_read_deadline(clock_type::now() + hang_limit);
    std::vector<std::atomic<int>> seen(writers * per_writer);
    goro::wait_group readers;
    readers.add(4);
    std::atomic<int> received{0};
    for (int r = 0; r < 4; ++r) {
      goro::go([&] {
        std::byte buf[16];
        try {
          for (;;) {
            auto d = in.read_from(buf);
            if (d.size == 1 && buf[0] == std::byte{'!'}) break;
            ASSERT_EQ(d.size, sizeof(int));
            int id;
            std::memcpy(&id, buf, sizeof id);
            ASSERT_GE(id, 0);
            ASSERT_LT(id, writers * per_writer);
            seen[static_cast<std::size_t>(id)].fetch_add(1);
            received.fetch_add(1);
          }
        } catch (const std::system_error& e) {
          ADD_FAILURE() << e.what();
        }
        readers.done();
      });
    }
    goro::wait_group wrote;
    wrote.add(writers);
    for (int w = 0; w < writers; ++w) {
      goro::go([&, w] {
        goro::net::packet_conn out = goro::net::listen_packet("udp", "127.0.0.1:0");
        for (int i = 0; i < per_writer; ++i) {
          const int id = w * per_writer + i;
          out.write_to(std::as_bytes(std::span(&id, 1)), in.local_address());
          if (i % 16 == 0) goro::this_fiber::yield();  // loopback drops what overflows
        }
        wrote.done();
      });
    }
    wrote.wait();
    goro::this_fiber::sleep_for(20ms);  // lets the readers take what is queued
    goro::net::packet_conn out = goro::net::listen_packet("udp", "127.0.0.1:0");
    for (int r = 0; r < 4; ++r) out.write_to(bytes_of("!"), in.local_address());
    readers.wait();
    for (auto& s : seen) EXPECT_LE(s.load(), 1);
    EXPECT_GT(received.load(), writers * per_writer / 2) << "most should arrive on loopback";
  });
}

// ---- Unix sockets -------------------------------------------------------------------------

std::string long_path(std::size_t length) {
  std::string p = "/tmp/goro-adv-" + std::to_string(::getpid()) + "-";
  p.resize(length - 5, 'x');
  return p + ".sock";
}

TEST_P(NetAdversarial, UnixPathsAtTheLimit) {
  goro::runtime rt(opts());
  goro_test::run_fibers(rt, 1, [&](std::size_t) {
    const std::string longest = long_path(107);  // sun_path holds 108 with the NUL
    {
      goro::net::listener ln = goro::net::listen("unix", longest);
      EXPECT_EQ(ln.address(), longest);
      goro::net::conn c = goro::net::dial("unix", longest);
      goro::net::conn s = ln.accept();
      EXPECT_EQ(s.local_address(), longest);
      EXPECT_EQ(c.remote_address(), longest);
      EXPECT_EQ(c.local_address(), "");  // unnamed
      c.write("hi");
      std::byte b[2];
      EXPECT_EQ(read_full(s, b), 2u);
      // A second listener on the same path: address_in_use, and the first's file stays.
      EXPECT_EQ(error_of([&] { goro::net::listen("unix", longest); }), std::errc::address_in_use);
      EXPECT_EQ(::access(longest.c_str(), F_OK), 0);
    }
    EXPECT_NE(::access(longest.c_str(), F_OK), 0);
    EXPECT_THROW(goro::net::listen("unix", long_path(108)), std::invalid_argument);
    EXPECT_THROW(goro::net::dial("unix", long_path(200)), std::invalid_argument);
    // The abstract namespace, with a name of 106 bytes after the '@'.
    const std::string abstract = "@" + std::string(105, 'a') + std::to_string(workers());
    goro::net::listener ln = goro::net::listen("unix", abstract);
    EXPECT_EQ(ln.address(), abstract);
    goro::net::conn c = goro::net::dial("unix", abstract);
    EXPECT_EQ(ln.accept().local_address(), abstract);
    EXPECT_EQ(error_of([&] { goro::net::dial("unix", "@goro-adv-nobody-listens"); }),
              std::errc::connection_refused);
  });
}

// Go accepts an abstract name that fills all 108 bytes of sun_path ('@' standing for the leading
// NUL, no terminator needed: syscall.SockaddrUnix allows n == len(Path) when name[0] == '@').
// goro rejects it as "path too long": unix_address (src/net/address.cpp) applies the
// NUL-terminator limit (size >= 108) to abstract names too. Fixed: only paths need the NUL.
TEST_P(NetAdversarial, AbstractUnixNameOfFullLength) {
  goro::runtime rt(opts());
  goro_test::run_fibers(rt, 1, [&](std::size_t) {
    const std::string abstract = "@" + std::string(106, 'b') + std::to_string(workers());
    ASSERT_EQ(abstract.size(), 108u);
    try {
      goro::net::listener ln = goro::net::listen("unix", abstract);
      EXPECT_EQ(ln.address(), abstract);
      goro::net::conn c = goro::net::dial("unix", abstract);
      EXPECT_TRUE(ln.accept().is_open());
    } catch (const std::exception& e) {
      ADD_FAILURE() << e.what();
    }
  });
}

TEST_P(NetAdversarial, UnixDatagrams) {
  goro::runtime rt(opts());
  goro_test::run_fibers(rt, 1, [&](std::size_t) {
    const std::string path = "/tmp/goro-adv-dgram-" + std::to_string(::getpid()) + ".sock";
    {
      goro::net::packet_conn a = goro::net::listen_packet("unixgram", path);
      // Abstract names are per process too: ctest runs this test's worker counts at once.
      const std::string b_name = "@goro-adv-dgram-b-" + std::to_string(::getpid());
      goro::net::packet_conn b = goro::net::listen_packet("unixgram", b_name);
      a.set_deadline(clock_type::now() + hang_limit);
      EXPECT_EQ(a.local_address(), path);
      b.write_to(bytes_of("to a"), path);
      std::byte buf[16];
      auto d = a.read_from(buf);
      EXPECT_EQ(d.size, 4u);
      EXPECT_EQ(d.from, b_name);
      EXPECT_EQ(error_of([&] { b.write_to(bytes_of("x"), "/tmp/goro-adv-nobody.sock"); }),
                std::errc::no_such_file_or_directory);
    }
    EXPECT_NE(::access(path.c_str(), F_OK), 0);
  });
}

// ---- addresses ----------------------------------------------------------------------------

// The port of "host:port".
std::string port_of(const std::string& address) { return address.substr(address.rfind(':') + 1); }

// An IPv4 peer of a dual-stack socket (a listener on ":port", the usual server) reads as
// "127.0.0.1:port", as in Go, not as "[::ffff:127.0.0.1]:port": logs and limits keyed on the
// client's address see one text. Found by session 12's audit.
TEST_P(NetAdversarial, IPv4PeersOfADualStackSocketReadAsIPv4) {
  goro::runtime rt(opts());
  goro_test::run_fibers(rt, 1, [&](std::size_t) {
    goro::net::listener ln = goro::net::listen("tcp", ":0");
    goro::net::conn client = goro::net::dial("tcp", "127.0.0.1:" + port_of(ln.address()));
    goro::net::conn server = ln.accept();
    EXPECT_EQ(server.remote_address(), client.local_address());
    EXPECT_EQ(server.local_address(), client.remote_address());
    EXPECT_EQ(server.remote_address().rfind("127.0.0.1:", 0), 0u) << server.remote_address();

    goro::net::packet_conn any = goro::net::listen_packet("udp", ":0");
    any.set_deadline(clock_type::now() + hang_limit);
    goro::net::packet_conn v4 = goro::net::listen_packet("udp4", "127.0.0.1:0");
    v4.set_deadline(clock_type::now() + hang_limit);
    v4.write_to(bytes_of("ping"), "127.0.0.1:" + port_of(any.local_address()));
    std::byte buf[8];
    const goro::net::datagram d = any.read_from(buf);
    EXPECT_EQ(d.from, v4.local_address());
    any.write_to(bytes_of("pong"), d.from);  // the IPv4 text reaches the peer through any
    EXPECT_EQ(v4.read_from(buf).size, 4u);
  });
}

// A zero timeout means none, as Go's DialTimeout reads it; a negative one has passed.
TEST_P(NetAdversarial, DialWithAZeroTimeoutHasNone) {
  goro::runtime rt(opts());
  goro_test::run_fibers(rt, 1, [&](std::size_t) {
    goro::net::listener ln = goro::net::listen("tcp", "127.0.0.1:0");
    EXPECT_EQ(error_of([&] { (void)goro::net::dial("tcp", ln.address(), 0ms); }), std::errc());
    EXPECT_EQ(error_of([&] { (void)goro::net::dial("tcp", ln.address(), -1ms); }),
              std::errc::timed_out);
  });
}

TEST_P(NetAdversarial, AddressInUseAndLocalhost) {
  goro::runtime rt(opts());
  goro_test::run_fibers(rt, 1, [&](std::size_t) {
    goro::net::listener ln = goro::net::listen("tcp", "127.0.0.1:0");
    const std::string port = ln.address().substr(ln.address().rfind(':') + 1);
    EXPECT_EQ(error_of([&] { goro::net::listen("tcp", "127.0.0.1:" + port); }),
              std::errc::address_in_use);
    EXPECT_EQ(error_of([&] { goro::net::listen("tcp4", ":" + port); }), std::errc::address_in_use);
    goro::net::packet_conn u = goro::net::listen_packet("udp", "127.0.0.1:0");
    const std::string uport = u.local_address().substr(u.local_address().rfind(':') + 1);
    EXPECT_EQ(error_of([&] { goro::net::listen_packet("udp", "127.0.0.1:" + uport); }),
              std::errc::address_in_use);
    // localhost, resolved on the blocking pool.
    goro::net::listener lh = goro::net::listen("tcp", "localhost:0");
    const std::string lport = lh.address().substr(lh.address().rfind(':') + 1);
    goro::net::conn c = goro::net::dial("tcp", "localhost:" + lport);
    goro::net::conn s = lh.accept();
    EXPECT_EQ(s.remote_address(), c.local_address());
  });
}

TEST_P(NetAdversarial, BadAddressStrings) {
  goro::runtime rt(opts());
  goro_test::run_fibers(rt, 1, [&](std::size_t) {
    for (const char* bad : {"", ":", "127.0.0.1", "[::1", "[::1]", "::1:80", "1.2.3.4:5:6"}) {
      bool threw = false;
      try {
        goro::net::dial("tcp", bad, 2s);
      } catch (const std::invalid_argument&) {
        threw = true;
      } catch (const std::system_error&) {
        threw = true;
      }
      EXPECT_TRUE(threw) << "dial(\"" << bad << "\") connected somewhere";
    }
    EXPECT_THROW(goro::net::dial("tcp6", "127.0.0.1:80"), std::invalid_argument);
    EXPECT_THROW(goro::net::dial("TCP", "127.0.0.1:80"), std::invalid_argument);
    EXPECT_THROW(goro::net::listen_packet("tcp", "127.0.0.1:0"), std::invalid_argument);
    EXPECT_THROW(goro::net::listen("udp", "127.0.0.1:0"), std::invalid_argument);
    // A host that does not resolve: a system_error, after a lookup that does not block a worker.
    EXPECT_THROW(goro::net::dial("tcp", "no-such-host.invalid:80", 5s), std::system_error);
  });
}

// Fixed (was a bug): ports beyond 65535 (and negative ones) were not rejected: numeric_port refuses
// them, so resolve() hands "65536" to getaddrinfo, which takes it modulo 2^16: listen("tcp",
// "127.0.0.1:65536") binds a random free port (65536 -> 0) and reports success, and
// dial("tcp", "127.0.0.1:<p + 65536>") connects to port p. Go fails both with "invalid port".
// Cause: src/net/address.cpp, resolve(): a port that is all digits but out of range should be
// an invalid_argument, not fall through to lookup(); it now is.
TEST_P(NetAdversarial, PortOutOfRangeIsRejected) {
  goro::runtime rt(opts());
  goro_test::run_fibers(rt, 1, [&](std::size_t) {
    std::string bound_to;
    const std::errc e = error_of([&] {
      try {
        goro::net::listener ln = goro::net::listen("tcp", "127.0.0.1:65536");
        bound_to = ln.address();
      } catch (const std::invalid_argument&) {
        throw std::system_error(std::make_error_code(std::errc::invalid_argument));
      }
    });
    EXPECT_EQ(e, std::errc::invalid_argument) << "listen on port 65536 bound " << bound_to;
    goro::net::listener ln = goro::net::listen("tcp", "127.0.0.1:0");
    const int port = std::stoi(ln.address().substr(ln.address().rfind(':') + 1));
    const std::string wrapped = "127.0.0.1:" + std::to_string(port + 65536);
    bool connected = false;
    try {
      goro::net::conn c = goro::net::dial("tcp", wrapped, 2s);
      connected = true;
    } catch (const std::exception&) {
    }
    EXPECT_FALSE(connected) << "dial " << wrapped << " reached port " << port;
  });
}

// ---- descriptors other libraries own --------------------------------------------------------

TEST_P(NetAdversarial, WaitOnPipesAndEventfds) {
  goro::runtime rt(opts());
  goro_test::run_fibers(rt, 1, [&](std::size_t) {
    // An eventfd, written from a plain thread, many rounds.
    const int ev = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    ASSERT_GE(ev, 0);
    for (int i = 0; i < 200; ++i) {
      std::thread t([&] {
        if (i % 2 == 0) std::this_thread::sleep_for(std::chrono::microseconds(200));  // blocks
        const std::uint64_t one = 1;
        EXPECT_EQ(::write(ev, &one, sizeof one), 8);
      });
      std::stop_source bound_it;
      goro::chan<bool> done(1);
      goro::go([done, bound_it]() mutable {  // copies: it may run after this iteration
        if (!done.recv_for(hang_limit)) bound_it.request_stop();
      });
      EXPECT_EQ(error_of([&] { goro::net::wait_readable(ev, bound_it.get_token()); }), std::errc());
      done.send(true);
      std::uint64_t v;
      EXPECT_EQ(::read(ev, &v, sizeof v), 8);
      t.join();
    }
    ::close(ev);
    // A pipe whose writer closes wakes a wait for reading (end of file); one whose reader closes
    // wakes a wait for writing (EPIPE to come).
    int fds[2];
    ASSERT_EQ(::pipe2(fds, O_CLOEXEC | O_NONBLOCK), 0);
    goro::go([&] {
      goro::this_fiber::sleep_for(goro_test::blocked_for);  // lets the wait block
      ::close(fds[1]);
    });
    std::stop_source s1;
    std::thread guard1([&] {
      for (int i = 0; i < 1000 && !s1.stop_requested(); ++i) std::this_thread::sleep_for(10ms);
      s1.request_stop();
    });
    EXPECT_EQ(error_of([&] { goro::net::wait_readable(fds[0], s1.get_token()); }), std::errc());
    s1.request_stop();
    guard1.join();
    ::close(fds[0]);
    ASSERT_EQ(::pipe2(fds, O_CLOEXEC | O_NONBLOCK), 0);
    std::vector<char> fill(1 << 20);
    while (::write(fds[1], fill.data(), fill.size()) > 0) {
    }
    goro::go([&] {
      goro::this_fiber::sleep_for(goro_test::blocked_for);  // lets the wait block
      ::close(fds[0]);
    });
    std::stop_source s2;
    std::thread guard2([&] {
      for (int i = 0; i < 1000 && !s2.stop_requested(); ++i) std::this_thread::sleep_for(10ms);
      s2.request_stop();
    });
    EXPECT_EQ(error_of([&] { goro::net::wait_writable(fds[1], s2.get_token()); }), std::errc());
    s2.request_stop();
    guard2.join();
    ::close(fds[1]);
  });
}

TEST_P(NetAdversarial, WaitCancelledThenWaitAgain) {
  goro::runtime rt(opts());
  int fds[2];
  ASSERT_EQ(::pipe2(fds, O_CLOEXEC | O_NONBLOCK), 0);
  goro_test::run_fibers(rt, 1, [&](std::size_t) {
    for (int i = 0; i < 50; ++i) {
      std::stop_source stop;
      std::thread t([&] {
        std::this_thread::sleep_for(std::chrono::microseconds(100 * (i % 5)));  // sometimes blocks
        stop.request_stop();
      });
      EXPECT_EQ(error_of([&] { goro::net::wait_readable(fds[0], stop.get_token()); }),
                std::errc::operation_canceled);
      t.join();
    }
    // The registration went away with each wait: a fresh one works.
    EXPECT_EQ(::write(fds[1], "x", 1), 1);
    goro::net::wait_readable(fds[0]);
  });
  // And from a plain thread (the default runtime's poller).
  goro::net::wait_readable(fds[0]);
  ::close(fds[0]);
  ::close(fds[1]);
}

TEST_P(NetAdversarial, WaitOnBadDescriptors) {
  goro::runtime rt(opts());
  goro_test::run_fibers(rt, 1, [&](std::size_t) {
    EXPECT_EQ(error_of([&] { goro::net::wait_readable(-1); }), std::errc::bad_file_descriptor);
    const int unused = ::dup(0);
    ::close(unused);
    EXPECT_EQ(error_of([&] { goro::net::wait_readable(unused); }), std::errc::bad_file_descriptor);
    // A regular file cannot be polled: an error, not a wait forever.
    char name[] = "/tmp/goro-adv-file-XXXXXX";
    const int f = ::mkstemp(name);
    ASSERT_GE(f, 0);
    ::unlink(name);
    EXPECT_NE(error_of([&] { goro::net::wait_readable(f); }), std::errc());
    ::close(f);
    // A goro socket's own descriptor, registered with this runtime: refused.
    pair_of_conns p = connect_pair();
    p.client.set_read_deadline(clock_type::now() + 1ms);
    std::byte b[1];
    EXPECT_EQ(error_of([&] { p.client.read(b); }), std::errc::timed_out);  // registers it
    EXPECT_THROW(goro::net::wait_readable(p.client.native_handle()), std::invalid_argument);
  });
}

// Fixed: a goro socket that had never waited was not registered with a poller yet, so a wait on
// its descriptor was not refused: it waited, and the socket's own next wait then failed with
// "epoll_ctl: File exists". Found by a review of the documented promises. The waits here carry
// a stop requested after hang_limit, so the old behaviour fails the test instead of hanging it.
TEST_P(NetAdversarial, WaitOnAGoroSocketThatNeverWaitedIsRefused) {
  goro::runtime rt(opts());
  goro_test::run_fibers(rt, 1, [&](std::size_t) {
    goro::net::listener ln = goro::net::listen("tcp", "127.0.0.1:0");
    goro::net::conn client = goro::net::dial("tcp", ln.address());
    goro::net::conn server = ln.accept();  // a conn made by accept has not waited
    std::stop_source give_up;
    goro::chan<int> finished;
    goro::go([&give_up, finished] {
      if (finished.recv_for(hang_limit).status == goro::chan_status::timeout) {
        give_up.request_stop();
      }
    });
    for (const int fd : {server.native_handle(), ln.native_handle()}) {
      EXPECT_THROW(goro::net::wait_readable(fd, give_up.get_token()), std::invalid_argument);
      EXPECT_THROW(goro::net::wait_writable(fd, give_up.get_token()), std::invalid_argument);
    }
    // The socket still works, and its descriptor is refused once registered too.
    const std::byte out[1]{std::byte{7}};
    client.write(out);
    std::byte in[1];
    EXPECT_EQ(server.read(in), 1u);
    EXPECT_EQ(in[0], std::byte{7});
    EXPECT_THROW(goro::net::wait_readable(server.native_handle(), give_up.get_token()),
                 std::invalid_argument);
    finished.close();
  });
}

// Fixed: one fiber waiting for a foreign descriptor to be readable and another waiting for it
// to be writable, at once, could not both wait: the second got invalid_argument, as each wait
// registered the descriptor on its own. Waits on one descriptor now share one registration for
// both directions, as Go's pollDesc does.
TEST_P(NetAdversarial, WaitReadableAndWritableOnOneDescriptorAtOnce) {
  goro::runtime rt(opts());
  int sv[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv), 0);
  goro_test::run_fibers(rt, 1, [&](std::size_t) {
    std::stop_source stop;
    goro::chan<std::errc> reader(1);
    goro::go(
        [&] { reader.send(error_of([&] { goro::net::wait_readable(sv[0], stop.get_token()); })); });
    goro::this_fiber::sleep_for(goro_test::blocked_for);  // lets the read wait block
    EXPECT_NO_THROW(goro::net::wait_writable(sv[0])) << "a socket with room is writable";
    EXPECT_EQ(::write(sv[1], "x", 1), 1);
    auto r = reader.recv_for(2s);
    if (!r) stop.request_stop();
    EXPECT_TRUE(r && *r.value == std::errc());
    if (!r) reader.recv();
  });
  ::close(sv[0]);
  ::close(sv[1]);
}

// The waits on one foreign descriptor share its registration: one per direction at a time, the
// registration made again once both have left, and no readiness kept from an earlier wait.
TEST_P(NetAdversarial, ForeignWaitsShareOneRegistration) {
  goro::runtime rt(opts());
  int sv[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv), 0);
  goro_test::run_fibers(rt, 1, [&](std::size_t) {
    goro::chan<std::errc> reader(1);
    goro::go([&] { reader.send(error_of([&] { goro::net::wait_readable(sv[0]); })); });
    goro::this_fiber::sleep_for(goro_test::blocked_for);  // lets the read wait block
    EXPECT_THROW(goro::net::wait_readable(sv[0]), std::invalid_argument)
        << "a second reader of one descriptor";
    EXPECT_NO_THROW(goro::net::wait_writable(sv[0]));  // while the reader still waits
    EXPECT_EQ(::write(sv[1], "x", 1), 1);
    EXPECT_EQ(reader.recv(), std::errc());
    // Both left: a new wait registers it again, and sees the byte still unread.
    EXPECT_NO_THROW(goro::net::wait_readable(sv[0]));
    char c = 0;
    EXPECT_EQ(::read(sv[0], &c, 1), 1);
    // Nothing left to read: a wait must block, not return on the readiness seen before.
    std::stop_source stop;
    goro::go([&] {
      goro::this_fiber::sleep_for(std::chrono::milliseconds(20));  // the wait blocks meanwhile
      stop.request_stop();
    });
    EXPECT_EQ(error_of([&] { goro::net::wait_readable(sv[0], stop.get_token()); }),
              std::errc::operation_canceled);
  });
  ::close(sv[0]);
  ::close(sv[1]);
}

// ---- goro::blocking -----------------------------------------------------------------------

struct custom_error {
  int code;
};

TEST_P(NetAdversarial, BlockingCorners) {
  goro::runtime rt(opts());
  goro_test::run_fibers(rt, 1, [&](std::size_t) {
    // A move-only result.
    std::unique_ptr<int> p = goro::blocking([] { return std::make_unique<int>(42); });
    ASSERT_NE(p, nullptr);
    EXPECT_EQ(*p, 42);
    // A move-only argument, by reference (by value does not compile: see below).
    auto owned = std::make_unique<int>(7);
    EXPECT_EQ(goro::blocking([](std::unique_ptr<int>& q) { return *q + 1; }, owned), 8);
    // A result with no default constructor.
    struct no_default {
      explicit no_default(int value) : v(value) {}
      int v;
    };
    EXPECT_EQ(goro::blocking([] { return no_default(3); }).v, 3);
    // Exceptions of any type, thrown through unchanged.
    try {
      goro::blocking([] { throw custom_error{17}; });
      ADD_FAILURE() << "no throw";
    } catch (const custom_error& e) {
      EXPECT_EQ(e.code, 17);
    }
    EXPECT_THROW(goro::blocking([]() -> int { throw std::bad_alloc(); }), std::bad_alloc);
    // void, and a mutable lvalue callable that keeps its state.
    int calls = 0;
    auto counter = [&calls]() mutable { ++calls; };
    goro::blocking(counter);
    goro::blocking(counter);
    EXPECT_EQ(calls, 2);
    // Nested: a blocking call inside one runs inline on the pool's thread.
    EXPECT_EQ(goro::blocking([] { return goro::blocking([] { return 5; }); }), 5);
    // A reference result, through std::ref (a plain T& result does not compile: see below).
    int target = 1;
    std::reference_wrapper<int> ref = goro::blocking([&target] { return std::ref(target); });
    ref.get() = 9;
    EXPECT_EQ(target, 9);
  });
  // From a plain thread: inline, on the calling thread.
  const long self = goro_test::current_thread();
  EXPECT_EQ(goro::blocking([] { return goro_test::current_thread(); }), self);
  EXPECT_THROW(goro::blocking([] { throw custom_error{1}; }), custom_error);
}

// Fixed (were compile-time bugs): two uses of goro::blocking that std::invoke, std::thread and
// Go's closures all allow did not compile.
//  1. A callable returning a reference: blocking.hpp keeps the result in
//     std::optional<result_type>, and std::optional<int&> is ill-formed ("in a union may not have
//     reference type"). Any getter returning T& hits it.
//  2. An rvalue argument for a by-value (or &&) parameter of a move-only type: call::run does
//     std::apply on the lvalue tuple<F&&, Args&&...>, whose std::get yields lvalues, so
//     std::forward<decltype(p)> forwards every argument (and the callable) as an lvalue: a
//     unique_ptr cannot be copied into the parameter, a std::string&& parameter cannot bind, and a
//     copyable rvalue argument is silently copied instead of moved. std::apply(..., std::move(
//     c->parts)) would forward them as given. The result type is computed for rvalues
//     (invoke_result_t<F, Args...>) but the call is made on lvalues, so the two can disagree.
TEST_P(NetAdversarial, BlockingWithAReferenceResult) {
  goro::runtime rt(opts());
  int target = 1;
  goro_test::run_fibers(rt, 1, [&](std::size_t) {
    int& r = goro::blocking([&target]() -> int& { return target; });
    r = 2;
  });
  EXPECT_EQ(target, 2);
}

TEST_P(NetAdversarial, BlockingWithAMoveOnlyArgument) {
  goro::runtime rt(opts());
  goro_test::run_fibers(rt, 1, [&](std::size_t) {
    auto owned = std::make_unique<int>(7);
    EXPECT_EQ(goro::blocking([](std::unique_ptr<int> q) { return *q + 1; }, std::move(owned)), 8);
    EXPECT_EQ(goro::blocking([](std::string&& s) { return s.size(); }, std::string("abc")), 3u);
  });
}

// A thousand slow blocking calls at once from fibers of one runtime, and some from plain
// threads: all complete, none waits behind another for long.
TEST_P(NetAdversarial, ThousandConcurrentBlockingCalls) {
  goro::runtime rt(opts());
  const std::size_t n = goro_test::sanitized ? 300 : 1000;
  std::atomic<std::size_t> done{0};
  const auto start = clock_type::now();
  std::thread plain([&] {
    for (int i = 0; i < 10; ++i) done += goro::blocking([] { return std::size_t{1}; });
  });
  goro_test::run_fibers(rt, n, [&](std::size_t i) {
    const std::size_t r = goro::blocking(
        [](std::size_t v) {
          std::this_thread::sleep_for(50ms);
          return v;
        },
        i);
    EXPECT_EQ(r, i);
    done.fetch_add(1);
  });
  plain.join();
  EXPECT_EQ(done.load(), n + 10);
  EXPECT_LT(goro_test::ms_since(start), goro_test::sanitized ? 20000.0 : 5000.0);
}

// ---- ping-pong between a thread and fibers: no lost wake-up -------------------------------

TEST_P(NetAdversarial, PingPongThreadAndFiberNoLostWakeUp) {
  goro::runtime rt(opts());
  pair_of_conns p;
  goro_test::run_fibers(rt, 1, [&](std::size_t) { p = connect_pair(); });
  bound(p);
  const int rounds = static_cast<int>(std::max<std::size_t>(goro_test::scaled(5000), 200));
  goro::chan<std::errc> server_done(1);
  rt.go([&] {
    server_done.send(error_of([&] {
      std::byte b[1];
      for (int i = 0; i < rounds; ++i) {
        ASSERT_EQ(p.server.read(b), 1u);
        p.server.write(std::span<const std::byte>(b, 1));
      }
    }));
  });
  std::byte b[1] = {std::byte{1}};
  for (int i = 0; i < rounds; ++i) {
    p.client.write(std::span<const std::byte>(b, 1));
    ASSERT_EQ(p.client.read(b), 1u) << "round " << i;
  }
  EXPECT_EQ(recv_bounded(server_done), std::errc());
}

INSTANTIATE_TEST_SUITE_P(Workers, NetAdversarial, goro_test::net_worker_counts(),
                         goro_test::worker_count_name);

}  // namespace
