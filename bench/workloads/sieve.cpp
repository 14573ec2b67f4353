// SPDX-License-Identifier: Apache-2.0
// sieve: the concurrent prime sieve; a generator and a chain of filter fibers over unbuffered
// channels, until the n-th prime.
#include "workload.hpp"

namespace {

void generate(goro::chan<long> out) {
  for (long i = 2;; ++i) out.send(i);
}

void filter(goro::chan<long> in, goro::chan<long> out, long prime) {
  for (;;) {
    const long v = *in.recv();
    if (v % prime != 0) out.send(v);
  }
}

}  // namespace

int main(int argc, char** argv) {
  const long n = workload::size_arg(argc, argv, 5000);
  // The generator and filters never finish, as in Go's version; this runtime is abandoned by
  // leaking it, so its destructor does not wait for them.
  auto* rt = new goro::runtime(workload::runtime_options());
  goro::chan<long> result;
  rt->go([=]() mutable {
    const workload::stopwatch watch;
    goro::chan<long> ch;
    goro::go(generate, ch);
    long prime = 0;
    for (long i = 0; i < n; ++i) {
      prime = *ch.recv();
      goro::chan<long> next;
      goro::go(filter, ch, next, prime);
      ch = next;
    }
    result.send(static_cast<long>(watch.elapsed_ns() / 1e6 * 1000));
    result.send(prime);
  });
  const double ms = static_cast<double>(*result.recv()) / 1000;
  const long prime = *result.recv();
  const bool ok = n != 5000 || prime == 48611;
  const int status = workload::report("sieve", rt->workers(), n, ms, "ms", "%.1f", ok);
  std::fflush(stdout);
  std::_Exit(status);  // the filters run forever; end the process as Go's main does
}
