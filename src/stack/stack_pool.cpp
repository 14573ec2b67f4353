// SPDX-License-Identifier: Apache-2.0
// Layer: stack. May include: stack, time, platform.
// Stack slabs and their recycling; the design, the guard-page budget and compact stacks are in
// docs/scheduler.md, "Stacks".
#include "stack/stack_pool.hpp"

#include <sys/mman.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <fstream>
#include <functional>
#include <new>
#include <unordered_set>

#include "platform/sanitizers.hpp"

namespace goro::detail {
namespace {

constexpr std::size_t stacks_per_slab = 32;
// Compact stacks are a few KiB, so a slab holds more of them: 128 at 2 KiB is 264 KiB.
constexpr std::size_t compact_stacks_per_slab = 128;
constexpr std::size_t cache_batch = 32;  // moved to or from the free list at once

// Every guard page splits a mapping in two, and Linux caps mappings per process
// (vm.max_map_count, 65530 by default). Guarded stacks take at most a quarter of that cap;
// stacks beyond it are unguarded, and overflow is caught at the fiber's next switch instead.
std::size_t guarded_stack_budget() {
  std::size_t max_maps = 65530;
  std::ifstream in("/proc/sys/vm/max_map_count");
  in >> max_maps;
  return max_maps / 4;
}

// A budget, not a synchronisation point: relaxed operations are enough.
std::atomic<std::size_t> guarded_stacks{0};

std::size_t round_up(std::size_t n, std::size_t multiple) noexcept {
  return (n + multiple - 1) / multiple * multiple;
}

}  // namespace

std::size_t stack_pool::page_size() noexcept {
  static const std::size_t size = static_cast<std::size_t>(sysconf(_SC_PAGESIZE));
  return size;
}

std::size_t stack_pool::max_stack_size() noexcept {
  const std::size_t page = page_size();
  const auto most = static_cast<std::size_t>(PTRDIFF_MAX);
  // A slab is stacks_per_slab strides of stack + guard page, all whole pages. Rounded down to
  // a page, so that rounding a stack_size up to whole pages stays within it.
  return (most / stacks_per_slab - page) / page * page;
}

stack_pool::slab_layout stack_pool::layout_for(bool compact, std::size_t stack_size) noexcept {
  if (compact) {
    return {stack_size + stack_canary_bytes, stack_canary_bytes, compact_stacks_per_slab};
  }
  return {stack_size + page_size(), page_size(), stacks_per_slab};
}

stack_pool::stack_pool(std::size_t stack_size, bool compact)
    : compact_(compact),
      stack_size_(round_up(stack_size, compact_ ? compact_stack_granule : page_size())),
      layout_(layout_for(compact_, stack_size_)) {}

stack_pool::~stack_pool() {
  for (const slab& s : slabs_) munmap(s.base, s.length);
  guarded_stacks.fetch_sub(guarded_, std::memory_order_relaxed);
}

std::byte* stack_pool::stack_low(std::byte* slab_base, std::size_t i) const noexcept {
  return slab_base + i * layout_.stride + layout_.below;
}

void stack_pool::map_slab(std::vector<stack_region>& into) {
  const std::size_t page = page_size();
  const std::size_t length = round_up(layout_.stride * layout_.per_slab, page);
  void* mem = mmap(nullptr, length, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (mem == MAP_FAILED) throw std::bad_alloc();
  auto* base = static_cast<std::byte*>(mem);
  slabs_.push_back({base, length});
  if (compact_) {
    // Packed back to back, no guard pages: each stack's canary lies between it and the top
    // of the stack below.
    for (std::size_t i = 0; i < layout_.per_slab; ++i) {
      into.push_back({stack_low(base, i), stack_size_, false, true});
    }
    return;
  }
  static const std::size_t budget = guarded_stack_budget();
  const bool guard =
      guarded_stacks.fetch_add(stacks_per_slab, std::memory_order_relaxed) + stacks_per_slab <=
      budget;
  if (guard) {
    guarded_ += stacks_per_slab;
  } else {
    guarded_stacks.fetch_sub(stacks_per_slab, std::memory_order_relaxed);
  }
  for (std::size_t i = 0; i < layout_.per_slab; ++i) {
    std::byte* low = stack_low(base, i);
    const bool guarded = guard && mprotect(low - page, page, PROT_NONE) == 0;
    into.push_back({low, stack_size_, guarded});
  }
}

void stack_pool::for_each_in_use(const std::vector<const stack_cache*>& caches,
                                 const std::function<void(const stack_region&)>& visit) {
  lock_guard lock(mu_);
  std::unordered_set<const std::byte*> idle;
  for (const stack_region& s : free_) idle.insert(s.low);
  for (const stack_cache* c : caches) {
    for (const stack_region& s : c->stacks) idle.insert(s.low);
  }
  for (const slab& s : slabs_) {
    for (std::size_t i = 0; i < layout_.per_slab; ++i) {
      std::byte* low = stack_low(s.base, i);
      if (idle.count(low) == 0) visit({low, stack_size_, false, compact_});
    }
  }
}

void stack_pool::for_each_stack(const std::function<void(const stack_region&)>& visit) {
  lock_guard lock(mu_);
  for (const slab& s : slabs_) {
    for (std::size_t i = 0; i < layout_.per_slab; ++i) {
      visit({stack_low(s.base, i), stack_size_, false, compact_});
    }
  }
}

void stack_pool::for_each_slab(const std::function<void(void*, std::size_t)>& visit) {
  lock_guard lock(mu_);
  for (const slab& s : slabs_) visit(s.base, s.length);
}

stack_region stack_pool::take_shared(stack_cache* cache) {
  lock_guard lock(mu_);
  std::vector<stack_region> local;
  std::vector<stack_region>& into = cache != nullptr ? cache->stacks : local;
  for (std::size_t i = 0; i < cache_batch && !free_.empty(); ++i) {
    into.push_back(free_.back());
    free_.pop_back();
  }
  if (into.empty()) map_slab(into);
  stack_region s = into.back();
  into.pop_back();
  for (const stack_region& extra : local) free_.push_back(extra);
  return s;
}

void stack_pool::release_shared(stack_cache* cache, stack_region stack) noexcept {
  if (cache != nullptr) {
    cache->stacks.push_back(stack);  // the last reserved place: size() is high_water now
    lock_guard lock(mu_);
    for (std::size_t i = 0; i < cache_batch; ++i) {
      free_.push_back(cache->stacks.back());
      cache->stacks.pop_back();
    }
    return;
  }
  lock_guard lock(mu_);
  free_.push_back(stack);
}

}  // namespace goro::detail
