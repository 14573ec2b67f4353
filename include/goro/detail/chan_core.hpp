// SPDX-License-Identifier: Apache-2.0
// The type-erased channel as goro::chan<T> sees it: how elements move (elem_ops), and the
// operations a handle calls, each compiled once in src/chan/chan_core.cpp. The channel itself
// (its layout, its lock, its queues) is src/chan/chan_core.hpp: no handle touches it inline,
// since every operation takes the channel's lock, out of line anyway. The protocol, its
// invariants and the designs rejected are in docs/channels.md.
#pragma once

#include <cstddef>
#include <cstdint>
#include <new>
#include <type_traits>
#include <utility>

#include "goro/detail/deadline.hpp"

namespace goro::detail {

// How a channel moves, and destroys, values of its element type.
struct elem_ops {
  std::size_t size;
  std::size_t align;
  void (*move_construct)(void* dst, void* src) noexcept;  // leaves *src moved-from
  void (*destroy)(void* p) noexcept;
  // Trivially copyable and destructible: moved by copying its bytes, never destroyed. Spares
  // the two indirect calls per buffered item that dominate a channel of ints otherwise.
  bool trivial;
};

// Ends the program in goro's fatal format, naming the exception being handled: a channel
// element's move constructor threw inside the channel, where the operation can be neither
// finished nor undone (chan<T> says where). Call only from a catch handler.
[[noreturn]] void element_move_threw() noexcept;

template <class T>
void move_element(void* dst, void* src) noexcept {
  if constexpr (std::is_nothrow_move_constructible_v<T>) {
    ::new (dst) T(std::move(*static_cast<T*>(src)));
  } else {
    try {
      ::new (dst) T(std::move(*static_cast<T*>(src)));
    } catch (...) {
      element_move_threw();
    }
  }
}

template <class T>
inline constexpr elem_ops elem_ops_for{
    sizeof(T), alignof(T), move_element<T>, [](void* p) noexcept { static_cast<T*>(p)->~T(); },
    std::is_trivially_copyable_v<T>&& std::is_trivially_destructible_v<T>};

enum class chan_result { ok, closed, would_block, timed_out, cancelled };

// The channel: reference-counted, shared by its handles (src/chan/chan_core.hpp).
class chan_core;

// At least sizeof(chan_core) (src/chan/chan_core.cpp checks it), so that max_chan_capacity can
// be a constant expression here.
inline constexpr std::size_t chan_core_size_bound = 1024;

// The largest capacity for elements of elem_size bytes: the buffer and the channel itself then
// stay within PTRDIFF_MAX bytes, the most one object may span (Go's makechan checks its buffer
// plus header against maxAlloc the same way). chan<T> throws past it.
constexpr std::size_t max_chan_capacity(std::size_t elem_size) noexcept {
  return (static_cast<std::size_t>(PTRDIFF_MAX) - chan_core_size_bound) / elem_size;
}

// A new channel with one reference. REQUIRES: capacity <= max_chan_capacity(ops.size) (chan<T>
// checks it before calling). Throws std::bad_alloc.
chan_core* make_chan(std::size_t capacity, const elem_ops& ops);
// Adds a reference (a handle copied from a live one).
void chan_retain(chan_core* c) noexcept;
// Drops a reference; the last one frees the channel and the values still buffered.
void chan_release(chan_core* c) noexcept;

// Sends *value (moved from only on ok), blocking as long as it takes: ok or closed.
chan_result chan_send(chan_core* c, void* value);
// Receives into the raw storage `out` (constructed only on ok), blocking: ok or closed.
chan_result chan_recv(chan_core* c, void* out);
// As send and recv, but blocking only within `limit`, or not at all if non_blocking (a full or
// empty channel then gives would_block).
chan_result chan_send(chan_core* c, void* value, const wait_limit& limit, bool non_blocking);
chan_result chan_recv(chan_core* c, void* out, const wait_limit& limit, bool non_blocking);
// Throws closed_channel_error if already closed.
void chan_close(chan_core* c);
// Values buffered now: a snapshot, like Go's len.
std::size_t chan_size(const chan_core* c) noexcept;
std::size_t chan_capacity(const chan_core* c) noexcept;

}  // namespace goro::detail
