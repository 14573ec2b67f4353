// SPDX-License-Identifier: Apache-2.0
// Layer: chan. May include: chan, sync, park, sched, stack, time, platform.
// chan_core: send, receive and close over a ring buffer and two waiter queues, all under the
// channel's lock, with Go's semantics (runtime/chan.go is the model; this is our code).
// The protocol and its invariants are in docs/channels.md.
//
// Invariants (under lock_), with the buffer the locked ring (buffer_, head_at_, count_):
//   - recvq_ non-empty implies count_ == 0 (receivers wait only on an empty buffer);
//   - sendq_ non-empty implies count_ == capacity_ (senders wait only on a full one);
//   - closed_ implies both queues hold only stale waiters (claimed by someone else);
//   - a chan_waiter is linked in at most one queue, and `queued` says whether it is.
// A completer claims a waiter before touching its slot, then unlocks, then unparks it, so the
// woken party sees the completed operation (claim and unpark are acq_rel). Nothing touches the
// channel after the unpark: the woken party may drop the last handle at once.
// In ring mode (the values in a value_ring, lock-free) the invariants are those of
// docs/channels.md, "The ring": a live waiter in recvq_ (sendq_) only while the ring was empty
// (full) at a check made under lock_ after recv_waiting_ (send_waiting_) was set, each flag set
// while its queue is non-empty, and every value in exactly one place.
#include "chan/chan_core.hpp"

#include <cstdlib>
#include <cstring>
#include <exception>

#include "goro/chan.hpp"
#include "goro/detail/check.hpp"
#include "goro/detail/thread_safety.hpp"
#include "goro/errors.hpp"
#include "platform/fatal.hpp"
#include "sched/scheduler.hpp"
#include "sched/worker.hpp"

