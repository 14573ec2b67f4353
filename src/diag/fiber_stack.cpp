// SPDX-License-Identifier: Apache-2.0
// Layer: diag. May include: diag, api, chan, sync, net, park, sched, stack, time, platform.
// Stack traces of parked fibers (fiber_stack.hpp). A parked fiber's Boost.Context fcontext
// points at the registers jump_fcontext saved on its stack; they become the register set that
// libunwind's unw_init_local starts from, and libunwind walks the rest with the DWARF CFI, as
// it would the calling thread's own stack. Layout of Boost 1.74's x86-64 jump_fcontext (checked
// against Debian's libboost_context by tests/diag_test.cpp, which expects known frames): at
// fctx, the MXCSR and x87 control word, then r12, r13, r14, r15, rbx, rbp, and the return
// address; the stack pointer on return is fctx + 0x40.
//
// libunwind is loaded with dlopen(RTLD_LOCAL) when a trace is first asked for, not linked: the
// shared libunwind exports the _Unwind_* functions of the C++ exception ABI too, and linked in
// it would take over every throw of the program from libgcc (and, validating addresses through
// a pipe, keep two descriptors open). Only its header is needed to build.
#include "diag/fiber_stack.hpp"

#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "platform/asymmetric_fence.hpp"
#include "platform/context.hpp"
#include "sched/fiber.hpp"

#if GORO_HAVE_LIBUNWIND && defined(__x86_64__)
#define UNW_LOCAL_ONLY
#include <cxxabi.h>
#include <dlfcn.h>
#include <libunwind.h>
#include <ucontext.h>
#endif

namespace goro::detail {

#if GORO_HAVE_LIBUNWIND && defined(__x86_64__)

namespace {

constexpr int max_frames = 32;
constexpr std::size_t max_name = 160;

// The libunwind calls used, found by dlsym under the names its header maps them to.
struct unwind_api {
  int (*init_local)(unw_cursor_t*, unw_context_t*);
  int (*step)(unw_cursor_t*);
  int (*get_reg)(unw_cursor_t*, unw_regnum_t, unw_word_t*);
  int (*get_proc_name)(unw_cursor_t*, char*, std::size_t, unw_word_t*);
};

#define GORO_STRINGIFY_NAME(x) #x
#define GORO_UNW_NAME(x) GORO_STRINGIFY_NAME(x)

// Null where libunwind.so.8 cannot be loaded. Loaded once, never unloaded.
const unwind_api* unwinder() {
  static const unwind_api* const api = []() -> const unwind_api* {
    void* lib = ::dlopen("libunwind.so.8", RTLD_NOW | RTLD_LOCAL);
    if (lib == nullptr) return nullptr;
    static unwind_api found{};
    found.init_local =
        reinterpret_cast<decltype(found.init_local)>(::dlsym(lib, GORO_UNW_NAME(unw_init_local)));
    found.step = reinterpret_cast<decltype(found.step)>(::dlsym(lib, GORO_UNW_NAME(unw_step)));
    found.get_reg =
        reinterpret_cast<decltype(found.get_reg)>(::dlsym(lib, GORO_UNW_NAME(unw_get_reg)));
    found.get_proc_name = reinterpret_cast<decltype(found.get_proc_name)>(
        ::dlsym(lib, GORO_UNW_NAME(unw_get_proc_name)));
    const bool complete = found.init_local != nullptr && found.step != nullptr &&
                          found.get_reg != nullptr && found.get_proc_name != nullptr;
    return complete ? &found : nullptr;
  }();
  return api;
}

void append_frame(std::string& out, const unwind_api& unw, unw_cursor_t& cursor) {
  unw_word_t ip = 0;
  unw.get_reg(&cursor, UNW_REG_IP, &ip);
  char mangled[512];
  unw_word_t offset = 0;
  if (unw.get_proc_name(&cursor, mangled, sizeof mangled, &offset) != 0) {
    char line[64];
    std::snprintf(line, sizeof line, "\t0x%" PRIxPTR "\n", static_cast<std::uintptr_t>(ip));
    out += line;
    return;
  }
  int status = -1;
  char* demangled = abi::__cxa_demangle(mangled, nullptr, nullptr, &status);
  std::string name = status == 0 && demangled != nullptr ? demangled : mangled;
  std::free(demangled);
  if (name.size() > max_name) name = name.substr(0, max_name) + "...";
  char tail[48];
  std::snprintf(tail, sizeof tail, "+0x%" PRIxPTR "\n", static_cast<std::uintptr_t>(offset));
  out += "\t";
  out += name;
  out += tail;
}

// Holds `f` where it is for the length of a walk of its stack: a switch to it waits until the
// hold ends (stack_walks, platform/context.hpp). Without it, a fiber resumed mid-walk ran over the
// frames libunwind was reading, and the walk followed what it found there into unmapped memory
// (HttpAdversarialDiag.ConcurrentFromThreadsWhileFibersComeAndGo, built by Clang under TSan:
// a SEGV in _ULx86_64_step, 2 runs of 4). The heavy side of an asymmetric Dekker pair with
// the switch: after the fence, either the fiber is seen running (and not walked) or the
// switch to it sees the hold.
class walk_hold {
 public:
  // Relaxed: the heavy fence after them orders both stores before the state read, and before
  // every switch's later load (the Dekker pair); the release at the end orders the walk's reads
  // before the switch that waited for it.
  explicit walk_hold(const fiber& f) noexcept : f_(f) {
    stack_walks.fetch_add(1, std::memory_order_relaxed);
    f_.ctx.walk_held.store(true, std::memory_order_relaxed);
    heavy_fence();
  }
  walk_hold(const walk_hold&) = delete;
  walk_hold& operator=(const walk_hold&) = delete;
  ~walk_hold() {
    f_.ctx.walk_held.store(false, std::memory_order_release);
    stack_walks.fetch_sub(1, std::memory_order_relaxed);
  }
  // Whether the fiber is suspended and stays so while held: parked, or queued to run.
  bool suspended() const noexcept {
    const fiber_state s = f_.state.load(std::memory_order_acquire);
    return s == fiber_state::parked || s == fiber_state::runnable;
  }

