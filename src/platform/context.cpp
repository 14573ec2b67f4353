// SPDX-License-Identifier: Apache-2.0
// Layer: platform. May include: platform.
// All of goro's use of Boost.Context: the fcontext primitives make_fcontext, jump_fcontext and
// ontop_fcontext (Boost 1.74, fcontext backend), wrapped with the AddressSanitizer and
// ThreadSanitizer fiber annotations that this backend does not make itself, and with the save
// and restore of the C++ runtime's per-thread exception state, which it does not move either.
//
// Protocol: every switch carries a switch_record on the departing stack. The arriving side
// stores the departing context (the fcontext handed over by the switch) and then runs the
// record's hook. Fresh contexts are entered with jump_fcontext and call the arrival step
// themselves; suspended ones are resumed with ontop_fcontext, which runs it on their stack
// before they return from their own switch.
//
// Exception state: the C++ runtime keeps the stack of caught exceptions (behind
// std::current_exception() and `throw;`) and the count of exceptions unwinding (behind
// std::uncaught_exceptions()) per thread, in the __cxa_eh_globals that __cxa_get_globals()
// returns. goro makes them per context, as YTsaurus (yt/core/concurrency/execution_context.cpp)
// and Mordor (mordor/platform/cxa_exception.cpp) do at every fiber switch.
//
// Invariant (E1): while a context runs, the globals of the thread running it hold its
// exception state; while it is suspended, its exec_context::eh does. A fresh context's is
// empty, and a finished one's was empty when it left.
//
// Proof sketch: every switch goes through do_switch, which, before the jump, saves the thread's
// globals into `from` and installs `to`'s. The jump never changes thread, so `to` arrives on
// the thread whose globals now hold its state. do_switch reaches those globals through
// `from.thread_eh` (E2: `from` is running, on this thread) and gives `to` the same address, so
// no switch looks up thread-local storage; it keeps no address past its jump, after which the
// resumed `from` may be on another thread. `from.eh` is written before the arrival hook can
// publish `from` to another worker, so the thread that resumes it reads what was saved, as it
// reads `from.fctx`.
//
// Invariant (E2): a running context's thread_eh is __cxa_get_globals() of the thread running
// it. init_thread_context sets it for a thread's own context, on that thread; every other
// context runs only after a switch on its thread, from a running context, which copies its
// own. Checked at every switch where GORO_DCHECKs are on.
#include "platform/context.hpp"

#include <cxxabi.h>
#include <pthread.h>

#include <cstddef>

#include <boost/context/detail/fcontext.hpp>
#include "goro/detail/check.hpp"
#include "platform/cpu.hpp"
#include "platform/fatal.hpp"
#include "platform/sanitizers.hpp"

// cxa_eh_state mirrors the first fields of the Itanium C++ ABI's __cxa_eh_globals, which
// <cxxabi.h> declares only as an incomplete type. tests/exception_state_test.cpp checks the
// layout against the C++ runtime the tests link.
#ifndef __GXX_ABI_VERSION
#error "goro's per-fiber exception state needs the Itanium C++ ABI (__cxa_get_globals)"
#endif
static_assert(offsetof(goro::detail::cxa_eh_state, caught_exceptions) == 0);
static_assert(offsetof(goro::detail::cxa_eh_state, uncaught_exceptions) == sizeof(void*));

