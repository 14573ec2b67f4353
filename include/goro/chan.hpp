// SPDX-License-Identifier: Apache-2.0
/// @file
/// goro::chan<T>: Go's typed channel, buffered or unbuffered, usable from fibers and plain
/// threads alike. Semantics, memory ordering and the waiting protocol: docs/channels.md.
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

/// Why a non-blocking, timed or cancellable channel operation did not complete.
enum class chan_status {
  ok,         ///< the value was sent or received
  closed,     ///< the channel is closed (and, for a receive, drained)
  full,       ///< try_send: no receiver waiting and no room in the buffer
  empty,      ///< try_recv: no sender waiting and nothing buffered
  timeout,    ///< the deadline passed first
  cancelled,  ///< the stop token was triggered first
};

/// What try_recv, recv_for, recv_until and recv(stop_token) give back.
template <class T>
struct recv_result {
  std::optional<T> value;  ///< engaged exactly when status == chan_status::ok
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
  // The received value. REQUIRES: a receive constructed it, and nobody destroyed it since.
  T& value() noexcept { return *std::launder(reinterpret_cast<T*>(buf_)); }
  // Destroys the received value. REQUIRES: as value().
  void destroy() noexcept { value().~T(); }
  // Moves the received value out and destroys it. REQUIRES: as value(). If T's move
  // constructor throws, the value is destroyed all the same and the exception propagates: the
  // slot is empty after every call.
  std::optional<T> take() noexcept(std::is_nothrow_move_constructible_v<T>) {
    std::optional<T> out;
    take_into(out);
    return out;  // the slot is empty already: nothing is destroyed twice if this move throws
  }
  // As take, into an empty optional.
  void take_into(std::optional<T>& out) noexcept(std::is_nothrow_move_constructible_v<T>) {
    if constexpr (std::is_nothrow_move_constructible_v<T>) {
      out.emplace(std::move(value()));
    } else {
      try {
        out.emplace(std::move(value()));
      } catch (...) {
        destroy();
        throw;
      }
    }
    destroy();
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

/// A handle to a channel of T. Copies share one channel, like Go channel values; the channel
/// lives while any handle, or any operation in flight, refers to it. A default-constructed chan
/// is unbuffered; chan(nullptr) is nil: sends and receives on it block forever.
///
/// T may be move-only and need not be default-constructible. Values are moved in and out. A T
/// whose move constructor throws inside the channel (into or out of its buffer, or in a
/// hand-off: under the channel's lock, or inside the lock-free ring's publication of a value)
/// ends the program with goro's fatal error ("a channel element's move constructor threw
/// inside the channel: " and the exception's what()), and one that blocks there (a goro call
/// that parks) is not allowed, nor a destructor that does (it runs there on each moved-from
/// source); one that throws as a received value is moved out to the caller
/// destroys that value and propagates, the receive having happened (the value is consumed, and
/// the channel is as after any receive).
///
/// Operations are const: they act on the shared channel, not on the handle (as a Go channel
/// value is used by copy).
///
/// Memory ordering: a send happens-before the receive that takes its value completes, and a
/// close happens-before a receive that observes it (std::nullopt / chan_status::closed).
template <class T>
class chan {
 public:
  using value_type = T;

  /// An unbuffered channel: a send waits for a receiver.
  chan() : core_(new_core(0)) {}
  /// A channel buffering exactly `capacity` values; 0 is unbuffered. Checks before allocating
  /// or constructing anything (Go panics "makechan: size out of range" for both): throws
  /// std::invalid_argument if capacity is negative, and std::length_error if the buffer and the
  /// channel together could take more than PTRDIFF_MAX bytes
  /// (detail::max_chan_capacity(sizeof(T)); the product is never computed unchecked). A
  /// capacity within that limit that memory cannot hold throws std::bad_alloc.
  template <std::integral I>
  explicit chan(I capacity) : core_(new_core(checked_capacity(capacity))) {}
  /// The nil channel.
  chan(std::nullptr_t) noexcept {}

  chan(const chan& other) noexcept : core_(other.core_) {
    if (core_ != nullptr) detail::chan_retain(core_);
  }
  chan(chan&& other) noexcept : core_(std::exchange(other.core_, nullptr)) {}
  chan& operator=(chan other) noexcept {
    std::swap(core_, other.core_);
    return *this;
  }
  ~chan() {
    if (core_ != nullptr) detail::chan_release(core_);
  }

  /// @name Sending and receiving
  /// Every send has two forms. The T&& form moves from the caller's object only if the value is
  /// sent (ok): after any other outcome (full, timeout, cancelled, or closed, thrown or
  /// returned) the object is as it was. The const T& form sends a copy and never changes the
  /// caller's object. An argument of another type is converted to a temporary T first, which an
  /// unsent value then leaves with.
  ///@{

  /// Blocks until a receiver takes v, or v is buffered. Throws closed_channel_error if the
  /// channel is, or while blocked becomes, closed; v is then neither delivered nor moved from.
  void send(T&& v) const {
    check_send(core_ != nullptr ? detail::chan_send(core_, &v) : detail::wait_on_nil({}, false));
  }
  void send(const T& v) const requires std::copy_constructible<T> {
    T copy(v);
    send(std::move(copy));
  }

  /// As send, but gives up when `stop` is requested: returns chan_status::ok or
  /// chan_status::cancelled (v not moved from).
  chan_status send(T&& v, std::stop_token stop) const {
    return check_send(
        send_impl(v, detail::wait_limit{detail::clock::time_point::max(), std::move(stop)}, false));
  }
  chan_status send(const T& v, std::stop_token stop) const requires std::copy_constructible<T> {
    T copy(v);
    return send(std::move(copy), std::move(stop));
  }

  /// Blocks until a value arrives; std::nullopt once the channel is closed and drained.
  /// If T's move constructor throws as the value is moved out, the value is destroyed, the
  /// exception propagates, and the value counts as received.
  std::optional<T> recv() const {
    detail::recv_slot<T> slot;
    if (recv_blocking(slot) == detail::chan_result::ok) return slot.take();
    return std::nullopt;
  }

  /// As recv, but gives up when `stop` is requested (status ok, closed or cancelled). Every
  /// form of receive treats a throwing move constructor as recv() does.
  recv_result<T> recv(std::stop_token stop) const {
    return recv_with(detail::wait_limit{detail::clock::time_point::max(), std::move(stop)}, false);
  }

  /// Never blocks. ok, full or closed (unlike send, a closed channel is reported, not thrown).
  /// v is moved from only on ok.
  chan_status try_send(T&& v) const {
    return detail::to_status(send_impl(v, {}, true), chan_status::full);
  }
  chan_status try_send(const T& v) const requires std::copy_constructible<T> {
    T copy(v);
    return try_send(std::move(copy));
  }

  /// Never blocks. ok (value engaged), empty or closed.
  recv_result<T> try_recv() const { return recv_with({}, true); }

  /// As send, but gives up at the deadline: ok or timeout; throws closed_channel_error as send.
  /// v is moved from only on ok.
  chan_status send_until(T&& v, std::chrono::steady_clock::time_point deadline) const {
    return check_send(send_impl(v, detail::wait_limit{deadline, std::stop_token{}}, false));
  }
  template <class Rep, class Period>
  chan_status send_for(T&& v, std::chrono::duration<Rep, Period> timeout) const {
    return send_until(std::move(v), detail::deadline_after(timeout));
  }
  chan_status send_until(const T& v, std::chrono::steady_clock::time_point deadline)
      const requires std::copy_constructible<T> {
    T copy(v);
    return send_until(std::move(copy), deadline);
  }
  template <class Rep, class Period>
  chan_status send_for(const T& v, std::chrono::duration<Rep, Period> timeout)
      const requires std::copy_constructible<T> {
    return send_until(v, detail::deadline_after(timeout));
  }

  /// As recv, but gives up at the deadline: ok, closed or timeout.
  recv_result<T> recv_until(std::chrono::steady_clock::time_point deadline) const {
    return recv_with(detail::wait_limit{deadline, std::stop_token{}}, false);
  }
  template <class Rep, class Period>
  recv_result<T> recv_for(std::chrono::duration<Rep, Period> timeout) const {
    return recv_until(detail::deadline_after(timeout));
  }
  ///@}

  /// Closes the channel: blocked receivers get std::nullopt once the buffer is drained, blocked
  /// senders throw. Throws closed_channel_error if already closed, or if nil.
  void close() const {
    if (core_ == nullptr) throw closed_channel_error("goro::chan::close: close of nil channel");
    detail::chan_close(core_);
  }

  /// Values buffered now (Go's len): a snapshot, which may count a send or receive still in
  /// flight, so not a sign that another party's operation is over; always 0 for unbuffered and
  /// nil channels.
  std::size_t size() const noexcept { return core_ != nullptr ? detail::chan_size(core_) : 0; }
  /// The buffer's capacity (Go's cap); 0 for unbuffered and nil channels.
  std::size_t capacity() const noexcept {
    return core_ != nullptr ? detail::chan_capacity(core_) : 0;
  }

  /// Whether this is a non-nil channel.
  explicit operator bool() const noexcept { return core_ != nullptr; }
  /// Handles are equal when they refer to the same channel (or are both nil).
  friend bool operator==(const chan& a, const chan& b) noexcept { return a.core_ == b.core_; }

  /// Range-for support: receives until the channel is closed and drained. For copyable T, *it
  /// is an lvalue (T&): `for (T v : ch)` copies each value into v, and `for (auto& v : ch)`,
  /// `for (const T& v : ch)` and `for (auto&& v : ch)` use it in place. For move-only T it is an
  /// rvalue (T&&): `for (T v : ch)` moves each value into v. (A type whose copy constructor is
  /// declared but cannot be instantiated, such as std::vector<std::unique_ptr<U>>, counts as
  /// copyable: loop over it with `auto&&`.) The iterator holds each value until it advances or
  /// is destroyed, and never assigns one (so T need not be assignable). A throwing move
  /// constructor: see recv (the move out of the receive's slot into the iterator) and the loop's
  /// own copy or move into v, after which the iterator still holds, and later destroys, the
  /// value.
  class iterator {
   public:
    using iterator_concept = std::input_iterator_tag;
    using value_type = T;
    /// An lvalue for copyable T, so `for (auto& v : ch)` and `for (T v : ch)` both work; an
    /// rvalue for move-only T, so `for (std::unique_ptr<U> v : ch)` moves the value out.
    using reference = std::conditional_t<std::is_copy_constructible_v<T>, T&, T&&>;
    using difference_type = std::ptrdiff_t;
    iterator() = default;
    explicit iterator(const chan* ch) : ch_(ch) { advance(); }

    /// The value received last. REQUIRES: *this != end().
    reference operator*() const noexcept { return static_cast<reference>(*current_); }
    iterator& operator++() {
      advance();
      return *this;
    }
    void operator++(int) { ++*this; }
    friend bool operator==(const iterator& it, std::default_sentinel_t) noexcept {
      return !it.current_.has_value();
    }

   private:
    // The slot is a local, not a member: its address goes to the channel, and a member's would
    // make the compiler keep the whole iterator in memory across every receive
    // (docs/channels.md, "Contract").
    void advance() {
      current_.reset();
      detail::recv_slot<T> slot;
      if (ch_->recv_blocking(slot) == detail::chan_result::ok) slot.take_into(current_);
    }

    const chan* ch_ = nullptr;
    mutable std::optional<T> current_;  // mutable: *it is const, and hands out a T& or T&&
  };
  iterator begin() const { return iterator(this); }
  std::default_sentinel_t end() const noexcept { return {}; }

 private:
  friend detail::chan_core* detail::core_of<T>(const chan<T>&) noexcept;

  static detail::chan_core* new_core(std::size_t capacity) {
    return detail::make_chan(capacity, detail::elem_ops_for<T>);
  }
  template <std::integral I>
  static std::size_t checked_capacity(I capacity) {
    if constexpr (std::is_signed_v<I>) {
      if (capacity < 0) throw std::invalid_argument("goro::chan: negative capacity");
    }
    constexpr std::size_t max = detail::max_chan_capacity(sizeof(T));
    bool too_big = false;
    if constexpr (sizeof(I) <= sizeof(std::size_t)) {
      too_big = static_cast<std::size_t>(capacity) > max;  // exact: capacity >= 0 here
    } else {
      too_big = capacity > static_cast<I>(max);  // a wider type (__int128) holds max
    }
    if (too_big) throw std::length_error("goro::chan: capacity out of range");
    return static_cast<std::size_t>(capacity);
  }

  detail::chan_result send_impl(T& v, const detail::wait_limit& limit, bool non_blocking) const {
    if (core_ == nullptr) return detail::wait_on_nil(limit, non_blocking);
    return detail::chan_send(core_, &v, limit, non_blocking);
  }
  // recv's path: no wait_limit, so the core's inline fast paths.
  detail::chan_result recv_blocking(detail::recv_slot<T>& slot) const {
    return core_ != nullptr ? detail::chan_recv(core_, slot.storage())
                            : detail::wait_on_nil({}, false);
  }
  detail::chan_result recv_impl(detail::recv_slot<T>& slot, const detail::wait_limit& limit,
                                bool non_blocking) const {
    if (core_ == nullptr) return detail::wait_on_nil(limit, non_blocking);
    return detail::chan_recv(core_, slot.storage(), limit, non_blocking);
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

/// @cond detail
template <class T>
detail::chan_core* detail::core_of(const chan<T>& ch) noexcept {
  return ch.core_;
}
/// @endcond

}  // namespace goro
