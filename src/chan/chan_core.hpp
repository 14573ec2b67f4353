// SPDX-License-Identifier: Apache-2.0
// Layer: chan. May include: chan, sync, park, sched, stack, time, platform.
// The type-erased channel that goro::chan<T> wraps (through goro/detail/chan_core.hpp): a
// buffer of capacity n, the queues of blocked senders and receivers, and the closed flag, under
// one lock (a biased_lock). The buffer is either a plain ring under that lock, or, for a
// buffered channel made where several workers run, a lock-free value_ring (chan/ring.hpp) with
// the lock taken only to wait, wake or close ("ring mode"). Its operations are in chan_core.cpp
// and move elements through elem_ops. The protocol, its invariants and the designs rejected are
// in docs/channels.md.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>

#include "chan/biased_lock.hpp"
#include "chan/element_mover.hpp"
#include "chan/ring.hpp"
#include "goro/detail/chan_core.hpp"
#include "goro/detail/hardware.hpp"
#include "goro/detail/thread_safety.hpp"
#include "park/park.hpp"
#include "park/wait_queue.hpp"

namespace goro::detail {

// The claim outcome of a plain send or receive that a partner completes (the one case of a
// one-case select); a select's cases are case_outcome(i). Whatever is not a case is the parking
// layer's (timed_out, cancelled).
inline constexpr claim_outcome chan_completed = case_outcome(0);

// One blocked operation on one channel (Go's sudog): a send of *slot, or a receive into the
// raw storage at slot. A select has one per case, all sharing its waiter.
struct chan_waiter : wait_link<chan_waiter> {
  waiter* w = nullptr;
  void* slot = nullptr;
  claim_outcome as = chan_completed;  // what a completer claims w as: the select case
  bool ok = false;  // set by the completer: true = value moved, false = channel closed
  // Ring mode: set by a completer that claimed the waiter but found no value (or no room) left,
  // a lock-free party having come between: the operation did nothing, and starts over.
  bool retry = false;
  // False when nothing else can complete the waiter (a plain blocking send or receive, with no
  // deadline or stop token): the completer then skips the claim.
  bool needs_claim = true;

  bool claim() noexcept { return !needs_claim || w->claim(as); }
  void unpark() noexcept { w->unpark(); }
};

// The FIFO of a channel's blocked senders or receivers (park/wait_queue.hpp). Not thread-safe:
// the channel's lock guards it.
class waiter_queue {
 public:
  bool empty() const noexcept { return head_ == nullptr; }
  void push(chan_waiter* n) noexcept { view().push_back(n); }
  // Unlinks n if it is queued here.
  void remove(chan_waiter* n) noexcept { view().remove(n); }
  // Pops waiters until one this call claims; drops the stale ones (already claimed by another
  // select case, a timeout or a cancellation).
  chan_waiter* pop_claimed() noexcept { return view().pop_claimed(); }
  // pop_claimed() until the queue is empty, the waiters chained through next.
  chan_waiter* pop_all_claimed() noexcept { return view().pop_all_claimed().first; }
  // Puts back at the front a waiter just popped (ring mode: a claim that changed nothing).
  void push_front(chan_waiter* n) noexcept { view().push_front(n); }

 private:
  wait_queue<chan_waiter> view() noexcept { return {head_, tail_}; }
  chan_waiter* head_ = nullptr;
  chan_waiter* tail_ = nullptr;
};

class chan_core {
 public:
  // REQUIRES: capacity <= max_chan_capacity(ops.size) (chan<T> checks it before constructing).
  chan_core(std::size_t capacity, const elem_ops& ops);
  ~chan_core();
  chan_core(const chan_core&) = delete;
  chan_core& operator=(const chan_core&) = delete;

  // Relaxed: a new handle is copied from a live one, so the count cannot reach zero meanwhile
  // (the usual reference-count argument); release() orders the delete.
  void retain() noexcept { refs_.fetch_add(1, std::memory_order_relaxed); }
  void release() noexcept {
    // acq_rel: every handle's last use happens-before the delete.
    if (refs_.fetch_sub(1, std::memory_order_acq_rel) == 1) destroy();
  }

