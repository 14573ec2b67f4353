// SPDX-License-Identifier: Apache-2.0
//
// Boost.Fiber peer of goro's sieve workload (WORKLOADS.md): the concurrent prime sieve. A generator
// pushes 2, 3, 4, ... on an unbuffered channel; each prime taken from the end of the chain appends
// a filter fiber that drops its multiples. The n-th prime taken must equal the one a plain
// sequential sieve finds (48611 for n = 5000).
//
// Unlike Go's version, the chain must be taken down before the worker pool can be released. main
// owns every channel and, after the timed part, closes the last one. A fiber whose push fails
// because its output is closed closes its own input and returns, so the closing travels up the
// chain to the generator (untimed, it takes about as long as the sieve itself); then main joins
// every fiber. Closing all channels at once would be quicker but is unsafe in Boost 1.74:
// unbuffered_channel::close wakes a producer blocked in push without clearing the slot that points
// into that producer's stack, so a later pop could read a dead frame. Closing each channel only
// after its consumer has returned means nothing pops a closed channel.

#include "common.hpp"

#include <deque>

namespace {

using channel = boost::fibers::unbuffered_channel<std::int64_t>;
using boost::fibers::channel_op_status;

void generate(channel& out) {
  for (std::int64_t i = 2; out.push(i) == channel_op_status::success; ++i) {
  }
}

void filter(channel& in, channel& out, std::int64_t prime) {
  std::int64_t v = 0;
  while (in.pop(v) == channel_op_status::success) {
    if (v % prime != 0 && out.push(v) != channel_op_status::success) {
      break;
    }
  }
  in.close();
}

// The n-th prime (1-based), from a sequential sieve of Eratosthenes whose bound doubles until it
// holds n primes.
std::int64_t nth_prime(std::int64_t n) {
  for (std::int64_t limit = 16;; limit *= 2) {
    std::vector<bool> composite(static_cast<std::size_t>(limit));
    std::int64_t count = 0;
    for (std::int64_t i = 2; i < limit; ++i) {
      if (composite[i]) {
        continue;
      }
      if (++count == n) {
        return i;
      }
      for (std::int64_t j = i * i; j < limit; j += i) {
        composite[j] = true;
      }
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  const unsigned procs = peer::procs_from_env();
  const std::int64_t n = peer::size_from_args(argc, argv, 5000);
  peer::worker_pool pool{procs};

  std::deque<channel> channels;  // a deque never moves its elements: fibers hold references
  std::vector<boost::fibers::fiber> chain;
  chain.reserve(static_cast<std::size_t>(n) + 1);

  const peer::stopwatch timer;
  channel* source = &channels.emplace_back();
  chain.emplace_back([source] { generate(*source); });
  std::int64_t prime = 0;
  for (std::int64_t i = 0; i < n; ++i) {
    prime = source->value_pop();
    channel* next = &channels.emplace_back();
    chain.emplace_back([source, next, prime] { filter(*source, *next, prime); });
    source = next;
  }
  const auto elapsed = timer.elapsed();

  source->close();
  for (boost::fibers::fiber& fiber : chain) {
    fiber.join();
  }
  return peer::report("sieve", procs, n, peer::millis(elapsed), "ms", prime == nth_prime(n));
}
