// SPDX-License-Identifier: Apache-2.0
// Layer: chan. May include: chan, sync, park, sched, stack, time, platform.
// select over type-erased cases, after Go's selectgo (runtime/select.go): a random poll order
// for fairness, all channels locked in address order, a first pass that completes a ready
// case, else one chan_waiter per case on every channel, sharing one waiter whose first claim
// wins; after waking, the losing entries are unlinked from every queue before returning.
// Protocol and proof sketch: docs/select.md.
#include <sys/random.h>
#include <sys/types.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

#include "chan/chan_core.hpp"
#include "goro/detail/check.hpp"
#include "goro/detail/thread_safety.hpp"
#include "goro/select.hpp"
#include "sched/worker.hpp"

namespace goro::detail {
namespace {

// What a parked select waits on, for the diagnostics: its cases, "recv 0x.., send 0x..". A copy
// of the first cases, made as the select parks, in its own frame: the dump reads it while the
// select may be woken and return (its ops gone, its frame written over), so nothing here is a
// pointer to follow (describe_select reads garbage then, never freed or unmapped memory).
struct select_cases {
  static constexpr std::size_t shown = 8;
  std::size_t n;  // cases in all
  struct {
    const void* ch;
    select_kind kind;
  } cases[shown];

  select_cases(const select_op* ops, std::size_t count) noexcept : n(count) {
    for (std::size_t i = 0; i < std::min(count, shown); ++i) cases[i] = {ops[i].ch, ops[i].kind};
  }
};

// Not instrumented by ASan: the frame it reads may be another fiber's, in use again, redzones
// and all (the dump's race, above).
__attribute__((no_sanitize("address"))) void describe_select(const void* object, char* out,
                                                             std::size_t size) noexcept {
  const auto* c = static_cast<const select_cases*>(object);
  const std::size_t n = c->n;
  std::size_t used = 0;
  out[0] = '\0';
  for (std::size_t i = 0; i < std::min(n, select_cases::shown) && used + 1 < size; ++i) {
    const void* const ch = c->cases[i].ch;
    const select_kind kind = c->cases[i].kind;
    const char* what = kind == select_kind::recv   ? "recv"
                       : kind == select_kind::send ? "send"
                       : kind == select_kind::stop ? "stop"
                                                   : nullptr;
    if (what == nullptr) continue;
    const int k =
        kind == select_kind::stop
            ? std::snprintf(out + used, size - used, "%s%s", used ? ", " : "", what)
            : std::snprintf(out + used, size - used, "%s%s %p", used ? ", " : "", what, ch);
    if (k < 0) break;
    used = std::min(size - 1, used + static_cast<std::size_t>(k));
  }
  if (n > select_cases::shown && used + 1 < size) {
    std::snprintf(out + used, size - used, ", ... (%zu cases)", n);
  }
}

constexpr wait_reason select_wait{"select", false, false, describe_select, sizeof(select_cases)};

// A seed for one thread's generator, never 0: 64 bits from the kernel (getrandom(2); a
// thread's first select pays the system call, once), else the clock, mixed with a process-wide
// count of seeds so that no two threads of a process start alike even then; splitmix64's
// finalizer spreads the sum over all 64 bits. Rejected: a seed from a thread-local's address,
// since a thread started after another one ended gets the same thread-locals, and would choose
// exactly as the first did.
__attribute__((noinline, cold)) std::uint64_t fresh_seed() noexcept {
  // Relaxed: only distinctness matters, which the read-modify-write gives on its own.
  static std::atomic<std::uint64_t> seeds{0};
  std::uint64_t entropy = 0;
  if (::getrandom(&entropy, sizeof entropy, GRND_NONBLOCK) !=
      static_cast<ssize_t>(sizeof entropy)) {
    entropy =
        static_cast<std::uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count());
  }
  std::uint64_t z =
      entropy + 0x9E3779B97F4A7C15ULL * (seeds.fetch_add(1, std::memory_order_relaxed) + 1);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  z ^= z >> 31;
  return z != 0 ? z : 0x9E3779B97F4A7C15ULL;
}

// xorshift64*, per thread. Not inlined, so no caller keeps a thread-local address across a
// fiber switch. Seeded on first use, not by a dynamic initializer, which would put a guard
// and a call in front of every draw: the state is zero-initialized, 0 meaning "not seeded"
// (xorshift never reaches 0 from a nonzero state).
__attribute__((noinline)) std::uint64_t next_random() noexcept {
  thread_local std::uint64_t state = 0;
  if (state == 0) [[unlikely]]
    state = fresh_seed();
  state ^= state >> 12;
  state ^= state << 25;
  state ^= state >> 27;
  return state * 0x2545F4914F6CDD1DULL;
}

// Random 32-bit draws, two per call of next_random.
class random_bits {
 public:
  // A draw in [0, bound), by Lemire's multiply-shift instead of a division ("Fast random
  // integer generation in an interval", 2019; Go's cheaprandn does the same): the bias,
  // below bound / 2^32, is far from measurable for a select's handful of cases.
  std::uint32_t below(std::uint32_t bound) noexcept {
    if (left_ == 0) {
      bits_ = next_random();
      left_ = 2;
    }
    const auto draw = static_cast<std::uint32_t>(bits_);
    bits_ >>= 32;
    --left_;
    return static_cast<std::uint32_t>((std::uint64_t{draw} * bound) >> 32);
  }