  // ---- a parked select's return (docs/select.md, "Lifetime") ----
  // A select about to park, holding lock(): it will lock this channel again after it wakes, to
  // unlink its entries, even if the last handle goes meanwhile (a Go program's `quit` channel:
  // its owner sees the select done on it, and drops that channel and the others at once).
  void select_will_return() noexcept GORO_REQUIRES(lock_) {
    ++returning_selects_;
    // Relaxed: read by destroy(), after whatever showed its caller the select done, which
    // came after the select's park released this lock.
    if (!select_parked_.load(std::memory_order_relaxed)) {
      select_parked_.store(true, std::memory_order_relaxed);
    }
  }
  // The select back, holding lock() again: true if the last handle went while it was away, in
  // which case the caller deletes the channel (delete_orphan) once it has unlocked it.
  bool select_returned() noexcept GORO_REQUIRES(lock_) {
    return --returning_selects_ == 0 && orphaned_;
  }
  void delete_orphan() noexcept { delete this; }

  // In ring mode, a reference held across a critical section (or a wait) that may push or pop:
  // a lock-free partner may see that push or pop done, and drop the last handle, before the
  // lock is released (docs/channels.md, "Lifetime"). On the locked buffer, nothing: a partner
  // sees an operation done only through the lock, or once woken after the unlock.
  class ring_reference {
   public:
    explicit ring_reference(chan_core* c) noexcept : c_(c->use_ring_ ? c : nullptr) {
      if (c_ != nullptr) c_->retain();
    }
    ~ring_reference() {
      if (c_ != nullptr) c_->release();
    }
    ring_reference(const ring_reference&) = delete;
    ring_reference& operator=(const ring_reference&) = delete;

   private:
    chan_core* const c_;
  };

  // The handle's calls (goro/detail/chan_core.hpp), which pick the mode's path.
  friend chan_result chan_send(chan_core* c, void* value);
  friend chan_result chan_recv(chan_core* c, void* out);
  friend chan_result chan_send(chan_core* c, void* value, const wait_limit& limit,
                               bool non_blocking);
  friend chan_result chan_recv(chan_core* c, void* out, const wait_limit& limit, bool non_blocking);

  // On the locked buffer (not in ring mode), as the handle's calls:
  // Sends *value (moved from only on ok), blocking as long as it takes: ok or closed.
  chan_result send(void* value);
  // Receives into the raw storage `out` (constructed only on ok), blocking: ok or closed.
  chan_result recv(void* out);
  // As send and recv, but blocking only within `limit`, or not at all if non_blocking (a
  // full or empty channel then gives would_block).
  chan_result send(void* value, const wait_limit& limit, bool non_blocking);
  chan_result recv(void* out, const wait_limit& limit, bool non_blocking);
  // Throws closed_channel_error if already closed.
  void close();

  std::size_t size() const noexcept {
    return use_ring_ ? ring_->size() : count_.load(std::memory_order_relaxed);
  }
  std::size_t capacity() const noexcept { return capacity_; }

  // ---- for select (src/chan/select.cpp), under lock() ----
  biased_lock& lock() noexcept { return lock_; }
  // What try_send_locked or try_recv_locked did. `woken`, when not null, lists (through next)
  // the blocked parties whose operations this one completed: the caller must unpark them
  // (unpark_all) *after* unlocking, since once woken a party may drop the last handle and free
  // the channel, lock included.
  struct attempt {
    enum class outcome : std::uint8_t {
      would_block,  // nothing happened
      done,         // sent; or received a value into `out`
      closed,       // the channel is closed: a send did nothing, a receive completed empty
    };
    outcome result = outcome::would_block;
    chan_waiter* woken = nullptr;
  };
  // A send or receive that can complete now, completed.
  attempt try_send_locked(void* value) noexcept GORO_REQUIRES(lock_);
  attempt try_recv_locked(void* out) noexcept GORO_REQUIRES(lock_);
  waiter_queue& sendq() noexcept GORO_REQUIRES(lock_) { return sendq_; }
  waiter_queue& recvq() noexcept GORO_REQUIRES(lock_) { return recvq_; }
  // Whether the values are in a value_ring ("ring mode"); fixed at construction.
  bool ring_mode() const noexcept { return use_ring_; }
  // Ring mode: a select about to try a send (or receive) case on this channel, and then perhaps
  // wait, announces it before its try (the waiting side of "No lost wake-up"). No-op otherwise.
  void announce_sender() noexcept GORO_REQUIRES(lock_) {
    if (use_ring_) announce(send_waiting_);
  }
  void announce_receiver() noexcept GORO_REQUIRES(lock_) {
    if (use_ring_) announce(recv_waiting_);
  }
  // Ring mode: sets the waiting flags from the queues, at the end of a critical section. No-op
  // otherwise.
  void publish_waiting() noexcept GORO_REQUIRES(lock_) {
    if (!use_ring_) return;
    set_flag(send_waiting_, !sendq_.empty());
    set_flag(recv_waiting_, !recvq_.empty());
  }

