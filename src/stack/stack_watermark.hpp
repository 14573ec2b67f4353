// SPDX-License-Identifier: Apache-2.0
// Layer: stack. May include: stack, time, platform.
// The high-water mark of stack use per spawn site, on request (options::stack_watermark,
// GORO_STACK_WATERMARK=1; docs/diagnostics.md, "Stack use"): a stack is painted with a known
// word when its fiber is made, and when the fiber finishes the lowest word no longer holding it
// says how deep the fiber went. The deepest use and the count of fibers are kept per site in a
// table under one lock. Nothing here runs unless the option is on: the spawn and exit paths
// test one flag of their scheduler.
//
// Invariants:
//   - A painted stack holds the paint in every word its fiber has not written; the fiber
//     record, its task and its frames overwrite it from the top down.
//   - The table only grows; entries are never removed.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "goro/detail/spawn_site.hpp"
#include "stack/stack_pool.hpp"

namespace goro::detail {

// Whether GORO_STACK_WATERMARK asks for the watermark: "1" yes, unset, empty or "0" no; any
// other value throws std::invalid_argument.
bool stack_watermark_from_environment();

// Fills [stack.low, stack.low + stack.size) with the paint. Before the fiber record is written.
void paint_stack(const stack_region& stack) noexcept;

// How many bytes from the top of a painted stack its fiber has written (the paint is looked for
// from the bottom up). REQUIRES: no fiber runs on it.
std::size_t stack_used(const stack_region& stack) noexcept;

// Records that a fiber spawned at `site`, on stacks of `stack_size` bytes, used `used` of them.
void record_stack_use(const spawn_site& site, std::size_t stack_size, std::size_t used) noexcept;

struct stack_use_entry {
  const char* file;
  const char* function;
  unsigned line;
  std::size_t max_bytes;   // the most any of its fibers used
  std::size_t stack_size;  // the stack size of the fiber that used the most
  std::uint64_t fibers;    // its finished fibers measured
};

// Every site recorded so far, deepest use first.
std::vector<stack_use_entry> stack_use_by_site();

}  // namespace goro::detail
