// SPDX-License-Identifier: Apache-2.0
// select with a timeout: wait for a slow result, but give up after a deadline, exactly like
// Go's `select { case r := <-results: ... case <-time.After(d): ... }`; then a ticker.
#include <chrono>
#include <cstdio>
#include <string>

#include <goro/goro.hpp>

int main() {
  using namespace std::chrono_literals;
  goro::chan<std::string> results;
  goro::go([results]() mutable {
    goro::this_fiber::sleep_for(200ms);  // a slow computation
    (void)results.try_send(std::string("too late"));
  });

  bool timed_out = false;
  goro::select(
      goro::on_recv(results,
                    [](std::optional<std::string> r) { std::printf("got %s\n", r->c_str()); }),
      goro::on_recv(goro::after(50ms), [&] { timed_out = true; }));
  std::printf("%s\n", timed_out ? "timed out after 50ms" : "result arrived in time");

  goro::ticker tick(10ms);
  int ticks = 0;
  goro::timer stop(55ms);
  for (bool done = false; !done;) {
    goro::select(goro::on_recv(tick.c(), [&] { ++ticks; }),
                 goro::on_recv(stop.c(), [&] { done = true; }));
  }
  std::printf("%d ticks in 55ms\n", ticks);
  return timed_out && ticks >= 3 ? 0 : 1;
}
