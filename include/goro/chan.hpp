// SPDX-License-Identifier: Apache-2.0
// goro::chan<T>: Go's typed channel, buffered or unbuffered, usable from fibers and plain
// threads alike. Semantics, memory ordering and the waiting protocol: docs/channels.md.
#pragma once

#include <chrono>
#include <concepts>
#include <cstddef>
#include <iterator>
#include <new>
#include <optional>
#include <stdexcept>
#include <stop_token>
#include <type_traits>
#include <utility>

#include "goro/detail/chan_core.hpp"
#include "goro/detail/deadline.hpp"
#include "goro/errors.hpp"

namespace goro {

// Why a non-blocking, timed or cancellable channel operation did not complete.
enum class chan_status {
  ok,         // the value was sent or received
  closed,     // the channel is closed (and, for a receive, drained)
  full,       // try_send: no receiver waiting and no room in the buffer
  empty,      // try_recv: no sender waiting and nothing buffered
  timeout,    // the deadline passed first
  cancelled,  // the stop token was triggered first
};

// What try_recv, recv_for, recv_until and recv(stop_token) give back.
template <class T>
struct recv_result {
  std::optional<T> value;  // engaged exactly when status == chan_status::ok
  chan_status status;

  explicit operator bool() const noexcept { return status == chan_status::ok; }
};

template <class T>
class chan;

namespace detail {

// Raw storage a receive constructs into.
template <class T>
class recv_slot {
 public:
  // Empty until a receive fills it; copying or moving one (a select case) copies no value.
  recv_slot() noexcept {}
  recv_slot(const recv_slot&) noexcept {}
  recv_slot& operator=(const recv_slot&) = delete;
  void* storage() noexcept { return buf_; }
  // Moves the received value out; REQUIRES: a receive constructed it.
  std::optional<T> take() noexcept(std::is_nothrow_move_constructible_v<T>) {
    T* v = std::launder(reinterpret_cast<T*>(buf_));
    std::optional<T> out(std::move(*v));
    v->~T();
    return out;
  }

 private:
  alignas(T) std::byte buf_[sizeof(T)];
};

// send/recv on a nil channel: block until the limit, forever without one.
chan_result wait_on_nil(const wait_limit& limit, bool non_blocking);

inline chan_status to_status(chan_result r, chan_status would_block) noexcept {
  switch (r) {
    case chan_result::ok: return chan_status::ok;
    case chan_result::closed: return chan_status::closed;
    case chan_result::would_block: return would_block;
    case chan_result::timed_out: return chan_status::timeout;
    case chan_result::cancelled: return chan_status::cancelled;
  }
  return chan_status::closed;
}

template <class T>
chan_core* core_of(const chan<T>& ch) noexcept;

}  // namespace detail

// A handle to a channel of T. Copies share one channel, like Go channel values; the channel
// lives while any handle, or any operation in flight, refers to it. A default-constructed chan
// is unbuffered; chan(nullptr) is nil: sends and receives on it block forever.
//
// T may be move-only and need not be default-constructible. Values are moved in and out; a
// T whose move constructor throws during a hand-off terminates the program.
//
// Operations are const: they act on the shared channel, not on the handle (as a Go channel
// value is used by copy).
//
// Memory ordering: a send happens-before the receive that takes its value completes, and a
// close happens-before a receive that observes it (std::nullopt / chan_status::closed).
template <class T>
class chan {
 public:
  using value_type = T;

  // An unbuffered channel: a send waits for a receiver.
  chan() : core_(new detail::chan_core(0, detail::elem_ops_for<T>)) {}
  // A channel buffering exactly `capacity` values; 0 is unbuffered. Throws
  // std::invalid_argument if capacity is negative (Go's "makechan: size out of range").
  template <std::integral I>
  explicit chan(I capacity) : core_(new detail::chan_core(checked_capacity(capacity), detail::elem_ops_for<T>)) {}
  // The nil channel.
  chan(std::nullptr_t) noexcept {}

  chan(const chan& other) noexcept : core_(other.core_) {
    if (core_ != nullptr) core_->retain();
  }
  chan(chan&& other) noexcept : core_(std::exchange(other.core_, nullptr)) {}
  chan& operator=(chan other) noexcept {
    std::swap(core_, other.core_);
    return *this;
  }
  ~chan() {
    if (core_ != nullptr) core_->release();
  }

  // Blocks until a receiver takes v, or v is buffered. Throws closed_channel_error if the
  // channel is, or while blocked becomes, closed; v is then not delivered.
  void send(T v) const {
    check_send(core_ != nullptr ? core_->send(&v) : detail::wait_on_nil({}, false));
  }

  // As send, but gives up when `stop` is requested: returns chan_status::ok or ::cancelled.
  chan_status send(T v, std::stop_token stop) const {
    return check_send(send_impl(v, detail::wait_limit{detail::clock::time_point::max(), std::move(stop)}, false));
  }

  // Blocks until a value arrives; std::nullopt once the channel is closed and drained.
  std::optional<T> recv() const {
    detail::recv_slot<T> slot;
    const detail::chan_result r =
        core_ != nullptr ? core_->recv(slot.storage()) : detail::wait_on_nil({}, false);
    if (r == detail::chan_result::ok) return slot.take();
    return std::nullopt;
  }

