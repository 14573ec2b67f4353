// SPDX-License-Identifier: Apache-2.0
// A pipeline in Go's style: a generator, a stage of squarers fanned out over one channel, and a
// summing sink, connected by channels and shut down by closing them.
#include <cstdio>

#include <goro/goro.hpp>

int main() {
  goro::chan<long> numbers(16);
  goro::chan<long> squares(16);

  goro::go([numbers]() mutable {
    for (long i = 1; i <= 1000; ++i) numbers.send(i);
    numbers.close();  // tells the squarers there is no more work
  });

  constexpr int squarers = 4;
  goro::wait_group working;
  working.add(squarers);
  for (int i = 0; i < squarers; ++i) {
    goro::go([numbers, squares, &working]() mutable {
      for (long n : numbers) squares.send(n * n);  // ends when numbers is closed and drained
      working.done();
    });
  }
  goro::go([squares, &working]() mutable {
    working.wait();
    squares.close();
  });

  long total = 0;
  for (long sq : squares) total += sq;  // main() receives on a plain thread
  std::printf("sum of squares 1..1000 = %ld\n", total);
  return total == 333'833'500 ? 0 : 1;
}