 private:
  std::uint64_t bits_ = 0;
  int left_ = 0;
};

// Scratch space for one select's n cases: the poll order, the distinct channels, those of
// them in ring mode, and pass 2's waiter nodes. On the stack for the usual handful of cases,
// else in one heap block allocated here, before any channel is locked (no allocation, nor a
// bad_alloc, under a channel's lock). One block for the four arrays, not one each: four
// pointers chosen by one test, and one allocation for a large select. Nothing is
// initialized here: the poll order and the channels are written before they are read, and only
// the n nodes used are value-initialized, by init_nodes (initializing all inline_cases nodes
// would add a good part to a select's cost).
class select_scratch {
  static_assert(std::is_trivially_destructible_v<chan_waiter>);
  static_assert(alignof(chan_waiter) <= __STDCPP_DEFAULT_NEW_ALIGNMENT__);
  static constexpr std::size_t inline_cases = 8;
  // Per case, in the heap block's order: the largest alignment first.
  static constexpr std::size_t bytes_per_case =
      // NOLINTNEXTLINE(bugprone-sizeof-expression): two arrays of channel pointers, by design.
      sizeof(chan_waiter) + 2 * sizeof(chan_core*) + sizeof(std::uint32_t);

 public:
  explicit select_scratch(std::size_t n) : n_(n) {
    std::byte* at = inline_;
    if (n > inline_cases) [[unlikely]] {
      heap_ = std::make_unique_for_overwrite<std::byte[]>(n * bytes_per_case);
      at = heap_.get();
    }
    const std::size_t k = std::max(n, inline_cases);
    nodes = reinterpret_cast<chan_waiter*>(at);
    chans = reinterpret_cast<chan_core**>(at + k * sizeof(chan_waiter));
    rings = chans + k;
    poll = reinterpret_cast<std::uint32_t*>(rings + k);
  }
  select_scratch(const select_scratch&) = delete;
  select_scratch& operator=(const select_scratch&) = delete;
  // Value-initializes the n nodes.
  void init_nodes() noexcept { std::uninitialized_value_construct_n(nodes, n_); }

  std::uint32_t* poll;  // the cases in the order pass 1 tries them
  chan_core** chans;    // channel_locks: the distinct channels, in address order
  chan_core** rings;    // channel_locks: those in ring mode
  chan_waiter* nodes;   // pass 2: one per case

