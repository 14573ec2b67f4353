// SPDX-License-Identifier: Apache-2.0
// floor-switch: the floor under pingpong (issue 18). Two raw Boost.Context contexts bounce
// control n times: one round trip is two jump_fcontext calls, the two context switches a
// ping-pong between two fibers cannot do without. No scheduler, no channel, no queue: what is
// left of a pingpong round trip above this figure is goro's own work. Reported in the workloads'
// format, so bench/compare runs it beside them and prints pingpong as a multiple of it.
#include <boost/context/detail/fcontext.hpp>

#include <cstddef>
#include <cstdlib>
#include <memory>

#include "../workloads/workload.hpp"

namespace bctx = boost::context::detail;

namespace {

struct bounce {
  long rounds = 0;
  long done = 0;
};

// The other context: hands control straight back, `rounds` times, then returns to main for good.
[[noreturn]] void partner(bctx::transfer_t t) {
  auto* b = static_cast<bounce*>(t.data);
  for (;;) {
    t = bctx::jump_fcontext(t.fctx, b);
    ++b->done;
  }
}

}  // namespace

int main(int argc, char** argv) {
  const long n = workload::size_arg(argc, argv, 10'000'000);
  constexpr std::size_t stack_size = 64 * 1024;
  const std::unique_ptr<std::byte[]> stack(new std::byte[stack_size]);
  bounce b{.rounds = n};
  bctx::fcontext_t other = bctx::make_fcontext(stack.get() + stack_size, stack_size, partner);
  other = bctx::jump_fcontext(other, &b).fctx;  // enter it once: it is now parked in its loop
  const workload::stopwatch watch;
  for (long i = 0; i < n; ++i) other = bctx::jump_fcontext(other, &b).fctx;
  const double ns = watch.elapsed_ns();
  // The partner's stack is simply dropped: it holds nothing that needs destroying.
  return workload::report("floor-switch", 1, n, ns / static_cast<double>(n), "ns", "%.1f",
                          b.done == n);
}
