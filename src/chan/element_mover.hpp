// SPDX-License-Identifier: Apache-2.0
// Layer: chan. May include: chan, sync, park, sched, stack, time, platform.
// element_mover: how a channel moves its type-erased elements, decided once from elem_ops.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "goro/detail/chan_core.hpp"

namespace goro::detail {

// Moves a channel's elements by the cheapest means their type allows, with what decides it
// (the size, and whether the type is trivial) kept beside the buffer instead of read through
// elem_ops (the locked buffer and the ring both keep one). An enum of three ways to move,
// tested once instead of twice, measured slower in the ring at two workers (mpmc 37-41 against
// 49-57 M/s, in two builds of different code alignment); the ring copies inside its window
// between a CAS and a stamp's store, where partners wait.
class element_mover {
 public:
  explicit element_mover(const elem_ops& ops) noexcept
      : ops_(ops), size_(ops.size), trivial_(ops.trivial) {}

  const elem_ops& ops() const noexcept { return ops_; }
  std::size_t size() const noexcept { return size_; }

  // Move-constructs the element at dst from src, and destroys src's (moved-from) element.
  void relocate(void* dst, void* src) const noexcept {
    if (trivial_) {
      copy_bytes(dst, src);
      return;
    }
    ops_.move_construct(dst, src);
    ops_.destroy(src);
  }
  // As relocate, but leaves src alive (moved-from): the sender's own variable.
  void move_in(void* dst, void* src) const noexcept {
    if (trivial_) {
      copy_bytes(dst, src);
    } else {
      ops_.move_construct(dst, src);
    }
  }

 private:
  void copy_bytes(void* dst, const void* src) const noexcept {
    if (size_ == sizeof(std::uint64_t)) {  // long, double, pointers: one load and store
      std::memcpy(dst, src, sizeof(std::uint64_t));
    } else {
      std::memcpy(dst, src, size_);
    }
  }

  const elem_ops& ops_;
  const std::size_t size_;
  // Trivially copyable and destructible: moved by copying its bytes, never destroyed.
  const bool trivial_;
};

}  // namespace goro::detail