 private:
  const fiber& f_;
};

}  // namespace

void append_parked_stack(std::string& out, const fiber& f) {
  const unwind_api* unw = unwinder();
  if (unw == nullptr) {
    out += "\t(no stack trace: libunwind.so.8 could not be loaded)\n";
    return;
  }
  // The hold needs asymmetric fences (membarrier(2)); without them every switch would pay a
  // full fence for it, so there is no trace rather than an unsafe one.
  if (!asymmetric_fences()) {
    out += "\t(no stack trace: it needs membarrier(2), which this kernel refused)\n";
    return;
  }
  const walk_hold hold(f);
  if (!hold.suspended()) {
    out += "\t(it woke meanwhile)\n";
    return;
  }
  const auto* saved = static_cast<const std::uint64_t*>(f.ctx.fctx);
  const auto low = reinterpret_cast<std::uintptr_t>(f.stack.low);
  const auto at = reinterpret_cast<std::uintptr_t>(saved);
  if (saved == nullptr || at < low || at + 0x40 > low + f.stack.size) {
    out += "\t(no saved context to walk)\n";
    return;
  }
  unw_context_t uc;
  std::memset(&uc, 0, sizeof uc);
  greg_t* g = uc.uc_mcontext.gregs;
  g[REG_R12] = static_cast<greg_t>(saved[1]);
  g[REG_R13] = static_cast<greg_t>(saved[2]);
  g[REG_R14] = static_cast<greg_t>(saved[3]);
  g[REG_R15] = static_cast<greg_t>(saved[4]);
  g[REG_RBX] = static_cast<greg_t>(saved[5]);
  g[REG_RBP] = static_cast<greg_t>(saved[6]);
  g[REG_RIP] = static_cast<greg_t>(saved[7]);
  g[REG_RSP] = static_cast<greg_t>(at) + 0x40;
  unw_cursor_t cursor;
  if (unw->init_local(&cursor, &uc) != 0) {
    out += "\t(libunwind could not start from the saved context)\n";
    return;
  }
  for (int i = 0; i < max_frames; ++i) {
    append_frame(out, *unw, cursor);
    unw_word_t sp = 0;
    unw->get_reg(&cursor, UNW_REG_SP, &sp);
    // The walk ends where the fiber's stack does (its entry frame has no caller).
    if (sp < low || sp >= low + f.stack.size) break;
    if (unw->step(&cursor) <= 0) break;
  }
}

#else

void append_parked_stack(std::string& out, const fiber&) {
  out += "\t(no stack trace: goro was built without libunwind's header, or not for x86-64)\n";
}

#endif

}  // namespace goro::detail
