// SPDX-License-Identifier: Apache-2.0
// Layer: chan. May include: chan, sync, park, sched, stack, time, platform.
// element_mover: how a channel moves its type-erased elements, decided once from elem_ops.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "goro/detail/chan_core.hpp"

namespace goro::detail {

// Moves a channel's elements by the cheapest means their type allows, chosen when the channel
// is made: a buffered item then costs one test of a field kept beside the buffer, instead of
// two loads through elem_ops and two tests (the locked buffer and the ring both keep one).
class element_mover {
 public:
  explicit element_mover(const elem_ops& ops) noexcept
      : ops_(ops),
        size_(ops.size),
        how_(!ops.trivial                        ? how::construct
             : ops.size == sizeof(std::uint64_t) ? how::word
                                                 : how::bytes) {}

  const elem_ops& ops() const noexcept { return ops_; }
  std::size_t size() const noexcept { return size_; }

  // Move-constructs the element at dst from src, and destroys src's (moved-from) element.
  void relocate(void* dst, void* src) const noexcept {
    if (how_ != how::construct) {
      copy_bytes(dst, src);
      return;
    }
    ops_.move_construct(dst, src);
    ops_.destroy(src);
  }
  // As relocate, but leaves src alive (moved-from): the sender's own variable.
  void move_in(void* dst, void* src) const noexcept {
    if (how_ != how::construct) {
      copy_bytes(dst, src);
    } else {
      ops_.move_construct(dst, src);
    }
  }

 private:
  enum class how : std::uint8_t {
    word,       // trivial, 8 bytes (long, double, pointers): one load and one store
    bytes,      // trivial: memcpy of size_ bytes
    construct,  // ops_.move_construct, then ops_.destroy of a source that is the channel's
  };
  void copy_bytes(void* dst, const void* src) const noexcept {
    if (how_ == how::word) {
      std::memcpy(dst, src, sizeof(std::uint64_t));
    } else {
      std::memcpy(dst, src, size_);
    }
  }

  const elem_ops& ops_;
  const std::size_t size_;
  const how how_;
};

}  // namespace goro::detail
