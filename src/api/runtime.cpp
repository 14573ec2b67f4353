// SPDX-License-Identifier: Apache-2.0
// Layer: api. May include: api, chan, sync, park, sched, stack, time, platform.
// goro::runtime, the default runtime, and this_fiber: the public face of the scheduler.
#include "goro/runtime.hpp"

#include <cstdio>
#include <cstdlib>
#include <exception>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>

#include "diag/monitor.hpp"
#include "diag/trace.hpp"
#include "goro/this_fiber.hpp"
#include "goro/wait_group.hpp"
#include "park/park.hpp"
#include "platform/eager_binding.hpp"
#include "platform/fatal.hpp"
#include "platform/sanitizers.hpp"
#include "sched/worker.hpp"
#include "stack/stack_pool.hpp"
#include "stack/stack_watermark.hpp"

namespace goro {
namespace {

// Unoptimised builds keep every local in its own stack slot: their frames need the sanitized
// builds' larger compact stacks.
#ifdef __OPTIMIZE__
constexpr bool optimized = true;
#else
constexpr bool optimized = false;
#endif

std::size_t workers_from_environment() {
  const char* env = std::getenv("GORO_MAXPROCS");
  if (env == nullptr) {
    const unsigned n = std::thread::hardware_concurrency();
    return n == 0 ? 1 : n;
  }
  const std::string text(env);
  const bool digits_only = !text.empty() && text.size() <= 4 &&
                           text.find_first_not_of("0123456789") == std::string::npos;
  const unsigned long n = digits_only ? std::stoul(text) : 0;
  if (n == 0 || n > max_workers) {
    throw std::invalid_argument("goro::runtime: GORO_MAXPROCS=\"" + text +
                                "\" is not a positive integer no larger than " +
                                std::to_string(max_workers));
  }
  return static_cast<std::size_t>(n);
}

options resolve(const options& in) {
  options out = in;
  if (out.workers > max_workers) {
    throw std::invalid_argument("goro::runtime: " + std::to_string(out.workers) +
                                " workers is more than max_workers (" +
                                std::to_string(max_workers) + ")");
  }
  if (out.workers == 0) out.workers = workers_from_environment();
  if (out.on_deadlock == deadlock_mode::from_environment) {
    out.on_deadlock = detail::deadlock_mode_from_environment();
  } else if (out.on_deadlock > deadlock_mode::from_environment) {
    throw std::invalid_argument("goro::runtime: on_deadlock is not a deadlock_mode");
  }
  if (!out.stack_watermark) out.stack_watermark = detail::stack_watermark_from_environment();
  if (out.compact_stacks) {
    if (out.stack_size == 0) {
      out.stack_size = detail::sanitized || !optimized ? 6 * default_compact_stack_size
                                                       : default_compact_stack_size;
    } else if (out.stack_size < min_compact_stack_size || out.stack_size >= min_stack_size) {
      throw std::invalid_argument(
          "goro::runtime: compact stack_size " + std::to_string(out.stack_size) + " is outside [" +
          std::to_string(min_compact_stack_size) + ", " + std::to_string(min_stack_size) + ")");
    }
    // A fiber's first call through a lazily bound PLT slot would overrun its stack.
    if (const auto lazy = detail::lazily_bound_object()) {
      throw std::invalid_argument(
          "goro::runtime: compact_stacks needs eager symbol binding (run with LD_BIND_NOW=1): " +
          *lazy +
          " is bound lazily, and a lazily bound call runs the dynamic linker on the fiber's "
          "stack, which needs about 4 KiB");
    }
  } else if (out.stack_size == 0) {
    out.stack_size = detail::sanitized ? 4 * default_stack_size : default_stack_size;
  } else if (out.stack_size < min_stack_size) {
    throw std::invalid_argument("goro::runtime: stack_size " + std::to_string(out.stack_size) +
                                " is below min_stack_size (" + std::to_string(min_stack_size) +
                                ")");
  } else if (out.stack_size > detail::stack_pool::max_stack_size()) {
    // Rounded up to whole pages it would wrap around size_t (SIZE_MAX became a 0-byte stack).
    throw std::invalid_argument("goro::runtime: stack_size " + std::to_string(out.stack_size) +
                                " is above the largest a slab of stacks can span (" +
                                std::to_string(detail::stack_pool::max_stack_size()) + ")");
  }
  return out;
}

}  // namespace

runtime::runtime() : runtime(options{}) {}

runtime::runtime(const options& opts) : sched_(std::make_unique<detail::scheduler>(resolve(opts))) {
  detail::start_monitor();
  detail::start_trace_from_environment();
  if (opts.dump_on_sigquit || detail::dump_on_sigquit_from_environment()) {
    detail::install_sigquit_dump();
  }
}

runtime::~runtime() {
  detail::worker* const w = detail::worker::current();
  if (w != nullptr && &w->sched() == sched_.get()) {
    detail::fatal("~runtime() called on one of its own fibers; it would wait for itself");
  }
  if (w == nullptr) {
    sched_->wait_for_fibers();
    return;
  }
  // On a fiber of another runtime: a thread of our own waits, and the fiber parks meanwhile,
  // so that its worker stays free for fibers the ones we wait for may need. (Blocking the
  // worker hung a one-worker outer runtime whose fiber was to send to an inner one's.)
  wait_group finished;
  finished.add(1);
  std::thread waiting;
  try {
    waiting = std::thread([this, &finished] {
      sched_->wait_for_fibers();
      finished.done();
    });
  } catch (...) {  // no thread to be had: block the worker, as before
    sched_->wait_for_fibers();
    return;
  }
  finished.wait();
  waiting.join();  // at most the moment the thread takes to leave done()
}

std::size_t runtime::workers() const noexcept { return sched_->worker_count(); }

std::size_t runtime::stack_size() const noexcept { return sched_->stack_size(); }

runtime_metrics runtime::metrics() const noexcept { return sched_->metrics(); }

runtime_metrics metrics() {
  detail::worker* w = detail::worker::current();
  return (w != nullptr ? w->sched() : detail::default_scheduler()).metrics();
}

namespace detail {

// The default runtime lives until exit, when its workers stop and fibers still parked are
// abandoned, as Go abandons goroutines when main returns. It is never deleted: fibers it
// abandoned may still refer to it, and LeakSanitizer sees it as reachable.
scheduler& default_scheduler() {
  static scheduler* instance = [] {
    auto* s = new scheduler(resolve(options{}));
    std::atexit([] { instance->stop_at_exit(); });
    start_monitor();
    start_trace_from_environment();
    if (dump_on_sigquit_from_environment()) install_sigquit_dump();
    return s;
  }();
  return *instance;
}

}  // namespace detail

namespace this_fiber {
namespace {
constexpr detail::wait_reason sleep_wait{"sleep", false, /*timed=*/true};
}  // namespace

void yield() noexcept {
  if (detail::worker* w = detail::worker::current(); w != nullptr && w->current_fiber()) {
    w->yield_current();
    return;
  }
  std::this_thread::yield();
}

void sleep_until(std::chrono::steady_clock::time_point deadline) noexcept {
  if (deadline <= std::chrono::steady_clock::now()) return;
  detail::waiter w(sleep_wait, nullptr);
  w.park_until(deadline);
}

bool sleep_until(std::chrono::steady_clock::time_point deadline, std::stop_token stop) noexcept {
  if (stop.stop_requested()) return false;
  if (deadline <= std::chrono::steady_clock::now()) return true;
  detail::waiter w(sleep_wait, nullptr);
  detail::park_limited(w, detail::wait_limit{deadline, std::move(stop)});
  return w.winner() == detail::claim_outcome::timed_out;
}

bool in_fiber() noexcept {
  detail::worker* w = detail::worker::current();
  return w != nullptr && w->current_fiber() != nullptr;
}

std::uint64_t get_id() noexcept {
  detail::worker* w = detail::worker::current();
  const detail::fiber* f = w != nullptr ? w->current_fiber() : nullptr;
  return f != nullptr ? f->id : 0;
}

}  // namespace this_fiber
}  // namespace goro