namespace goro::detail {
namespace {

namespace bctx = boost::context::detail;

struct switch_record {
  exec_context* from;
  exec_context* to;
  arrival_hook hook;
  void* arg;
};

// The first thing that runs on the arriving stack.
void arrive(bctx::transfer_t t) noexcept {
  auto* rec = static_cast<switch_record*>(t.data);
  exec_context* to = rec->to;
  arrival_hook hook = rec->hook;
  void* arg = rec->arg;
#ifdef GORO_ASAN
  __sanitizer_finish_switch_fiber(to->asan_fake_stack, nullptr, nullptr);
#endif
  (void)to;
  // From here on `from` may be resumed by whoever the hook hands it to; `rec` lives on
  // `from`'s stack, so it is read before.
  rec->from->fctx = t.fctx;
  if (hook != nullptr) hook(arg);
}

bctx::transfer_t arrive_ontop(bctx::transfer_t t) noexcept {
  arrive(t);
  return {nullptr, nullptr};
}

[[noreturn]] void fresh_entry(bctx::transfer_t t) noexcept {
  exec_context* self = static_cast<switch_record*>(t.data)->to;
  arrive(t);
  self->entry(self->entry_arg);
  fatal("fiber entry returned");
}

void announce_switch([[maybe_unused]] exec_context& from, [[maybe_unused]] exec_context& to,
                     [[maybe_unused]] bool from_finished) noexcept {
#ifdef GORO_ASAN
  __sanitizer_start_switch_fiber(from_finished ? nullptr : &from.asan_fake_stack, to.stack_low,
                                 to.stack_size);
#endif
#ifdef GORO_TSAN
  __tsan_switch_to_fiber(to.tsan_fiber, 0);
#endif
}

// The calling thread's exception state: the Itanium C++ ABI's __cxa_eh_globals.
cxa_eh_state* thread_eh_globals() noexcept {
  return reinterpret_cast<cxa_eh_state*>(abi::__cxa_get_globals());
}

// Saves the calling thread's exception state into `from` (unless it finished) and installs
// `to`'s, keeping E1 and E2 across the jump that follows.
void exchange_eh_state(exec_context& from, exec_context& to, bool from_finished) noexcept {
  cxa_eh_state* const thread = from.thread_eh;
  GORO_DCHECK(thread == thread_eh_globals());
  if (from_finished) {
    GORO_DCHECK(thread->caught_exceptions == nullptr && thread->uncaught_exceptions == 0);
  } else {
    from.eh = *thread;
  }
  *thread = to.eh;
  to.thread_eh = thread;
}

// A walk of `to`'s stack is under way (stack_walks): wait until it is done.
[[gnu::noinline, gnu::cold]] void wait_out_walk(const exec_context& to) noexcept {
  while (to.walk_held.load(std::memory_order_acquire)) cpu_relax();
}

void do_switch(exec_context& from, exec_context& to, arrival_hook hook, void* arg,
               bool from_finished) noexcept {
  switch_record rec{&from, &to, hook, arg};
  exchange_eh_state(from, to, from_finished);
  announce_switch(from, to, from_finished);
  // A running context has no saved registers: its fctx is null until it is suspended again
  // (arrive). A stack walk of a fiber already marked parked but not yet saved (the dump, from
  // another thread) then finds nothing to walk, not the registers of its last suspension,
  // which its frames have overwritten since: following those walked into never-written stack
  // (HttpAdversarialDiag.ConcurrentFromThreadsWhileFibersComeAndGo, a SEGV in libunwind).
  if (stack_walks.load(std::memory_order_relaxed) != 0) [[unlikely]]
    wait_out_walk(to);
  void* const saved = to.fctx;
  to.fctx = nullptr;
  if (to.fresh) {
    to.fresh = false;
    bctx::jump_fcontext(saved, &rec);
  } else {
    bctx::ontop_fcontext(saved, &rec, arrive_ontop);
  }
}

}  // namespace

void init_thread_context(exec_context& ctx) {
  pthread_attr_t attr;
  if (pthread_getattr_np(pthread_self(), &attr) == 0) {
    void* low = nullptr;
    std::size_t size = 0;
    pthread_attr_getstack(&attr, &low, &size);
    pthread_attr_destroy(&attr);
    ctx.stack_low = low;
    ctx.stack_size = size;
  }
#ifdef GORO_TSAN
  ctx.tsan_fiber = __tsan_get_current_fiber();
#endif
  ctx.thread_eh = thread_eh_globals();
}

exec_context make_context(void* low, std::size_t size, void (*entry)(void*), void* arg) {
  return {.fctx = bctx::make_fcontext(static_cast<char*>(low) + size, size, fresh_entry),
          .fresh = true,
          .entry = entry,
          .entry_arg = arg,
          .stack_low = low,
          .stack_size = size,
          .asan_fake_stack = nullptr,
#ifdef GORO_TSAN
          .tsan_fiber = __tsan_create_fiber(0),
#else
          .tsan_fiber = nullptr,
#endif
          .eh = {},
          .thread_eh = nullptr};
}

void destroy_context([[maybe_unused]] exec_context& ctx) noexcept {
#ifdef GORO_TSAN
  if (ctx.tsan_fiber != nullptr) __tsan_destroy_fiber(ctx.tsan_fiber);
  ctx.tsan_fiber = nullptr;
#endif
}

void switch_context(exec_context& from, exec_context& to, arrival_hook hook, void* arg) noexcept {
  do_switch(from, to, hook, arg, false);
}

void exit_context(exec_context& from, exec_context& to, arrival_hook hook, void* arg) noexcept {
  do_switch(from, to, hook, arg, true);
  fatal("a finished fiber was resumed");
}

}  // namespace goro::detail
