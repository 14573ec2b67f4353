// SPDX-License-Identifier: Apache-2.0
// Layer: diag. May include: diag, api, chan, sync, net, park, sched, stack, time, platform.
// Writing out the fibers and blocked threads (monitor.hpp, describe_fibers), in Go's traceback
// style: one paragraph each, the header line naming the fiber, its state and what it waits on,
// then where it was created. Shared by the deadlock report and goro::dump.
#include <unistd.h>

#include <algorithm>
#include <cinttypes>
#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "diag/fiber_stack.hpp"
#include "diag/monitor.hpp"
#include "platform/sanitizers.hpp"
#include "sched/census.hpp"
#include "sched/scheduler.hpp"

namespace goro::detail {
namespace {

// Formats at most 1023 characters: for numbers and short texts, not for names of the program's.
void appendf(std::string& out, const char* format, ...) __attribute__((format(printf, 2, 3)));
void appendf(std::string& out, const char* format, ...) {
  char buf[1024];
  va_list args;
  va_start(args, format);
  const int n = std::vsnprintf(buf, sizeof buf, format, args);
  va_end(args);
  if (n > 0) out.append(buf, std::min(static_cast<std::size_t>(n), sizeof buf - 1));
}

// Whether `f` still waits where the dump read it waiting.
bool still_waiting(const fiber& f, const wait_reason* why, const void* object) noexcept {
  return f.state.load(std::memory_order_acquire) == fiber_state::parked &&
         f.waiting_on.load(std::memory_order_relaxed) == why &&
         f.wait_object.load(std::memory_order_relaxed) == object;
}

// " chan receive 0x1234, 2.5 s" or " I/O read fd 7, 0.1 s". `f`: the fiber waiting, or null for
// a blocked plain thread (which stays blocked while the census's lock is held). A fiber may
// wake while the dump runs, and its object, in its frame, be gone: the object is described
// only if it lies on the fiber's stack (mapped for the runtime's life), and the description is
// kept only if the fiber still waits on it afterwards.
void append_wait(std::string& out, const wait_reason* why, const void* object, std::uint64_t since,
                 const fiber* f) {
  if (why == nullptr) {
    out += "waiting";
  } else {
    out += why->what;
  }
  if (why != nullptr && why->describe != nullptr && object != nullptr) {
    const auto at = reinterpret_cast<std::uintptr_t>(object);
    const auto low = f != nullptr ? reinterpret_cast<std::uintptr_t>(f->stack.low) : 0;
    const bool readable = f == nullptr || (at >= low && at + why->object_size >= at &&
                                           at + why->object_size <= low + f->stack.size);
    char text[512];
    text[0] = '\0';
    if (readable) why->describe(object, text, sizeof text);
    if (readable && (f == nullptr || still_waiting(*f, why, object))) {
      appendf(out, " [%s]", text);
    } else {
      appendf(out, " %p (woke meanwhile)", object);
    }
  } else if (why != nullptr && why->object_is_fd) {
    appendf(out, " fd %d", static_cast<int>(reinterpret_cast<std::intptr_t>(object)));
  } else if (object != nullptr) {
    appendf(out, " %p", object);
  }
  appendf(out, ", %.1f s", seconds_since(since));
}

struct fiber_line {
  std::uint64_t id;
  fiber_state state;
  spawn_site site;
  const wait_reason* why;
  const void* object;
  std::uint64_t since;
  const fiber* record;
};

}  // namespace

void describe_fibers(std::string& out, bool with_state, bool with_stacks) {
  [[maybe_unused]] const racy_reads_scope racy;  // fibers may run while we read them (goro::dump)
  const census& c = census::get();
  const bool several = c.schedulers().size() > 1;
  for (scheduler* s : c.schedulers()) {
    std::vector<fiber_line> lines;
    s->for_each_fiber([&lines](const fiber& f) {
      lines.push_back({f.id, f.state.load(std::memory_order_relaxed), f.site,
                       f.waiting_on.load(std::memory_order_relaxed),
                       f.wait_object.load(std::memory_order_relaxed),
                       f.wait_since.load(std::memory_order_relaxed), &f});
    });
    std::sort(lines.begin(), lines.end(),
              [](const fiber_line& a, const fiber_line& b) { return a.id < b.id; });
    if (several) {
      appendf(out, "runtime %p (%zu workers, %zu fibers):\n", static_cast<const void*>(s),
              s->worker_count(), lines.size());
    }
    for (const fiber_line& l : lines) {
      appendf(out, "\nfiber %" PRIu64 " [", l.id);
      if (with_state) {
        out += to_string(l.state);
        if (l.state == fiber_state::parked) out += ": ";
      }
      if (l.state == fiber_state::parked) append_wait(out, l.why, l.object, l.since, l.record);
      out += "]:\n";
      if (with_stacks && l.state == fiber_state::parked) append_parked_stack(out, *l.record);
      // Not through appendf's buffer: a function's name (a template's, with its arguments)
      // can be longer than any buffer, and was cut there, with the line's end.
      out += "\tcreated at ";
      out += l.site.file_name();
      appendf(out, ":%u in ", static_cast<unsigned>(l.site.line()));
      out += l.site.function_name();
      out += '\n';
    }
  }
  const long main_tid = static_cast<long>(::getpid());
  for (const blocked_thread* t = c.blocked(); t != nullptr; t = t->next) {
    appendf(out, "\nthread %ld%s [", t->tid, t->tid == main_tid ? " (main)" : "");
    if (with_state) out += "blocked: ";
    append_wait(out, t->why, t->object, t->since, nullptr);
    out += "]\n";
  }
}

}  // namespace goro::detail