  // As recv, but gives up when `stop` is requested (status ok, closed or cancelled).
  recv_result<T> recv(std::stop_token stop) const { return recv_with(detail::wait_limit{detail::clock::time_point::max(), std::move(stop)}, false); }

  // Never blocks. ok, full or closed (unlike send, a closed channel is reported, not thrown).
  // The value is moved from only on ok.
  chan_status try_send(T&& v) const { return detail::to_status(send_impl(v, {}, true), chan_status::full); }
  chan_status try_send(const T& v) const requires std::copy_constructible<T> {
    T copy(v);
    return try_send(std::move(copy));
  }

  // Never blocks. ok (value engaged), empty or closed.
  recv_result<T> try_recv() const { return recv_with({}, true); }

  // As send, but gives up at the deadline: ok or timeout; throws closed_channel_error as send.
  // The value is moved from only on ok.
  chan_status send_until(T&& v, std::chrono::steady_clock::time_point deadline) const {
    return check_send(send_impl(v, detail::wait_limit{deadline, std::stop_token{}}, false));
  }
  template <class Rep, class Period>
  chan_status send_for(T&& v, std::chrono::duration<Rep, Period> timeout) const {
    return send_until(std::move(v), detail::deadline_after(timeout));
  }
  chan_status send_until(const T& v, std::chrono::steady_clock::time_point deadline) const
    requires std::copy_constructible<T> {
    T copy(v);
    return send_until(std::move(copy), deadline);
  }
  template <class Rep, class Period>
  chan_status send_for(const T& v, std::chrono::duration<Rep, Period> timeout) const
    requires std::copy_constructible<T> {
    return send_until(v, detail::deadline_after(timeout));
  }

  // As recv, but gives up at the deadline: ok, closed or timeout.
  recv_result<T> recv_until(std::chrono::steady_clock::time_point deadline) const {
    return recv_with(detail::wait_limit{deadline, std::stop_token{}}, false);
  }
  template <class Rep, class Period>
  recv_result<T> recv_for(std::chrono::duration<Rep, Period> timeout) const {
    return recv_until(detail::deadline_after(timeout));
  }

  // Closes the channel: blocked receivers get std::nullopt once the buffer is drained, blocked
  // senders throw. Throws closed_channel_error if already closed, or if nil.
  void close() const {
    if (core_ == nullptr) throw closed_channel_error("goro::chan::close: close of nil channel");
    core_->close();
  }

  // Values buffered now (Go's len); always 0 for unbuffered and nil channels.
  std::size_t size() const noexcept { return core_ != nullptr ? core_->size() : 0; }
  // The buffer's capacity (Go's cap); 0 for unbuffered and nil channels.
  std::size_t capacity() const noexcept { return core_ != nullptr ? core_->capacity() : 0; }

  // Whether this is a non-nil channel.
  explicit operator bool() const noexcept { return core_ != nullptr; }
  // Handles are equal when they refer to the same channel (or are both nil).
  friend bool operator==(const chan& a, const chan& b) noexcept { return a.core_ == b.core_; }

  // Range-for support: receives until the channel is closed and drained.
  class iterator {
   public:
    using value_type = T;
    using difference_type = std::ptrdiff_t;
    iterator() = default;
    explicit iterator(const chan* ch) : ch_(ch), current_(ch->recv()) {}
    T& operator*() noexcept { return *current_; }
    iterator& operator++() {
      current_ = ch_->recv();
      return *this;
    }
    void operator++(int) { ++*this; }
    friend bool operator==(const iterator& it, std::default_sentinel_t) noexcept {
      return !it.current_.has_value();
    }

   private:
    const chan* ch_ = nullptr;
    std::optional<T> current_;
  };
  iterator begin() const { return iterator(this); }
  std::default_sentinel_t end() const noexcept { return {}; }

 private:
  friend detail::chan_core* detail::core_of<T>(const chan<T>&) noexcept;

  template <std::integral I>
  static std::size_t checked_capacity(I capacity) {
    if constexpr (std::is_signed_v<I>) {
      if (capacity < 0) throw std::invalid_argument("goro::chan: negative capacity");
    }
    return static_cast<std::size_t>(capacity);
  }

  detail::chan_result send_impl(T& v, const detail::wait_limit& limit, bool non_blocking) const {
    if (core_ == nullptr) return detail::wait_on_nil(limit, non_blocking);
    return core_->send(&v, limit, non_blocking);
  }
  detail::chan_result recv_impl(detail::recv_slot<T>& slot, const detail::wait_limit& limit,
                                bool non_blocking) const {
    if (core_ == nullptr) return detail::wait_on_nil(limit, non_blocking);
    return core_->recv(slot.storage(), limit, non_blocking);
  }
  recv_result<T> recv_with(const detail::wait_limit& limit, bool non_blocking) const {
    detail::recv_slot<T> slot;
    const detail::chan_result r = recv_impl(slot, limit, non_blocking);
    if (r == detail::chan_result::ok) return {slot.take(), chan_status::ok};
    return {std::nullopt, detail::to_status(r, chan_status::empty)};
  }
  static chan_status check_send(detail::chan_result r) {
    if (r == detail::chan_result::closed) {
      throw closed_channel_error("goro::chan::send: send on closed channel");
    }
    return detail::to_status(r, chan_status::full);
  }

  detail::chan_core* core_ = nullptr;
};

template <class T>
detail::chan_core* detail::core_of(const chan<T>& ch) noexcept {
  return ch.core_;
}

}  // namespace goro