namespace goro::detail {

static_assert(sizeof(chan_core) <= chan_core_size_bound, "max_chan_capacity counts on it");

namespace {
// What a blocked channel operation waits on, for the diagnostics (Go's wait reasons).
constexpr wait_reason chan_recv_wait{"chan receive"};
constexpr wait_reason chan_send_wait{"chan send"};
constexpr wait_reason chan_nil_wait{"chan send or receive (nil chan)"};
}  // namespace

namespace {
// Shared by every plain send and receive, so the hot path builds no stop_token.
const wait_limit no_limit{};

// GORO_CHAN_RING: 1 (the default, and what an unset or malformed value means) puts a buffered
// channel made on a runtime of several workers in the ring; 0 puts none there, and 2 every
// buffered channel (for the tests, and to measure the ring on one worker).
int ring_choice() noexcept {
  static const int choice = [] {
    const char* v = std::getenv("GORO_CHAN_RING");
    if (v == nullptr || v[0] < '0' || v[0] > '2' || v[1] != '\0') return 1;
    return v[0] - '0';
  }();
  return choice;
}

// Whether a buffered channel of this capacity, made now, keeps its values in a value_ring: where
// more than one worker may run its parties (docs/channels.md, "The ring"). On one worker the
// locked buffer, under a biased lock, is cheaper.
// The ring writes a stamp into every slot when it is made; the locked buffer's allocation is
// left untouched until used, as Go's make leaves it. Past this capacity the ring's eager stamps
// cost more than it can save: chan<int>(100'000'000) on two workers took 5.8 s and 1.5 GB at
// once, where the locked buffer takes 0.1 ms and what its values use.
constexpr std::size_t ring_capacity_limit = std::size_t{1} << 16;
static_assert(ring_capacity_limit <= value_ring::max_capacity);

bool ring_wanted(std::size_t capacity, std::size_t elem_size) noexcept {
  if (capacity == 0 || capacity > ring_capacity_limit) return false;
  // The ring's slots are larger than the values (a stamp, and padding): stay far from overflow.
  if (elem_size > (static_cast<std::size_t>(PTRDIFF_MAX) >> 2) / capacity) return false;
  const int choice = ring_choice();
  if (choice != 1) return choice == 2;
  worker* const w = worker::current();
  return w != nullptr ? w->sched().worker_count() > 1 : multi_worker_runtime_alive();
}
}  // namespace

// ---- what a handle calls (goro/detail/chan_core.hpp) ----------------------------------------

void element_move_threw() noexcept {
  try {
    throw;
  } catch (const std::exception& e) {
    fatal("a channel element's move constructor threw inside the channel: %s", e.what());
  } catch (...) {
    fatal("a channel element's move constructor threw inside the channel: not a std::exception");
  }
}

chan_core* make_chan(std::size_t capacity, const elem_ops& ops) {
  return new chan_core(capacity, ops);
}
void chan_retain(chan_core* c) noexcept { c->retain(); }
void chan_release(chan_core* c) noexcept { c->release(); }
// Each counted for runtime_metrics (sched/counters.hpp) at its entry. The mode is tested here,
// before either path's frame is set up (a test inside send() cost 13 instructions per
// operation in ring mode, callgrind).
chan_result chan_send(chan_core* c, void* value) {
  count_event(sched_event::chan_sends);
  return c->use_ring_ ? c->ring_send(value, no_limit, false) : c->send(value);
}
chan_result chan_recv(chan_core* c, void* out) {
  count_event(sched_event::chan_receives);
  return c->use_ring_ ? c->ring_recv(out, no_limit, false) : c->recv(out);
}
chan_result chan_send(chan_core* c, void* value, const wait_limit& limit, bool non_blocking) {
  count_event(sched_event::chan_sends);
  return c->use_ring_ ? c->ring_send(value, limit, non_blocking)
                      : c->send(value, limit, non_blocking);
}
chan_result chan_recv(chan_core* c, void* out, const wait_limit& limit, bool non_blocking) {
  count_event(sched_event::chan_receives);
  return c->use_ring_ ? c->ring_recv(out, limit, non_blocking) : c->recv(out, limit, non_blocking);
}
void chan_close(chan_core* c) { c->close(); }
std::size_t chan_size(const chan_core* c) noexcept { return c->size(); }
std::size_t chan_capacity(const chan_core* c) noexcept { return c->capacity(); }

// ---- chan_core -----------------------------------------------------------------------------

chan_core::chan_core(std::size_t capacity, const elem_ops& ops)
    : use_ring_(ring_wanted(capacity, ops.size)),
      capacity_(capacity),
      mover_(ops),
      buffer_bytes_(use_ring_ ? 0 : capacity * ops.size) {
  GORO_DCHECK(capacity_ <= max_chan_capacity(ops.size));  // so capacity_ * ops.size cannot wrap
  if (use_ring_) {
    ring_.emplace(capacity_, ops);
  } else if (capacity_ > 0) {
    buffer_ = static_cast<std::byte*>(
        ::operator new(buffer_bytes_, std::align_val_t(mover_.ops().align)));
  }
}

void chan_core::destroy() noexcept {
  // Relaxed: a select that parked here set it before its park released lock_, and whatever let
  // the last handle go came after that park (select_will_return); refs_'s acq_rel orders the
  // other handles' last uses before us.
  if (select_parked_.load(std::memory_order_relaxed)) {
    lock_.lock();
    orphaned_ = returning_selects_ != 0;
    const bool left_to_a_select = orphaned_;
    lock_.unlock();
    if (left_to_a_select) return;  // the last select to lock it again deletes it
  }
  delete this;
}

chan_core::~chan_core() {
  // In ring mode ring_'s destructor destroys what it holds; count_ stays 0.
  const std::size_t n = count_.load(std::memory_order_relaxed);
  for (std::size_t i = 0; i < n; ++i) mover_.ops().destroy(slot_at(i));
  if (buffer_ != nullptr) ::operator delete(buffer_, std::align_val_t(mover_.ops().align));
}

chan_core::attempt chan_core::try_send_locked(void* value) noexcept {
  using enum attempt::outcome;
  if (closed_) return {closed, nullptr};
  if (use_ring_) return try_send_ring_locked(value);
  if (chan_waiter* r = recvq_.pop_claimed()) {
    hand_over(r, value);
    r->next = nullptr;
    return {done, r};
  }
  if (count_.load(std::memory_order_relaxed) < capacity_) {
    buffer_push(value);
    return {done, nullptr};
  }
  return {would_block, nullptr};
}

chan_core::attempt chan_core::try_recv_locked(void* out) noexcept {
  using enum attempt::outcome;
  if (use_ring_) return try_recv_ring_locked(out);
  if (chan_waiter* s = sendq_.pop_claimed()) {
    if (capacity_ == 0) {
      mover_.move_in(out, s->slot);
    } else {
      // Full buffer: take the oldest item, and the sender's value takes the freed place at
      // the back, keeping FIFO order.
      take_front(out);
      mover_.move_in(slot_at(capacity_ - 1), s->slot);
    }
    s->ok = true;
    s->next = nullptr;
    return {done, s};
  }
  if (count_.load(std::memory_order_relaxed) > 0) {
    buffer_pop(out);
    return {done, nullptr};
  }
  if (closed_) return {closed, nullptr};
  return {would_block, nullptr};
}

// Plain send and receive: the commonest cases are tried inline first, each with the fewest
// checks that decide it: a buffered item that neither wakes nor waits (mpmc spends most of its
// time there), a hand-off to a waiting receiver, and waiting; then the general path
// (docs/channels.md, "Waiting protocol", has the measurements).
chan_result chan_core::send(void* value) {
  lock_.lock();
  // Relaxed: lock_ orders count_ for every party that takes it.
  const std::size_t n = count_.load(std::memory_order_relaxed);
  if (!closed_ && recvq_.empty()) {  // recvq_ is empty when n > 0 anyway
    if (n < capacity_) {
      buffer_push(value);
      lock_.unlock();
      return chan_result::ok;
    }
    return wait_plain(sendq_, value);  // full, no receiver: wait
  }
  // A receiver is waiting. (Once closed, the queue holds only stale waiters, which
  // pop_claimed drops, and send_locked reports the close.)
  if (chan_waiter* r = recvq_.pop_claimed()) {
    waiter* const wake = hand_over(r, value);
    lock_.unlock();
    wake->unpark();
    return chan_result::ok;
  }
  return send_locked(value, no_limit, false);
}

chan_result chan_core::recv(void* out) {
  lock_.lock();
  if (sendq_.empty()) {
    if (count_.load(std::memory_order_relaxed) > 0) {  // relaxed: as in send
      buffer_pop(out);
      lock_.unlock();
      return chan_result::ok;
    }
    if (!closed_) return wait_plain(recvq_, out);  // empty, no sender: wait
  }
  return recv_locked(out, no_limit, false);
}

chan_result chan_core::send(void* value, const wait_limit& limit, bool non_blocking) {
  lock_.lock();
  return send_locked(value, limit, non_blocking);
}

chan_result chan_core::recv(void* out, const wait_limit& limit, bool non_blocking) {
  lock_.lock();
  return recv_locked(out, limit, non_blocking);
}

chan_result chan_core::send_locked(void* value, const wait_limit& limit, bool non_blocking) {
  const attempt a = try_send_locked(value);
  if (a.result == attempt::outcome::done) {
    lock_.unlock();
    unpark_all(a.woken);
    return chan_result::ok;
  }
  if (a.result == attempt::outcome::closed || non_blocking) {
    lock_.unlock();
    return a.result == attempt::outcome::closed ? chan_result::closed : chan_result::would_block;
  }
  return wait_in<false>(sendq_, value, limit);
}

chan_result chan_core::recv_locked(void* out, const wait_limit& limit, bool non_blocking) {
  const attempt a = try_recv_locked(out);
  if (a.result != attempt::outcome::would_block) {
    lock_.unlock();
    unpark_all(a.woken);
    return a.result == attempt::outcome::done ? chan_result::ok : chan_result::closed;
  }
  if (non_blocking) {
    lock_.unlock();
    return chan_result::would_block;
  }
  return wait_in<false>(recvq_, out, limit);
}

// Outside the analysis: lock_ is released by the park's arrival hook.
chan_result chan_core::wait_plain(waiter_queue& queue, void* slot) GORO_NO_THREAD_SAFETY_ANALYSIS {
  waiter w(&queue == &recvq_ ? chan_recv_wait : chan_send_wait, this);
  chan_waiter node;
  node.w = &w;
  node.slot = slot;
  node.needs_claim = false;  // only a completer holding lock_ can reach the node
  queue.push(&node);
  w.park_gated(unlock_after_park<biased_lock>, &lock_);
  return node.ok ? chan_result::ok : chan_result::closed;
}

// Outside the analysis: on the gated path, lock_ is released by the park's arrival hook.
template <bool Ring>
chan_result chan_core::wait_in(waiter_queue& queue, void* slot, const wait_limit& limit,
                               bool* retry) GORO_NO_THREAD_SAFETY_ANALYSIS {
  waiter w(&queue == &recvq_ ? chan_recv_wait : chan_send_wait, this);
  chan_waiter node;
  node.w = &w;
  node.slot = slot;
  // Without a limit only a completer holding lock_ can reach the node, and park_queued parks
  // gated (waiter::park_gated): the completer may skip the claim.
  node.needs_claim = !limit.unlimited();
  queue.push(&node);
  park_queued(w, lock_, limit);
  if constexpr (Ring) *retry = node.retry;
  if (!node.needs_claim) return node.ok ? chan_result::ok : chan_result::closed;
  const claim_outcome winner = w.winner();
  if (!limit_won(winner)) return node.ok ? chan_result::ok : chan_result::closed;
  lock_.lock();
  queue.remove(&node);
  if constexpr (Ring) publish_waiting();
  lock_.unlock();
  return winner == claim_outcome::timed_out ? chan_result::timed_out : chan_result::cancelled;
}

// ---- ring mode (docs/channels.md, "The ring") ----------------------------------------------

// ring_send and ring_recv are out of line, so that send() and recv() on the locked buffer stay as
// they were but for one test.
__attribute__((noinline)) chan_result chan_core::ring_send(void* value, const wait_limit& limit,
                                                           bool non_blocking) {
  // Relaxed: a sender whose blocking happened-before this send stored the flag before, and
  // coherence makes us read it (or later); one read stale is concurrent with that blocking and
  // may pass it, as in Go. With senders waiting, queue behind them, under the lock.
  if (!send_waiting_.load(std::memory_order_relaxed)) {
    bool serve = false;
    const value_ring::push_result r =
        ring_->try_push(value, [this, &serve]() noexcept { serve = must_serve(recv_waiting_); });
    if (r == value_ring::push_result::ok) {
      if (serve) serve_after_lock_free();
      return chan_result::ok;
    }
    if (r == value_ring::push_result::full && non_blocking) return chan_result::would_block;
    // Full, or closed (the locked path reports it, having ordered the close before).
  }
  const ring_reference hold(this);
  lock_.lock();
  return ring_send_locked(value, limit, non_blocking);
}

chan_result chan_core::ring_send_locked(void* value, const wait_limit& limit, bool non_blocking) {
  for (;;) {
    if (closed_) {
      publish_waiting();
      lock_.unlock();
      return chan_result::closed;
    }
    announce(send_waiting_);  // before the last check: "No lost wake-up"
    const attempt a = try_send_locked(value);
    if (a.result == attempt::outcome::done || non_blocking || a.woken != nullptr) {
      publish_waiting();
      lock_.unlock();
      unpark_all(a.woken);
      if (a.result == attempt::outcome::done) return chan_result::ok;
      if (non_blocking) return chan_result::would_block;
      lock_.lock();  // served older senders but found no room: look again (rare)
      continue;
    }
    // Full, and any senders queued before us wait for a full ring too: each slot freed since
    // their last check is owed a serve, which takes them (and then us) in order.
    bool retry = false;
    const chan_result r = wait_in<true>(sendq_, value, limit, &retry);
    if (!retry) return r;
    lock_.lock();
  }
}

__attribute__((noinline)) chan_result chan_core::ring_recv(void* out, const wait_limit& limit,
                                                           bool non_blocking) {
  bool serve = false;
  switch (ring_->try_pop(out, [this, &serve]() noexcept { serve = must_serve(send_waiting_); })) {
    case value_ring::pop_result::ok:
      if (serve) serve_after_lock_free();
      return chan_result::ok;
    case value_ring::pop_result::closed: return chan_result::closed;
    case value_ring::pop_result::empty: break;
  }
  // Relaxed: a hint. A waiting sender (whose value may be taken directly, the ring being
  // empty) is looked for under the lock; without one, a non-blocking receive is done.
  if (non_blocking && !send_waiting_.load(std::memory_order_relaxed)) {
    return chan_result::would_block;
  }
  const ring_reference hold(this);
  lock_.lock();
  return ring_recv_locked(out, limit, non_blocking);
}

chan_result chan_core::ring_recv_locked(void* out, const wait_limit& limit, bool non_blocking) {
  for (;;) {
    if (!non_blocking) announce(recv_waiting_);  // before the last check: "No lost wake-up"
    const attempt a = try_recv_locked(out);
    if (a.result != attempt::outcome::would_block) {
      publish_waiting();  // ends the critical section
      lock_.unlock();
      unpark_all(a.woken);
      return a.result == attempt::outcome::done ? chan_result::ok : chan_result::closed;
    }
    if (non_blocking) {
      publish_waiting();
      lock_.unlock();
      return chan_result::would_block;
    }
    bool retry = false;
    const chan_result r = wait_in<true>(recvq_, out, limit, &retry);
    if (!retry) return r;
    lock_.lock();
  }
}

// Out of line, so that the locked buffer's paths (and their register use) stay as they were.
__attribute__((noinline)) chan_core::attempt chan_core::try_send_ring_locked(void* value) noexcept {
  using enum attempt::outcome;
  // Behind the senders already waiting, every value passing through the ring, so that none
  // overtakes a completed send's value there. Senders still queued after a serve (which drops
  // the stale ones) wait for a full ring.
  chan_waiter* const woken = serve_locked(nullptr);
  if (sendq_.empty() && ring_->try_push(value) == value_ring::push_result::ok) {
    return {done, serve_locked(woken)};
  }
  return {would_block, woken};
}

__attribute__((noinline)) chan_core::attempt chan_core::try_recv_ring_locked(void* out) noexcept {
  using enum attempt::outcome;
  switch (ring_->try_pop(out)) {
    case value_ring::pop_result::ok: return {done, serve_locked(nullptr)};
    case value_ring::pop_result::closed: return {closed, nullptr};
    case value_ring::pop_result::empty: break;
  }
  // The ring is empty, so no completed send is older than a waiting sender's: take its value
  // directly (the others, if any, then go into the ring).
  if (chan_waiter* s = sendq_.pop_claimed()) {
    mover_.move_in(out, s->slot);
    s->ok = true;
    s->next = nullptr;
    return {done, serve_locked(s)};
  }
  return {would_block, nullptr};
}

void chan_core::serve_after_lock_free() noexcept {
  lock_.lock();
  chan_waiter* const woken = serve_locked(nullptr);
  publish_waiting();
  lock_.unlock();
  unpark_all(woken);
  release();  // must_serve's reference; the channel may go with it
}

chan_waiter* chan_core::serve_locked(chan_waiter* woken) noexcept {
  chan_waiter* first = woken;
  chan_waiter* last = woken;
  while (last != nullptr && last->next != nullptr) last = last->next;
  auto complete = [&](chan_waiter* n) noexcept {
    n->next = nullptr;
    (last != nullptr ? last->next : first) = n;
    last = n;
  };
  // A waiter claimed for nothing (a lock-free party took the value, or the room, first): a
  // plain blocking one, whose claim changed nothing, keeps its place; any other starts over.
  auto give_back = [&](waiter_queue& queue, chan_waiter* n) noexcept {
    if (!n->needs_claim) {
      queue.push_front(n);
    } else {
      n->retry = true;
      complete(n);
    }
  };
  // Receivers are claimed only while the ring looks non-empty, and senders while it looks not
  // full: a claim on a ring seen empty would mostly wake the receiver for nothing (retry). A
  // look that misses a value just pushed is safe: that push's must_serve sees recv_waiting
  // (set since the receiver queued) and serves it.
  for (bool progress = true; progress;) {
    progress = false;
    while (ring_->size() > 0) {
      chan_waiter* const r = recvq_.pop_claimed();
      if (r == nullptr) break;
      if (ring_->try_pop(r->slot) != value_ring::pop_result::ok) {
        give_back(recvq_, r);
        break;
      }
      r->ok = true;
      complete(r);
      progress = true;
    }
    while (ring_->size() < capacity_) {
      chan_waiter* const s = sendq_.pop_claimed();
      if (s == nullptr) break;
      if (ring_->try_push(s->slot) != value_ring::push_result::ok) {
        give_back(sendq_, s);  // full: closed cannot be, the lock being held and closed_ clear
        break;
      }
      s->ok = true;
      complete(s);
      progress = true;
    }
  }
  return first;
}

void chan_core::close() {
  // A receiver that sees the mark lock-free may drop the channel before we unlock.
  const ring_reference hold(this);
  lock_.lock();
  if (closed_) {
    lock_.unlock();
    throw closed_channel_error("goro::chan::close: close of closed channel");
  }
  closed_ = true;
  if (use_ring_) ring_->close();  // no push succeeds from here on
  // Every blocked party completes empty-handed (ok stays false); in ring mode receivers first
  // take what the ring still holds.
  chan_waiter* const receivers = recvq_.pop_all_claimed();
  chan_waiter* const senders = sendq_.pop_all_claimed();
  if (use_ring_) {
    for (chan_waiter* r = receivers; r != nullptr; r = r->next) {
      r->ok = ring_->try_pop(r->slot) == value_ring::pop_result::ok;
    }
    publish_waiting();
  }
  lock_.unlock();
  unpark_all(receivers);
  unpark_all(senders);
}

chan_result wait_on_nil(const wait_limit& limit, bool non_blocking) {
  if (non_blocking) return chan_result::would_block;
  waiter w(chan_nil_wait, nullptr);  // nobody can ever complete an operation on a nil channel
  park_limited(w, limit);
  return w.winner() == claim_outcome::timed_out ? chan_result::timed_out : chan_result::cancelled;
}

}  // namespace goro::detail
