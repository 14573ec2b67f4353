// SPDX-License-Identifier: Apache-2.0
// select over type-erased cases, after Go's selectgo (runtime/select.go): a random poll order
// for fairness, all channels locked in address order, a first pass that completes a ready
// case, else one chan_waiter per case on every channel, sharing one waiter whose first claim
// wins; after waking, the losing entries are unlinked from every queue before returning.
// Protocol and proof sketch: docs/select.md.
#include <algorithm>
#include <cstddef>
#include <memory>
#include <type_traits>
#include <vector>

#include "goro/select.hpp"

namespace goro::detail {
namespace {

// xorshift64*, per thread. Not inlined, so no caller keeps a thread-local address across a
// fiber switch.
__attribute__((noinline)) std::uint64_t next_random() noexcept {
  thread_local std::uint64_t state =
      0x9E3779B97F4A7C15ULL ^ reinterpret_cast<std::uintptr_t>(&state);
  state ^= state >> 12;
  state ^= state << 25;
  state ^= state >> 27;
  return state * 0x2545F4914F6CDD1DULL;
}

// Scratch space for one select: on the stack for the usual handful of cases. Only the n
// elements used are constructed (value-initialized): a select blocks in a few hundred
// instructions, and initializing all Inline elements cost a hundred more.
template <class T, std::size_t Inline = 8>
class scratch {
  static_assert(std::is_trivially_destructible_v<T>);

 public:
  explicit scratch(std::size_t n) {
    if (n > Inline) {
      heap_.resize(n);
      data_ = heap_.data();
    } else {
      data_ = std::uninitialized_value_construct_n(reinterpret_cast<T*>(inline_), n) - n;
    }
  }
  scratch(const scratch&) = delete;
  scratch& operator=(const scratch&) = delete;
  T& operator[](std::size_t i) noexcept { return data_[i]; }

 private:
  alignas(T) std::byte inline_[Inline * sizeof(T)];
  std::vector<T> heap_;
  T* data_;
};

class channel_locks {
 public:
  // Cases taken in poll order and stably sorted by channel, so cases on one channel are queued
  // in random order too (a receiver then picks among duplicate send cases fairly).
  channel_locks(select_op* ops, std::size_t n, scratch<std::uint32_t>& poll,
                scratch<std::uint32_t>& order)
      : ops_(ops) {
    for (std::size_t i = 0; i < n; ++i) {
      if (ops[poll[i]].ch != nullptr) order[count_++] = poll[i];
    }
    order_ = &order;
    const auto by_channel = [ops](std::uint32_t a, std::uint32_t b) { return ops[a].ch < ops[b].ch; };
    if (count_ <= 16) {
      // Insertion sort: stable and allocation-free for the usual handful of cases.
      for (std::size_t i = 1; i < count_; ++i) {
        const std::uint32_t k = order[i];
        std::size_t j = i;
        for (; j > 0 && by_channel(k, order[j - 1]); --j) order[j] = order[j - 1];
        order[j] = k;
      }
    } else {
      std::stable_sort(&order[0], &order[0] + count_, by_channel);
    }
  }
  void lock() noexcept {
    for (std::size_t i = 0; i < count_; ++i) {
      chan_core* c = ops_[(*order_)[i]].ch;
      if (i == 0 || c != ops_[(*order_)[i - 1]].ch) c->lock_.lock();
    }
  }
  void unlock() noexcept {
    for (std::size_t i = count_; i-- > 0;) {
      chan_core* c = ops_[(*order_)[i]].ch;
      if (i == 0 || c != ops_[(*order_)[i - 1]].ch) c->lock_.unlock();
    }
  }
  std::size_t size() const noexcept { return count_; }
  std::uint32_t operator[](std::size_t i) const noexcept { return (*order_)[i]; }

