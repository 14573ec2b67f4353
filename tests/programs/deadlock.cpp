// SPDX-License-Identifier: Apache-2.0
// Deliberate deadlocks, one per argument, for tests/diag_test.cpp: each ends with every fiber
// parked and main blocked in goro, which the detector must report (docs/diagnostics.md). And
// programs that only look stuck for a while (`thread_sends_late`, `sleeper`), which it must not.
#include <chrono>
#include <cstdio>
#include <cstring>
#include <thread>

#include <goro/goro.hpp>

namespace {

// Two fibers, each receiving first from the other: neither ever sends.
void chan_cycle() {
  goro::chan<int> a, b;
  goro::wait_group wg;
  wg.add(2);
  goro::go([a, b, &wg]() mutable {
    a.recv();
    b.send(1);
    wg.done();
  });
  goro::go([a, b, &wg]() mutable {
    b.recv();
    a.send(1);
    wg.done();
  });
  wg.wait();
}

// A wait_group whose count never reaches zero, waited on by main and by a fiber.
void wait_group_never_done() {
  goro::wait_group wg;
  wg.add(1);
  goro::go([&wg] { wg.wait(); });
  wg.wait();
}

// A select on two channels no one sends on.
void select_nothing() {
  goro::chan<int> a, b;
  goro::wait_group wg;
  wg.add(1);
  goro::go([a, b, &wg]() mutable {
    goro::select(goro::on_recv(a, [](std::optional<int>) {}),
                 goro::on_recv(b, [](std::optional<int>) {}));
    wg.done();
  });
  wg.wait();
}

// Two fibers taking two mutexes in opposite orders, each holding its first.
void mutex_cycle() {
  static goro::mutex first, second;
  goro::wait_group both_hold, done;
  both_hold.add(2);
  done.add(2);
  goro::go([&] {
    first.lock();
    both_hold.done();
    both_hold.wait();
    second.lock();
    done.done();
  });
  goro::go([&] {
    second.lock();
    both_hold.done();
    both_hold.wait();
    first.lock();
    done.done();
  });
  done.wait();
}

// main receives on a channel no fiber will send on, while a fiber waits on another.
void main_blocked_on_chan() {
  goro::chan<int> never, other;
  goro::go([other]() mutable { other.recv(); });
  never.recv();
}

// Looks like main_blocked_on_chan for a second, but a plain thread, outside goro, sends.
void thread_sends_late() {
  goro::chan<int> c;
  goro::go([c]() mutable { c.recv(); });
  goro::chan<int> to_main;
  std::thread t([to_main]() mutable {
    std::this_thread::sleep_for(std::chrono::milliseconds(1500));
    to_main.send(7);
  });
  const int v = *to_main.recv();
  t.join();
  std::printf("received %d\n", v);
}

// Every fiber parked for a second and a half, one of them asleep: a timer is pending.
void sleeper() {
  goro::chan<int> c;
  goro::go([c]() mutable {
    goro::this_fiber::sleep_for(std::chrono::milliseconds(1500));
    c.send(1);
  });
  std::printf("received %d\n", *c.recv());
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) return 2;
  const char* what = argv[1];
  if (std::strcmp(what, "chan") == 0)
    chan_cycle();
  else if (std::strcmp(what, "wait_group") == 0)
    wait_group_never_done();
  else if (std::strcmp(what, "select") == 0)
    select_nothing();
  else if (std::strcmp(what, "mutex") == 0)
    mutex_cycle();
  else if (std::strcmp(what, "main_chan") == 0)
    main_blocked_on_chan();
  else if (std::strcmp(what, "thread_sends_late") == 0)
    thread_sends_late();
  else if (std::strcmp(what, "sleeper") == 0)
    sleeper();
  else
    return 2;
  return 0;
}