 private:
  alignas(chan_waiter) std::byte inline_[inline_cases * bytes_per_case];
  std::unique_ptr<std::byte[]> heap_;
  std::size_t n_;
};

// The distinct channels of a select's cases, in address order: two selects that share
// channels lock them in the same order, so they cannot deadlock. Holds a reference to each one
// in ring mode for the whole select: a push or pop of ours under the locks may be seen done by a
// lock-free partner, which may then drop the last handle before we unlock (docs/channels.md,
// "Lifetime"). Those are recorded apart, so that no other channel is looked at once the select
// is done: its partner may have dropped it (docs/select.md, "Lifetime").
class channel_locks {
 public:
  // Uses `scratch`'s chans and rings.
  channel_locks(const select_op* ops, std::size_t n, select_scratch& scratch)
      : chans_(scratch.chans), rings_(scratch.rings) {
    chan_core** const first = chans_;
    if (n > 16) {
      for (std::size_t i = 0; i < n; ++i) {
        if (ops[i].ch == nullptr) continue;
        first[count_++] = ops[i].ch;
        any_ring_ |= ops[i].ch->ring_mode();
      }
      std::sort(first, first + count_, std::less<>());
      count_ = static_cast<std::size_t>(std::unique(first, first + count_) - first);
    } else {
      // Insertion sort that drops duplicates: allocation-free for the usual handful of cases.
      for (std::size_t i = 0; i < n; ++i) {
        chan_core* const c = ops[i].ch;
        if (c == nullptr) continue;
        any_ring_ |= c->ring_mode();
        std::size_t j = count_;
        while (j > 0 && std::less<>()(c, first[j - 1])) --j;
        if (j > 0 && first[j - 1] == c) continue;
        for (std::size_t k = count_; k > j; --k) first[k] = first[k - 1];
        first[j] = c;
        ++count_;
      }
    }
    if (any_ring_) {
      for (std::size_t i = 0; i < count_; ++i) {
        if (!chans_[i]->ring_mode()) continue;
        chans_[i]->retain();
        rings_[ring_count_++] = chans_[i];
      }
    }
  }
  ~channel_locks() {
    for (std::size_t i = 0; i < ring_count_; ++i) rings_[i]->release();
  }
  channel_locks(const channel_locks&) = delete;
  channel_locks& operator=(const channel_locks&) = delete;
  // Locks every channel in address order. lock and unlock are outside the analysis, which
  // cannot follow a set of locks taken in a loop.
  void lock() noexcept GORO_NO_THREAD_SAFETY_ANALYSIS {
    for (std::size_t i = 0; i < count_; ++i) chans_[i]->lock().lock();
  }
  void unlock() noexcept GORO_NO_THREAD_SAFETY_ANALYSIS {
    if (any_ring_) {  // each critical section in ring mode ends with the flags published
      for (std::size_t i = 0; i < count_; ++i) chans_[i]->publish_waiting();
    }
    for (std::size_t i = count_; i-- > 0;) chans_[i]->lock().unlock();
  }
  // Pass 2, the locks held, about to park: every channel is to be locked again after the
  // wake-up, whoever drops it meanwhile (docs/select.md, "Lifetime").
  void will_return() noexcept GORO_NO_THREAD_SAFETY_ANALYSIS {
    for (std::size_t i = 0; i < count_; ++i) chans_[i]->select_will_return();
  }
  // Pass 3's unlock: as unlock(), and a channel whose last handle went while the select was
  // parked is deleted once unlocked. Nothing is looked at after that.
  void unlock_returned() noexcept GORO_NO_THREAD_SAFETY_ANALYSIS {
    for (std::size_t i = count_; i-- > 0;) {
      chan_core* const c = chans_[i];
      c->publish_waiting();
      const bool orphan = c->select_returned();
      c->lock().unlock();
      if (orphan) c->delete_orphan();
    }
  }
  // Whether any of the channels is in ring mode (docs/channels.md, "The ring").
  bool any_ring() const noexcept { return any_ring_; }

 private:
  chan_core** const chans_;
  chan_core** const rings_;  // those in ring mode, each with a reference held
  std::size_t count_ = 0;
  std::size_t ring_count_ = 0;
  bool any_ring_ = false;
};

[[noreturn]] void throw_send_on_closed() {
  throw closed_channel_error("goro::select: send on closed channel");
}

// Outside the analysis: the caller holds op.ch's lock as one of its channel_locks.
waiter_queue& queue_for(const select_op& op) noexcept GORO_NO_THREAD_SAFETY_ANALYSIS {
  return op.kind == select_kind::send ? op.ch->sendq() : op.ch->recvq();
}

// Ring mode (docs/channels.md, "The ring"): before pass 1, every case announces that it may
// wait, so that its try in pass 1 is the last check before it waits. Outside the analysis: the
// caller holds the channels' locks as a channel_locks set.
void announce_cases(const select_op* ops, std::size_t n) noexcept GORO_NO_THREAD_SAFETY_ANALYSIS {
  for (std::size_t i = 0; i < n; ++i) {
    if (ops[i].ch == nullptr) continue;
    if (ops[i].kind == select_kind::send) {
      ops[i].ch->announce_sender();
    } else if (ops[i].kind == select_kind::recv) {
      ops[i].ch->announce_receiver();
    }
  }
}

int stop_case_of(const select_op* ops, std::size_t n) noexcept {
  for (std::size_t i = 0; i < n; ++i) {
    if (ops[i].kind == select_kind::stop) return static_cast<int>(i);
  }
  return -1;
}

}  // namespace

