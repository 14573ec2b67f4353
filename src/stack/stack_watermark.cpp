// SPDX-License-Identifier: Apache-2.0
// Layer: stack. May include: stack, time, platform.
// Stack high-water marks per spawn site (stack_watermark.hpp).
#include "stack/stack_watermark.hpp"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <map>
#include <stdexcept>
#include <string>
#include <tuple>

#include "goro/detail/thread_safety.hpp"
#include "platform/sanitizers.hpp"
#include "platform/thread_mutex.hpp"

namespace goro::detail {
namespace {

// "goro-stk" backwards; any word will do that a fiber is unlikely to write at the very spot.
constexpr std::uint64_t paint = 0x6b74732d6f726f67ULL;

// Keyed by the site's pointers: a call site's strings are one static each (and with
// std::source_location the whole site is), so equal sites have equal pointers.
using site_key = std::tuple<const char*, const char*, unsigned>;

struct table {
  thread_mutex mu;
  std::map<site_key, stack_use_entry> sites GORO_GUARDED_BY(mu);
};

table& the_table() {
  static table* const t = new table;  // never destroyed: fibers may finish during exit
  return *t;
}

}  // namespace

bool stack_watermark_from_environment() {
  const char* value = std::getenv("GORO_STACK_WATERMARK");
  if (value == nullptr || *value == '\0' || std::strcmp(value, "0") == 0) return false;
  if (std::strcmp(value, "1") == 0) return true;
  throw std::invalid_argument(std::string("goro::runtime: GORO_STACK_WATERMARK=\"") + value +
                              "\" is neither 1 nor 0");
}

void paint_stack(const stack_region& stack) noexcept {
  auto* word = reinterpret_cast<std::uint64_t*>(stack.low);
  const std::size_t words = stack.size / sizeof(std::uint64_t);
  for (std::size_t i = 0; i < words; ++i) word[i] = paint;
}

std::size_t stack_used(const stack_region& stack) noexcept {
#ifdef GORO_ASAN
  // The finished fiber never unwound its last frames: their redzones are still poisoned.
  __asan_unpoison_memory_region(stack.low, stack.size);
#endif
  const auto* word = reinterpret_cast<const std::uint64_t*>(stack.low);
  const std::size_t words = stack.size / sizeof(std::uint64_t);
  std::size_t i = 0;
  while (i < words && word[i] == paint) ++i;
  return (words - i) * sizeof(std::uint64_t);
}

void record_stack_use(const spawn_site& site, std::size_t stack_size, std::size_t used) noexcept {
  table& t = the_table();
  const site_key key{site.file_name(), site.function_name(), site.line()};
  lock_guard lock(t.mu);
  try {
    auto [at, fresh] = t.sites.try_emplace(
        key, stack_use_entry{site.file_name(), site.function_name(), site.line(), 0, 0, 0});
    (void)fresh;
    stack_use_entry& e = at->second;
    ++e.fibers;
    if (used >= e.max_bytes) {
      e.max_bytes = used;
      e.stack_size = stack_size;
    }
  } catch (const std::bad_alloc&) {
    // A diagnostic: losing one measurement is better than failing a fiber's exit.
  }
}

std::vector<stack_use_entry> stack_use_by_site() {
  table& t = the_table();
  std::vector<stack_use_entry> out;
  {
    lock_guard lock(t.mu);
    for (const auto& entry : t.sites) out.push_back(entry.second);
  }
  std::sort(out.begin(), out.end(), [](const stack_use_entry& a, const stack_use_entry& b) {
    return a.max_bytes > b.max_bytes;
  });
  return out;
}

}  // namespace goro::detail
