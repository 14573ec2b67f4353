// SPDX-License-Identifier: Apache-2.0
// Deliberate deadlocks, one per argument, for tests/diag_test.cpp: each ends with every fiber
// parked and main blocked in goro, which the detector must report (docs/diagnostics.md). And
// programs that only look stuck for a while (`thread_sends_late`, `sleeper`), which it must not.
#include <chrono>
#include <csignal>
#include <cstdio>
#include <string_view>
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

// main receives on a channel before any runtime exists: no fiber, no worker.
void main_blocked_with_no_runtime() {
  goro::chan<int> never;
  never.recv();
}

// main receives what a plain thread, outside goro, sends after a second and a half.
void receive_from_a_late_thread() {
  goro::chan<int> to_main;
  std::thread t([to_main]() mutable {
    std::this_thread::sleep_for(std::chrono::milliseconds(1500));
    to_main.send(7);
  });
  const int v = *to_main.recv();
  t.join();
  std::printf("received %d\n", v);
}

// As main_blocked_with_no_runtime, but a plain thread sends late: not a deadlock.
void thread_sends_late_with_no_runtime() { receive_from_a_late_thread(); }

// Looks like main_blocked_on_chan for a second, but a plain thread, outside goro, sends.
void thread_sends_late() {
  goro::chan<int> c;
  goro::go([c]() mutable { c.recv(); });
  receive_from_a_late_thread();
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

// Two fibers parked on a mutex and a channel; then SIGQUIT, which (with GORO_DUMP_ON_SIGQUIT=1)
// dumps them and lets the program go on. With `owned`, the program ignores SIGQUIT first, and
// goro must leave the signal alone.
void sigquit(bool owned) {
  if (owned) std::signal(SIGQUIT, SIG_IGN);
  goro::runtime rt(goro::options{.workers = 2, .dump_on_sigquit = true});
  static goro::mutex m;
  goro::chan<int> c;
  goro::wait_group started;
  started.add(2);
  m.lock();
  rt.go([&] {
    started.done();
    m.lock();
    m.unlock();
  });
  rt.go([c, &started]() mutable {
    started.done();
    c.recv();
  });
  started.wait();
  std::this_thread::sleep_for(std::chrono::milliseconds(100));  // lets both park
  std::raise(SIGQUIT);
  std::this_thread::sleep_for(std::chrono::milliseconds(600));  // the monitor writes the dump
  m.unlock();
  c.close();
  std::printf("went on\n");
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) return 2;
  const std::string_view what = argv[1];
  if (what == "chan") chan_cycle();
  if (what == "wait_group") wait_group_never_done();
  if (what == "select") select_nothing();
  if (what == "mutex") mutex_cycle();
  if (what == "main_chan") main_blocked_on_chan();
  if (what == "no_runtime") main_blocked_with_no_runtime();
  if (what == "thread_sends_late_no_runtime") thread_sends_late_with_no_runtime();
  if (what == "thread_sends_late") thread_sends_late();
  if (what == "sleeper") sleeper();
  if (what == "sigquit") sigquit(false);
  if (what == "sigquit_owned") sigquit(true);
  return 0;
}
