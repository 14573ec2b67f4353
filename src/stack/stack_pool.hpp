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

// A worker's private stack cache: no locking.
struct stack_cache {
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

  // A stack for a new fiber; `cache` may be null (spawn from a plain thread).
  // Throws std::bad_alloc when the address space is exhausted.
  stack_region acquire(stack_cache* cache);

  // Returns a finished fiber's stack.
  void release(stack_cache* cache, stack_region stack) noexcept;

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
  // acquire() without arming the canary: from the cache, else from the free list or a new slab.
  stack_region take(stack_cache* cache);
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