// Outside the analysis: the channels' locks are held as a channel_locks set, which it cannot
// name, and try_send_locked and the queues require each channel's own lock.
int select_ops(select_op* ops, std::size_t n, bool non_blocking,
               const std::stop_token* stop) GORO_NO_THREAD_SAFETY_ANALYSIS {
  count_event(sched_event::selects);
  // Poll order: a uniformly random permutation (inside-out Fisher-Yates), every element written
  // before it is read, so the scratch is not initialized (that was a memset call per select).
  select_scratch scratch(n);
  std::uint32_t* const poll = scratch.poll;
  if (n > 0) poll[0] = 0;
  random_bits random;
  for (std::size_t i = 1; i < n; ++i) {
    const std::uint32_t j = random.below(static_cast<std::uint32_t>(i + 1));
    if (j != i) poll[i] = poll[j];
    poll[j] = static_cast<std::uint32_t>(i);
  }
  channel_locks locks(ops, n, scratch);
  chan_waiter* const nodes = scratch.nodes;

  // Pass 1: a case that can complete now. Run again only when a completer claimed a case of ours
  // in ring mode but found the value (or the room) taken by a lock-free party, so that nothing
  // happened (docs/channels.md, "The ring"). A jump, not a recursion: such runs could follow
  // one another without bound on a fiber's small stack.
again:
  locks.lock();
  if (locks.any_ring()) announce_cases(ops, n);
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
      const chan_core::attempt a = op.ch->try_send_locked(op.slot);
      if (a.result == chan_core::attempt::outcome::done) {
        locks.unlock();
        unpark_all(a.woken);
        return static_cast<int>(poll[i]);
      }
      if (a.result == chan_core::attempt::outcome::closed) {
        locks.unlock();
        throw_send_on_closed();
      }
      // Ring mode: older senders served, but no room for ours. Unparked under the locks: our
      // references keep every ring channel of ours alive, and they need none of our locks.
      unpark_all(a.woken);
    } else {
      const chan_core::attempt a = op.ch->try_recv_locked(op.slot);
      if (a.result != chan_core::attempt::outcome::would_block) {
        op.ok = a.result == chan_core::attempt::outcome::done;
        locks.unlock();
        unpark_all(a.woken);
        return static_cast<int>(poll[i]);
      }
    }
  }
  if (non_blocking) {
    locks.unlock();
    return -1;
  }

  // Pass 2: wait on every channel at once.
  const select_cases cases(ops, n);
  waiter w(select_wait, &cases);
  scratch.init_nodes();
  // In poll order, so cases on one channel are queued in random order too (a receiver then
  // picks among duplicate send cases fairly).
  for (std::size_t i = 0; i < n; ++i) {
    const std::uint32_t k = poll[i];
    if (ops[k].ch == nullptr) continue;
    chan_waiter& node = nodes[k];
    node.w = &w;
    node.slot = ops[k].slot;
    node.as = case_outcome(k);
    queue_for(ops[k]).push(&node);
  }
  locks.will_return();
  if (stop == nullptr) {
    // Only channel operations, under these locks, can complete us: park gated.
    w.park_gated([](void* l) noexcept { static_cast<channel_locks*>(l)->unlock(); }, &locks);
  } else {
    locks.unlock();
    wait_limit limit;
    limit.stop = *stop;
    park_limited(w, limit);
  }
  count_event(sched_event::select_wakeups);

  // Pass 3: unlink the losers, under the locks of their channels, the winner's included (a
  // channel whose last handle went meanwhile waits for this, docs/select.md, "Lifetime").
  const claim_outcome winner = w.winner();
  locks.lock();
  for (std::size_t k = 0; k < n; ++k) {
    // A queue's remove is a no-op for the winner's node, which its completer took out.
    if (ops[k].ch != nullptr) queue_for(ops[k]).remove(&nodes[k]);
  }
  locks.unlock_returned();
  if (winner == claim_outcome::cancelled) return stop_case_of(ops, n);
  GORO_DCHECK(!limit_won(winner));  // select parks without a deadline
  const std::size_t k = case_index(winner);
  // Ring mode: a completer claimed this case but found the value (or the room) taken by a
  // lock-free party (docs/channels.md, "The ring"): nothing happened; start over.
  if (nodes[k].retry) [[unlikely]]
    goto again;
  select_op& op = ops[k];
  if (op.kind == select_kind::send && !nodes[k].ok) throw_send_on_closed();
  op.ok = nodes[k].ok;
  return static_cast<int>(k);
}

}  // namespace goro::detail

namespace goro {

std::size_t select(std::span<select_case> cases) {
  const std::size_t n = cases.size();
  std::vector<detail::select_op> ops(n);
  std::size_t default_index = n;
  const std::stop_token* stop = nullptr;  // the on_stop case's, if any
  for (std::size_t i = 0; i < n; ++i) {
    if (cases[i].impl_ != nullptr) {
      cases[i].impl_->describe(ops[i]);
      if (const std::stop_token* token = cases[i].impl_->stop_token(); token != nullptr) {
        if (stop != nullptr) {
          throw std::invalid_argument("goro::select: at most one on_stop() case");
        }
        stop = token;
      }
    } else if (!cases[i].is_default_) {
      throw std::logic_error("goro::select: case " + std::to_string(i) + " was moved from");
    } else if (default_index == n) {
      default_index = i;
    } else {
      throw std::invalid_argument("goro::select: at most one otherwise() case");
    }
  }
  const int k = detail::select_ops(ops.data(), n, default_index != n, stop);
  if (k < 0) {
    cases[default_index].default_();
    return default_index;
  }
  cases[static_cast<std::size_t>(k)].impl_->complete(ops[static_cast<std::size_t>(k)]);
  return static_cast<std::size_t>(k);
}

}  // namespace goro