 private:
  // On cache lines of its own (two: the bias, read-mostly, and the spinlock): a fiber spinning
  // for the lock on another core then reads only those, and the holder's writes to the fields
  // below do not each cost a transfer. Declared first, as the layout has it.
  alignas(cache_line_size) biased_lock lock_;
  alignas(cache_line_size) waiter_queue sendq_ GORO_GUARDED_BY(lock_);
  waiter_queue recvq_ GORO_GUARDED_BY(lock_);
  // Ring mode: "a sender (receiver) may be waiting". Written only under lock_, read lock-free
  // after every push (pop) and before every lock-free send. Stale true only costs taking lock_.
  std::atomic<bool> send_waiting_{false};
  std::atomic<bool> recv_waiting_{false};
  // Here, on the queues' line, which is written only when a party waits, and not on the next,
  // where refs_ is: in ring mode every operation reads use_ring_ and the flags, and a reference
  // taken or dropped on another core (a serve, a locked path) would cost them a transfer. (By
  // this reasoning; no difference was measured beyond the noise of code placement.)
  const bool use_ring_;  // ring mode: the values are in ring_, not buffer_
  const std::size_t capacity_;

  // The i-th buffered item, i < capacity_ (a compare, not a division: this is the hot path).
  void* slot_at(std::size_t i) const noexcept GORO_REQUIRES(lock_) {
    std::size_t at = head_at_ + i * mover_.size();
    if (at >= buffer_bytes_) at -= buffer_bytes_;
    return buffer_ + at;
  }
  // Completes the waiting receive r with *value (moved from); returns r's waiter, to unpark
  // after unlocking.
  waiter* hand_over(chan_waiter* r, void* value) noexcept {
    mover_.move_in(r->slot, value);
    r->ok = true;
    return r->w;
  }
  // The rest of send and recv, entered with lock_ held; return with it released.
  chan_result send_locked(void* value, const wait_limit& limit, bool non_blocking)
      GORO_RELEASE(lock_);
  chan_result recv_locked(void* out, const wait_limit& limit, bool non_blocking)
      GORO_RELEASE(lock_);
  // Queues a blocked operation on `queue` and parks within `limit`. Entered with lock_ held;
  // returns with it released. Ring (ring mode): *retry is set if a completer woke it to start
  // over, and the flags are published after a limit won; a template, so that the locked
  // buffer's waits pay for neither.
  template <bool Ring>
  chan_result wait_in(waiter_queue& queue, void* slot, const wait_limit& limit,
                      bool* retry = nullptr) GORO_RELEASE(lock_);
  // wait_in on the locked buffer with no limit, as the plain send and receive wait: the node
  // needs no claim and the park is gated, with no test of a limit (26 instructions per wait,
  // callgrind, pingpong).
  chan_result wait_plain(waiter_queue& queue, void* slot) GORO_RELEASE(lock_);

