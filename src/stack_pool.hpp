// SPDX-License-Identifier: Apache-2.0
// Fiber stacks: carved from large lazily-committed mappings (slabs), recycled through a per-worker
// cache and a shared free list, so spawning a fiber never maps memory in steady state. The guard
// page budget that reconciles overflow detection with a million live fibers is described in
// docs/scheduler.md, "Stacks".
//
// Invariants:
//   - A stack_region is owned by exactly one of: a running or parked fiber, one worker's
//     stack_cache, or the pool's free list.
//   - Slabs are unmapped only when the pool is destroyed, after every fiber has finished.
#pragma once

#include <cstddef>
#include <functional>
#include <mutex>
#include <vector>

namespace goro::detail {

// A usable stack [low, low + size). If `guarded`, the page below `low` faults on access.
struct stack_region {
  std::byte* low = nullptr;
  std::size_t size = 0;
  bool guarded = false;
};

// A worker's private stack cache: no locking.
struct stack_cache {
  std::vector<stack_region> stacks;
};

class stack_pool {
 public:
  // `stack_size` is rounded up to whole pages.
  explicit stack_pool(std::size_t stack_size);
  ~stack_pool();
  stack_pool(const stack_pool&) = delete;
  stack_pool& operator=(const stack_pool&) = delete;

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

 private:
  void map_slab(std::vector<stack_region>& into);  // REQUIRES: mu_ held.

  struct slab {
    std::byte* base;
    std::size_t length;
  };

  const std::size_t stack_size_;
  std::mutex mu_;
  std::vector<stack_region> free_;  // GUARDED_BY(mu_)
  std::vector<slab> slabs_;         // GUARDED_BY(mu_)
  std::size_t guarded_ = 0;         // GUARDED_BY(mu_): guarded stacks this pool mapped
};

}  // namespace goro::detail
