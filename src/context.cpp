// SPDX-License-Identifier: Apache-2.0
// All of goro's use of Boost.Context: the fcontext primitives make_fcontext, jump_fcontext and
// ontop_fcontext (Boost 1.74, fcontext backend), wrapped with the AddressSanitizer and
// ThreadSanitizer fiber annotations that this backend does not make itself.
//
// Protocol: every switch carries a switch_record on the departing stack. The arriving side
// stores the departing context (the fcontext handed over by the switch) and then runs the
// record's hook. Fresh contexts are entered with jump_fcontext and call the arrival step
// themselves; suspended ones are resumed with ontop_fcontext, which runs it on their stack
// before they return from their own switch.
#include "context.hpp"

#include <pthread.h>

#include <boost/context/detail/fcontext.hpp>
#include "fatal.hpp"
#include "sanitizers.hpp"

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

void do_switch(exec_context& from, exec_context& to, arrival_hook hook, void* arg,
               bool from_finished) noexcept {
  switch_record rec{&from, &to, hook, arg};
  announce_switch(from, to, from_finished);
  if (to.fresh) {
    to.fresh = false;
    bctx::jump_fcontext(to.fctx, &rec);
  } else {
    bctx::ontop_fcontext(to.fctx, &rec, arrive_ontop);
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
}

void make_context(exec_context& ctx, void* low, std::size_t size, void (*entry)(void*), void* arg) {
  ctx.fctx = bctx::make_fcontext(static_cast<char*>(low) + size, size, fresh_entry);
  ctx.fresh = true;
  ctx.entry = entry;
  ctx.entry_arg = arg;
  ctx.stack_low = low;
  ctx.stack_size = size;
  ctx.asan_fake_stack = nullptr;
#ifdef GORO_TSAN
  ctx.tsan_fiber = __tsan_create_fiber(0);
#endif
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
