// SPDX-License-Identifier: Apache-2.0
// Layer: stack. May include: stack, time, platform.
// Fiber stacks: carved from large lazily-committed mappings (slabs), recycled through a per-worker
// cache and a shared free list, so spawning a fiber never maps memory in steady state. The guard
// page budget that reconciles overflow detection with a million live fibers is described in
// docs/scheduler.md, "Stacks"; compact stacks (smaller than a page, packed several to a page,
// each above a canary line instead of a guard page) in its part "Compact stacks".
//
// Invariants:
//   - A stack_region is owned by exactly one of: a running or parked fiber, one worker's
//     stack_cache, or the pool's free list.
//   - Slabs are unmapped only when the pool is destroyed, after every fiber has finished.
//   - A compact stack's canary is armed every time acquire() hands the stack out.
#pragma once

#include <cstddef>
#include <functional>
#include <vector>

#include "goro/detail/thread_safety.hpp"
#include "platform/sanitizers.hpp"
#include "platform/thread_mutex.hpp"
#include "stack/stack_canary.hpp"

namespace goro::detail {

// A usable stack [low, low + size). If `guarded`, the page below `low` faults on access. If
// `compact`, the stack shares its pages with its neighbours and the stack_canary_bytes below
// `low` hold a canary (stack_canary.hpp) instead of a guard page.
struct stack_region {
  std::byte* low = nullptr;
  std::size_t size = 0;
  bool guarded = false;
  bool compact = false;
};

// A worker's private stack cache: no locking. Its capacity is reserved up front, so that
// returning a stack to it never allocates.
struct stack_cache {
  static constexpr std::size_t high_water = 128;  // a worker keeps at most this many
  stack_cache() { stacks.reserve(high_water); }
  std::vector<stack_region> stacks;
};

class stack_pool {
 public:
  // Stacks of `stack_size` bytes rounded up to whole pages, above guard pages while the budget
  // lasts; or if `compact`, compact stacks of `stack_size` rounded up to a multiple of
  // compact_stack_granule, above canaries. resolve() in src/api/runtime.cpp checks the sizes.
  stack_pool(std::size_t stack_size, bool compact);
  ~stack_pool();
  stack_pool(const stack_pool&) = delete;
  stack_pool& operator=(const stack_pool&) = delete;

  // Compact stack sizes are multiples of this. Because it is a multiple of two cache lines
  // and the canary is one, compact stacks lie an odd number of cache lines apart, so their
  // tops (where the fiber records go) fall on every cache-line offset within a page.
  static constexpr std::size_t compact_stack_granule = 256;

  std::size_t stack_size() const noexcept { return stack_size_; }

  // The largest stack_size a (non-compact) pool takes: one whose slab, its stacks rounded up to
  // whole pages with a guard page each, spans at most PTRDIFF_MAX bytes (the most one mapping
  // can). Above it the rounding and the slab's length would wrap around size_t, to a stack of
  // 0 bytes or a slab too short for its stacks; resolve() in src/api/runtime.cpp refuses it.
  static std::size_t max_stack_size() noexcept;

  // A stack for a new fiber; `cache` may be null (spawn from a plain thread).
  // Throws std::bad_alloc when the address space is exhausted. The cache's hit is inline, the
  // rest out of line: every spawn passes here, and the shared path's registers and lock made
  // the whole a third of a spawn's own instructions (callgrind, the spawn workload).
  stack_region acquire(stack_cache* cache) {
    stack_region s;
    if (cache != nullptr && !cache->stacks.empty()) {
      s = cache->stacks.back();
      cache->stacks.pop_back();
    } else {
      s = take_shared(cache);
    }
    // Armed here rather than when the slab is carved, so that a slab's pages are still
    // committed only as its stacks come into use; and every time, as the last fiber may have
    // overrun it.
    if (s.compact) arm_stack_canary(s.low);
    return s;
  }

  // Returns a finished fiber's stack.
  void release(stack_cache* cache, stack_region stack) noexcept {
#ifdef GORO_ASAN
    // The finished fiber never unwound its last frames; clear their stale poisoning.
    __asan_unpoison_memory_region(stack.low, stack.size);
#endif
    if (cache != nullptr && cache->stacks.size() + 1 < stack_cache::high_water) {
      cache->stacks.push_back(stack);  // within the reserved capacity
      return;
    }
    release_shared(cache, stack);
  }

  static std::size_t page_size() noexcept;

  // Calls visit(stack) for every stack neither in the free list nor in one of `caches`: the
  // stacks of fibers not yet finished. REQUIRES: no fiber is running.
  void for_each_in_use(const std::vector<const stack_cache*>& caches,
                       const std::function<void(const stack_region&)>& visit);

  // Calls visit(stack) for every stack this pool carved, in use or not (a fiber's record lies at
  // its top, or what is left of the last one's, or zeros). Safe while fibers run; holds the
  // pool's lock throughout, so `visit` must not acquire or release a stack.
  void for_each_stack(const std::function<void(const stack_region&)>& visit);

  // Calls visit(base, length) for every slab this pool mapped. Safe while fibers run.
  void for_each_slab(const std::function<void(void*, std::size_t)>& visit);

 private:
  friend struct debugger_layout;  // src/sched/census.cpp: the offsets the gdb script reads
  // acquire() and release() past the cache: from (to) the free list, or a new slab.
  [[gnu::noinline]] stack_region take_shared(stack_cache* cache);
  [[gnu::noinline]] void release_shared(stack_cache* cache, stack_region stack) noexcept;
  void map_slab(std::vector<stack_region>& into) GORO_REQUIRES(mu_);
  std::byte* stack_low(std::byte* slab_base, std::size_t i) const noexcept;

  struct slab {
    std::byte* base;
    std::size_t length;
  };

  // How a slab is cut: `per_slab` slots of `stride` bytes, each holding `below` bytes (a guard
  // page, or a compact stack's canary) and then the stack.
  struct slab_layout {
    std::size_t stride;
    std::size_t below;
    std::size_t per_slab;
  };
  static slab_layout layout_for(bool compact, std::size_t stack_size) noexcept;

  const bool compact_;
  const std::size_t stack_size_;
  const slab_layout layout_;
  thread_mutex mu_;
  std::vector<stack_region> free_ GORO_GUARDED_BY(mu_);
  std::vector<slab> slabs_ GORO_GUARDED_BY(mu_);
  std::size_t guarded_ GORO_GUARDED_BY(mu_) = 0;  // guarded stacks this pool mapped
};

}  // namespace goro::detail
