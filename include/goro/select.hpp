// SPDX-License-Identifier: Apache-2.0
/// @file
/// goro::select: Go's select statement over any number of channel cases, fair among ready cases,
/// parking (never polling) when none is ready. The protocol is in docs/select.md.
#pragma once

#include <concepts>
#include <cstddef>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <stdexcept>
#include <stop_token>
#include <type_traits>
#include <utility>

#include "goro/chan.hpp"

namespace goro {
namespace detail {

enum class select_kind : unsigned char { recv, send, stop, none };

// One case as the compiled select sees it.
struct select_op {
  chan_core* ch = nullptr;  // null: a nil channel (or a non-channel case), never ready
  void* slot = nullptr;     // send: the value to move from; recv: storage to construct into
  select_kind kind = select_kind::none;
  bool ok = false;  // recv outcome of the chosen case: true = value, false = closed
};

// Performs one of the ready cases, chosen uniformly at random, and returns its index. If none
// is ready: returns -1 when non_blocking; else parks until one completes, or until `stop`
// (the case of kind stop, if any) is requested. Throws closed_channel_error if the case it
// performs is a send on a closed channel.
int select_ops(select_op* ops, std::size_t n, bool non_blocking, const std::stop_token* stop);

struct no_handler {};

template <class T, class F>
struct recv_case {
  const chan<T>* ch;
  F handler;
  recv_slot<T> slot{};
};

// A send case refers to the caller's T when given one as an rvalue, so that the object is
// moved from only if this case is performed; else it holds its own T (a copy, or a conversion).
template <class T, class F>
struct send_case {
  const chan<T>* ch;
  T* value;  // the caller's object; null when `owned` holds the value
  F handler;
  std::optional<T> owned;  // the case's own T, engaged exactly when value is null

