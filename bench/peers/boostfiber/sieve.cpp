// SPDX-License-Identifier: Apache-2.0
//
// Boost.Fiber peer of goro's sieve workload (WORKLOADS.md): the concurrent prime sieve. A generator
// pushes 2, 3, 4, ... on an unbuffered channel; each prime taken from the end of the chain appends
// a filter fiber that drops its multiples. The n-th prime taken must equal the one a plain
// sequential sieve finds (48611 for n = 5000).
//
// Unlike Go's version, the chain must be taken down before the worker pool can be released. After
// the timed part main closes the last channel; the fiber pushing into a closed channel closes its
// own input and returns, and so the closing travels up the chain to the generator. The fibers at
// the two ends of a channel share it (std::shared_ptr), so it lives until both have returned.

#include "common.hpp"

#include <memory>

namespace {

using channel = boost::fibers::unbuffered_channel<std::int64_t>;
using channel_ptr = std::shared_ptr<channel>;

using boost::fibers::channel_op_status;

void generate(const channel_ptr& out) {
    for (std::int64_t i = 2; out->push(i) == channel_op_status::success; ++i) {
    }
}

void filter(const channel_ptr& in, const channel_ptr& out, std::int64_t prime) {
    std::int64_t v = 0;
    while (in->pop(v) == channel_op_status::success) {
        if (v % prime != 0 && out->push(v) != channel_op_status::success) {
            break;
        }
    }
    in->close();
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

    std::vector<boost::fibers::fiber> chain;
    chain.reserve(static_cast<std::size_t>(n) + 1);

    const peer::stopwatch timer;
    auto ch = std::make_shared<channel>();
    chain.emplace_back([ch] { generate(ch); });
    std::int64_t prime = 0;
    for (std::int64_t i = 0; i < n; ++i) {
        prime = ch->value_pop();
        auto next = std::make_shared<channel>();
        chain.emplace_back([ch, next, prime] { filter(ch, next, prime); });
        ch = std::move(next);
    }
    const auto elapsed = timer.elapsed();

    ch->close();
    for (boost::fibers::fiber& link : chain) {
        link.join();
    }
    return peer::report("sieve", procs, n, peer::millis(elapsed), "ms", prime == nth_prime(n));
}