  // ---- ring mode (docs/channels.md, "The ring") ----
  // try_send_locked and try_recv_locked in ring mode. REQUIRES: not closed_ (for a send).
  attempt try_send_ring_locked(void* value) noexcept GORO_REQUIRES(lock_);
  attempt try_recv_ring_locked(void* out) noexcept GORO_REQUIRES(lock_);
  chan_result ring_send(void* value, const wait_limit& limit, bool non_blocking);
  chan_result ring_recv(void* out, const wait_limit& limit, bool non_blocking);
  chan_result ring_send_locked(void* value, const wait_limit& limit, bool non_blocking)
      GORO_RELEASE(lock_);
  chan_result ring_recv_locked(void* out, const wait_limit& limit, bool non_blocking)
      GORO_RELEASE(lock_);
  // A lock-free push (pop), between its CAS and its stamp's store: whether waiting receivers
  // (senders) must be served, as `flag` says, and if so a reference taken for the serve. After
  // the store a lock-free partner may take the value (or the room), see its operation done and
  // drop the last handle at once, so the flag is read before, and the serve holds its own
  // reference (docs/channels.md, "Lifetime"). seq_cst: the push's (pop's) CAS, then this load,
  // against a party about to wait, which stores its flag, then checks the ring ("No lost
  // wake-up"); the stamp's store plays no part in that argument.
  bool must_serve(const std::atomic<bool>& flag) noexcept {
    if (!flag.load(std::memory_order_seq_cst)) return false;
    retain();
    return true;
  }
  // Takes the lock, serves, publishes the flags, unlocks, unparks whom it completed, and drops
  // the reference must_serve took.
  __attribute__((noinline)) void serve_after_lock_free() noexcept;
  // Completes waiting receivers from the ring and waiting senders into it while it can
  // (dropping stale entries); returns `woken` (a list through next) with those parties
  // appended, to unpark after unlocking. Leaves the flags as they are: every critical section
  // in ring mode ends with publish_waiting(), so that a flag announced before a check stays set
  // until then.
  chan_waiter* serve_locked(chan_waiter* woken) noexcept GORO_REQUIRES(lock_);
  // A party about to wait: its flag set (seq_cst) before its last check of the ring. Skipped if
  // already set: that store, made under lock_, precedes ours in every order that matters.
  static void announce(std::atomic<bool>& flag) noexcept {
    // Relaxed: written only under lock_, which the caller holds.
    if (!flag.load(std::memory_order_relaxed)) flag.store(true, std::memory_order_seq_cst);
  }
  static void set_flag(std::atomic<bool>& flag, bool value) noexcept {
    if (flag.load(std::memory_order_relaxed) != value) {
      flag.store(value, std::memory_order_seq_cst);
    }
  }
  // Moves the oldest buffered item into `out` and frees its slot (head_at_ advances).
  void take_front(void* out) noexcept GORO_REQUIRES(lock_) {
    mover_.relocate(out, buffer_ + head_at_);
    head_at_ += mover_.size();
    if (head_at_ == buffer_bytes_) head_at_ = 0;
  }
  // Appends *value to the buffer. REQUIRES: size() < capacity_.
  void buffer_push(void* value) noexcept GORO_REQUIRES(lock_) {
    const std::size_t n = count_.load(std::memory_order_relaxed);  // lock_ orders it
    mover_.move_in(slot_at(n), value);
    count_.store(n + 1, std::memory_order_relaxed);
  }
  // Moves the oldest buffered item into `out`. REQUIRES: size() > 0.
  void buffer_pop(void* out) noexcept GORO_REQUIRES(lock_) {
    take_front(out);
    count_.store(count_.load(std::memory_order_relaxed) - 1, std::memory_order_relaxed);
  }

  const element_mover mover_;       // the elements' elem_ops, and how one moves (element_mover.hpp)
  const std::size_t buffer_bytes_;  // capacity_ * the element size in the locked buffer, else 0
  std::byte* buffer_ = nullptr;
  std::size_t head_at_ GORO_GUARDED_BY(lock_) = 0;  // the oldest item's offset in buffer_
  // Written under lock_ (which orders it for every reader that locks, hence relaxed there);
  // read lock-free only by size(), a snapshot like Go's len.
  std::atomic<std::size_t> count_{0};
  bool closed_ GORO_GUARDED_BY(lock_) = false;
  std::atomic<std::size_t> refs_{1};
  // The last handle gone: deletes the channel, or leaves it to the last parked select still to
  // lock it again (orphaned_).
  void destroy() noexcept;
  // Whether a select ever parked here (then destroy() looks at returning_selects_ under lock_;
  // other channels go without taking it).
  std::atomic<bool> select_parked_{false};
  std::uint32_t returning_selects_ GORO_GUARDED_BY(lock_) = 0;
  bool orphaned_ GORO_GUARDED_BY(lock_) = false;
  std::optional<value_ring> ring_;  // engaged exactly in ring mode
};

}  // namespace goro::detail