  T* target() noexcept { return value != nullptr ? value : &*owned; }
  // Moves a referred-to value into the case, which then no longer needs the caller's object.
  void own() {
    if (value == nullptr) return;
    owned.emplace(std::move(*value));
    value = nullptr;
  }
};

template <class T, class U, class F>
send_case<T, std::decay_t<F>> make_send_case(const chan<T>& ch, U&& value, F&& handler) {
  if constexpr (std::is_same_v<U, T>) {  // deduced from an rvalue of type T itself
    return {&ch, &value, std::forward<F>(handler), std::nullopt};
  } else {
    return {&ch, nullptr, std::forward<F>(handler),
            std::optional<T>(std::in_place, std::forward<U>(value))};
  }
}

template <class F>
struct stop_case {
  std::stop_token token;
  F handler;
};

template <class F>
struct default_case {
  F handler;
};

// The case types the variadic select takes (what on_recv, on_send, on_stop and otherwise
// build). Anything else, a std::vector<select_case> in particular, goes to the run-time form.
template <class C>
inline constexpr bool is_case = false;
template <class T, class F>
inline constexpr bool is_case<recv_case<T, F>> = true;
template <class T, class F>
inline constexpr bool is_case<send_case<T, F>> = true;
template <class F>
inline constexpr bool is_case<stop_case<F>> = true;
template <class F>
inline constexpr bool is_case<default_case<F>> = true;

template <class C>
inline constexpr bool is_default_case = false;
template <class F>
inline constexpr bool is_default_case<default_case<F>> = true;
template <class C>
inline constexpr bool is_stop_case = false;
template <class F>
inline constexpr bool is_stop_case<stop_case<F>> = true;

template <class F, class... Args>
void call_handler(F& f, Args&&... args) {
  if constexpr (std::is_same_v<F, no_handler>) {
  } else if constexpr (std::is_invocable_v<F&, Args...>) {
    std::invoke(f, std::forward<Args>(args)...);
  } else {
    std::invoke(f);
  }
}

template <class T, class F>
void describe(recv_case<T, F>& c, select_op& op) {
  op = {core_of(*c.ch), c.slot.storage(), select_kind::recv};
}
template <class T, class F>
void describe(send_case<T, F>& c, select_op& op) {
  op = {core_of(*c.ch), c.target(), select_kind::send};
}
template <class F>
void describe(stop_case<F>& c, select_op& op) {
  op = {nullptr, nullptr, select_kind::stop};
  (void)c;
}
template <class F>
void describe(default_case<F>&, select_op& op) {
  op = {};
}

// take() destroys the received value even if T's move constructor throws, which then
// propagates from select.
template <class T, class F>
void complete(recv_case<T, F>& c, const select_op& op) {
  call_handler(c.handler, op.ok ? c.slot.take() : std::optional<T>());
}
template <class T, class F>
void complete(send_case<T, F>& c, const select_op&) {
  call_handler(c.handler);
}
template <class F>
void complete(stop_case<F>& c, const select_op&) {
  call_handler(c.handler);
}
template <class F>
void complete(default_case<F>& c, const select_op&) {
  call_handler(c.handler);
}

template <class... Cases, std::size_t... I>
void complete_nth(std::size_t k, const select_op* ops, std::index_sequence<I...>, Cases&... cases) {
  (void)((k == I ? (complete(cases, ops[I]), true) : false) || ...);
}

template <class... Cases>
constexpr std::size_t default_index() {
  constexpr bool flags[] = {is_default_case<std::remove_cvref_t<Cases>>..., false};
  for (std::size_t i = 0; i < sizeof...(Cases); ++i) {
    if (flags[i]) return i;
  }
  return sizeof...(Cases);
}

// The type-erased case behind select_case.
struct erased_case {
  virtual ~erased_case() = default;
  virtual void describe(select_op& op) = 0;
  virtual void complete(const select_op& op) = 0;
  // An on_stop case's token, which select_ops watches; null for a channel case.
  virtual const std::stop_token* stop_token() const noexcept { return nullptr; }
};

template <class Case>
struct erased_case_of final : erased_case {
  template <class C>
  explicit erased_case_of(C&& c, std::optional<std::decay_t<decltype(*c.ch)>> owned)
      : handle(std::move(owned)), the_case(std::forward<C>(c)) {
    the_case.ch = &*handle;
    if constexpr (requires { the_case.own(); }) the_case.own();
  }
  void describe(select_op& op) override { detail::describe(the_case, op); }
  void complete(const select_op& op) override { detail::complete(the_case, op); }
  std::optional<std::decay_t<decltype(*std::declval<Case>().ch)>> handle;
  Case the_case;
};

// A run-time send case is sent again by each select it is performed in, as Go's reflect.Select
// sends the same value each time: a copy of the value it was built with, kept aside (it was sent
// moved-from before, "" for a string). A move-only value can be sent once: a select that finds
// such a case spent throws std::logic_error before it looks at any channel.
template <class T, class F>
struct erased_case_of<send_case<T, F>> final : erased_case {
  erased_case_of(send_case<T, F>&& c, std::optional<chan<T>> owned)
      : handle(std::move(owned)), the_case(std::move(c)) {
    the_case.ch = &*handle;
    the_case.own();
    if constexpr (std::copy_constructible<T>) pristine.emplace(*the_case.owned);
  }
  void describe(select_op& op) override {
    if (spent) {
      if constexpr (std::copy_constructible<T>) {
        the_case.owned.emplace(*pristine);
      } else {
        throw std::logic_error(
            "goro::select: a send case of a move-only type was performed already; its value "
            "is gone");
      }
      spent = false;
    }
    detail::describe(the_case, op);
  }
  void complete(const select_op& op) override {
    spent = true;  // the value is in the channel now
    detail::complete(the_case, op);
  }
  std::optional<chan<T>> handle;
  send_case<T, F> the_case;
  std::optional<T> pristine;  // what each performance sends (T copyable)
  bool spent = false;
};

// A run-time on_stop case (Go's reflect.Select with ctx.Done() among its cases).
template <class F>
struct erased_case_of<stop_case<F>> final : erased_case {
  explicit erased_case_of(stop_case<F>&& c) : the_case(std::move(c)) {}
  void describe(select_op& op) override { detail::describe(the_case, op); }
  void complete(const select_op& op) override { detail::complete(the_case, op); }
  const std::stop_token* stop_token() const noexcept override { return &the_case.token; }
  stop_case<F> the_case;
};

}  // namespace detail

/// A case that receives from ch. The handler, if any, gets the std::optional<T> a recv()
/// would return (std::nullopt: closed), or no argument if it takes none.
template <class T>
detail::recv_case<T, detail::no_handler> on_recv(const chan<T>& ch) {
  return {&ch, {}};
}
template <class T, class F>
detail::recv_case<T, std::decay_t<F>> on_recv(const chan<T>& ch, F&& handler) {
  return {&ch, std::forward<F>(handler)};
}

/// A case that sends value on ch. A send case on a closed channel makes select throw
/// closed_channel_error.
/// - An rvalue of type T (std::move(x), or a temporary): the case refers to that object, which
///   is moved from only if this case is performed. After a select that performed another case,
///   took the default, or threw, it is as it was. The object must outlive the select (a
///   temporary in the select's own arguments does).
/// - Anything else (an lvalue, a const T, another type): the case holds its own T, copied or
///   converted from value when the case is built; the caller's lvalue is never changed.
/// - A select_case built from a send case holds its own T in every case: the value is moved
///   into it (from the caller's object, for an rvalue of type T) when the select_case is built.
template <class T, class U>
detail::send_case<T, detail::no_handler> on_send(const chan<T>& ch, U&& value) {
  return detail::make_send_case(ch, std::forward<U>(value), detail::no_handler{});
}
template <class T, class U, class F>
detail::send_case<T, std::decay_t<F>> on_send(const chan<T>& ch, U&& value, F&& handler) {
  return detail::make_send_case(ch, std::forward<U>(value), std::forward<F>(handler));
}

/// A case that is ready once stop is requested on token: Go's `case <-ctx.Done():`.
template <class F = detail::no_handler>
detail::stop_case<std::decay_t<F>> on_stop(std::stop_token token, F&& handler = {}) {
  return {std::move(token), std::forward<F>(handler)};
}

/// The default case: with it, select never blocks.
template <class F = detail::no_handler>
detail::default_case<std::decay_t<F>> otherwise(F&& handler = {}) {
  return {std::forward<F>(handler)};
}

/// Blocks until at least one case can proceed, performs exactly one (chosen uniformly at random
/// among the ready ones), runs only its handler and returns its index in the argument list.
/// With otherwise(), never blocks. Cases on nil channels never fire; select() with no
/// channel-ready case and no otherwise() blocks forever, as Go's `select {}` does.
///
/// Cases refer to their channels: build them in the call's arguments, as in the examples.
/// Throws closed_channel_error if the case performed is a send on a closed channel.
template <class... Cases>
requires(detail::is_case<std::remove_cvref_t<Cases>>&&...) std::size_t select(Cases&&... cases) {
  constexpr std::size_t n = sizeof...(Cases);
  constexpr std::size_t defaults =
      (std::size_t{detail::is_default_case<std::remove_cvref_t<Cases>>} + ... + 0);
  constexpr std::size_t stops =
      (std::size_t{detail::is_stop_case<std::remove_cvref_t<Cases>>} + ... + 0);
  static_assert(defaults <= 1, "goro::select: at most one otherwise() case");
  static_assert(stops <= 1, "goro::select: at most one on_stop() case");
  detail::select_op ops[n];
  std::size_t i = 0;
  (detail::describe(cases, ops[i++]), ...);
  const std::stop_token* stop = nullptr;
  if constexpr (stops == 1) {
    (
        [&](auto& c) {
          if constexpr (detail::is_stop_case<std::remove_cvref_t<decltype(c)>>) stop = &c.token;
        }(cases),
        ...);
  }
  const int k = detail::select_ops(ops, n, defaults == 1, stop);
  const std::size_t chosen =
      k >= 0 ? static_cast<std::size_t>(k) : detail::default_index<Cases...>();
  detail::complete_nth(chosen, ops, std::index_sequence_for<Cases...>{}, cases...);
  return chosen;
}

/// A case for the run-time form of select, for a number of cases known only at run time (Go's
/// reflect.Select). It keeps its own handle on the channel and, for a send, its own value
/// (moved or copied in when the select_case is built): a select_case usually outlives the
/// statement that built it, and so would outlive a temporary. A send case's value is moved
/// into the channel only if the case is performed; until then it stays in the select_case. Used
/// in several selects, a send case sends its value each time it is performed, as Go's
/// reflect.Select does: a copy made when it was built (so a copyable T is copied once more
/// there); a move-only T can be sent once, and a select given the spent case throws
/// std::logic_error.
class select_case {
 public:
  template <class T, class F>
  select_case(detail::recv_case<T, F>&& c)  // NOLINT: implicit, for on_recv(...)
      : impl_(std::make_unique<detail::erased_case_of<detail::recv_case<T, F>>>(std::move(c),
                                                                                *c.ch)) {}
  template <class T, class F>
  select_case(detail::send_case<T, F>&& c)  // NOLINT: implicit, for on_send(...)
      : impl_(std::make_unique<detail::erased_case_of<detail::send_case<T, F>>>(std::move(c),
                                                                                *c.ch)) {}
  template <class F>
  select_case(detail::stop_case<F>&& c)  // NOLINT: implicit, for on_stop(...)
      : impl_(std::make_unique<detail::erased_case_of<detail::stop_case<F>>>(std::move(c))) {}
  template <class F>
  select_case(detail::default_case<F>&& c)  // NOLINT: implicit, for otherwise(...)
      : default_([h = std::move(c.handler)]() mutable { detail::call_handler(h); }),
        is_default_(true) {}
  /// A moved-from select_case is no case at all: a select given one throws std::logic_error
  /// before it looks at any channel (it would otherwise pass for an otherwise() case).
  select_case(select_case&& other) noexcept
      : impl_(std::move(other.impl_)),
        default_(std::move(other.default_)),
        is_default_(std::exchange(other.is_default_, false)) {}
  select_case& operator=(select_case&& other) noexcept {
    impl_ = std::move(other.impl_);
    default_ = std::move(other.default_);
    is_default_ = std::exchange(other.is_default_, false);
    return *this;
  }

 private:
  friend std::size_t select(std::span<select_case> cases);
  std::unique_ptr<detail::erased_case> impl_;  // null for the default case, and once moved from
  std::function<void()> default_;
  bool is_default_ = false;  // an otherwise() case (not moved from)
};

/// The run-time form: as the variadic select, over cases built with on_recv, on_send, on_stop
/// and otherwise. Returns the index in `cases` of the case performed. A std::vector<select_case>
/// (or an array of them) converts to the span: `goro::select(cases)`. Throws, before it looks at
/// any channel, std::invalid_argument given two otherwise() or two on_stop() cases, and
/// std::logic_error given a select_case that was moved from.
std::size_t select(std::span<select_case> cases);

}  // namespace goro