 private:
  select_op* ops_;
  scratch<std::uint32_t>* order_ = nullptr;
  std::size_t count_ = 0;
};

[[noreturn]] void throw_send_on_closed() {
  throw closed_channel_error("goro::select: send on closed channel");
}

waiter_queue& queue_for(const select_op& op) noexcept {
  return op.kind == select_kind::send ? op.ch->sendq_ : op.ch->recvq_;
}

}  // namespace

int select_ops(select_op* ops, std::size_t n, bool non_blocking, const std::stop_token* stop) {
  // Poll order: a uniformly random permutation (inside-out Fisher-Yates).
  scratch<std::uint32_t> poll(n);
  for (std::size_t i = 0; i < n; ++i) {
    const std::size_t j = next_random() % (i + 1);
    poll[i] = poll[j];
    poll[j] = static_cast<std::uint32_t>(i);
  }
  scratch<std::uint32_t> lock_order(n);
  channel_locks locks(ops, n, poll, lock_order);
  int stop_index = -1;
  for (std::size_t i = 0; i < n; ++i) {
    if (ops[i].kind == select_kind::stop) stop_index = static_cast<int>(i);
  }

  // Pass 1: a case that can complete now.
  locks.lock();
  for (std::size_t i = 0; i < n; ++i) {
    select_op& op = ops[poll[i]];
    if (op.kind == select_kind::stop) {
      if (stop != nullptr && stop->stop_requested()) {
        locks.unlock();
        return static_cast<int>(poll[i]);
      }
      continue;
    }
    if (op.ch == nullptr) continue;
    if (op.kind == select_kind::send) {
      bool closed = false;
      waiter* wake = nullptr;
      if (op.ch->try_send_locked(op.slot, closed, wake)) {
        locks.unlock();
        if (wake != nullptr) wake->unpark();
        return static_cast<int>(poll[i]);
      }
      if (closed) {
        locks.unlock();
        throw_send_on_closed();
      }
    } else {
      waiter* wake = nullptr;
      if (op.ch->try_recv_locked(op.slot, op.ok, wake)) {
        locks.unlock();
        if (wake != nullptr) wake->unpark();
        return static_cast<int>(poll[i]);
      }
    }
  }
  if (non_blocking) {
    locks.unlock();
    return -1;
  }

  // Pass 2: wait on every channel at once.
  waiter w;
  scratch<chan_waiter> nodes(n);
  for (std::size_t i = 0; i < locks.size(); ++i) {
    const std::uint32_t k = locks[i];
    chan_waiter& node = nodes[k];
    node.w = &w;
    node.slot = ops[k].slot;
    node.index = static_cast<int>(k);
    queue_for(ops[k]).push(&node);
  }
  if (stop == nullptr) {
    // Only channel operations, under these locks, can complete us: park gated.
    w.park_gated([](void* l) noexcept { static_cast<channel_locks*>(l)->unlock(); }, &locks);
  } else {
    locks.unlock();
    wait_limit limit;
    limit.stop = *stop;
    park_limited(w, limit);
  }

  // Pass 3: unlink the losers.
  const int winner = w.winner();
  locks.lock();
  for (std::size_t i = 0; i < locks.size(); ++i) {
    const std::uint32_t k = locks[i];
    if (static_cast<int>(k) != winner) queue_for(ops[k]).remove(&nodes[k]);
  }
  locks.unlock();
  if (winner == claim_cancelled) return stop_index;
  select_op& op = ops[winner];
  if (op.kind == select_kind::send && !nodes[winner].ok) throw_send_on_closed();
  op.ok = nodes[winner].ok;
  return winner;
}

}  // namespace goro::detail

namespace goro {

std::size_t select(std::span<select_case> cases) {
  const std::size_t n = cases.size();
  std::vector<detail::select_op> ops(n);
  std::size_t default_index = n;
  for (std::size_t i = 0; i < n; ++i) {
    if (cases[i].impl_ != nullptr) {
      cases[i].impl_->describe(ops[i]);
    } else if (default_index == n) {
      default_index = i;
    } else {
      throw std::invalid_argument("goro::select: at most one otherwise() case");
    }
  }
  const int k = detail::select_ops(ops.data(), n, default_index != n, nullptr);
  if (k < 0) {
    cases[default_index].default_();
    return default_index;
  }
  cases[static_cast<std::size_t>(k)].impl_->complete(ops[static_cast<std::size_t>(k)]);
  return static_cast<std::size_t>(k);
}

}  // namespace goro
