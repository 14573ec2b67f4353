// SPDX-License-Identifier: Apache-2.0
// Layer: chan. May include: chan, sync, park, sched, stack, time, platform.
// chan_core: send, receive and close over a ring buffer and two waiter queues, all under the
// channel's lock, with Go's semantics (runtime/chan.go is the model; this is our code).
// The protocol and its invariants are in docs/channels.md.
//
// Invariants (under lock_):
//   - recvq_ non-empty implies count_ == 0 (receivers wait only on an empty buffer);
//   - sendq_ non-empty implies count_ == capacity_ (senders wait only on a full one);
//   - closed_ implies both queues hold only stale waiters (claimed by someone else);
//   - a chan_waiter is linked in at most one queue, and `queued` says whether it is.
// A completer claims a waiter before touching its slot, then unlocks, then unparks it, so the
// woken party sees the completed operation (claim and unpark are acq_rel). Nothing touches the
// channel after the unpark: the woken party may drop the last handle at once.
#include "chan/chan_core.hpp"

#include <cstring>

#include "goro/chan.hpp"
#include "goro/detail/check.hpp"
#include "goro/detail/thread_safety.hpp"
#include "goro/errors.hpp"
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
}  // namespace

// ---- what a handle calls (goro/detail/chan_core.hpp) ----------------------------------------

chan_core* make_chan(std::size_t capacity, const elem_ops& ops) {
  return new chan_core(capacity, ops);
}
void chan_retain(chan_core* c) noexcept { c->retain(); }
void chan_release(chan_core* c) noexcept { c->release(); }
// Each counted for runtime_metrics (sched/counters.hpp) at its entry.
chan_result chan_send(chan_core* c, void* value) {
  count_event(sched_event::chan_sends);
  return c->send(value);
}
chan_result chan_recv(chan_core* c, void* out) {
  count_event(sched_event::chan_receives);
  return c->recv(out);
}
chan_result chan_send(chan_core* c, void* value, const wait_limit& limit, bool non_blocking) {
  count_event(sched_event::chan_sends);
  return c->send(value, limit, non_blocking);
}
chan_result chan_recv(chan_core* c, void* out, const wait_limit& limit, bool non_blocking) {
  count_event(sched_event::chan_receives);
  return c->recv(out, limit, non_blocking);
}
void chan_close(chan_core* c) { c->close(); }
std::size_t chan_size(const chan_core* c) noexcept { return c->size(); }
std::size_t chan_capacity(const chan_core* c) noexcept { return c->capacity(); }

// ---- chan_core -----------------------------------------------------------------------------

chan_core::chan_core(std::size_t capacity, const elem_ops& ops) : ops_(ops), capacity_(capacity) {
  GORO_DCHECK(capacity_ <= max_chan_capacity(ops_.size));  // so capacity_ * ops_.size cannot wrap
  if (capacity_ > 0) {
    buffer_ =
        static_cast<std::byte*>(::operator new(capacity_* ops_.size, std::align_val_t(ops_.align)));
  }
}

chan_core::~chan_core() {
  const std::size_t n = count_.load(std::memory_order_relaxed);
  for (std::size_t i = 0; i < n; ++i) ops_.destroy(slot_at(i));
  if (buffer_ != nullptr) ::operator delete(buffer_, std::align_val_t(ops_.align));
}

waiter* chan_core::hand_over(chan_waiter* r, void* value) noexcept {
  move_in(r->slot, value);
  r->ok = true;
  return r->w;
}

chan_core::attempt chan_core::try_send_locked(void* value) noexcept {
  using enum attempt::outcome;
  if (closed_) return {closed, nullptr};
  if (chan_waiter* r = recvq_.pop_claimed()) return {done, hand_over(r, value)};
  if (count_.load(std::memory_order_relaxed) < capacity_) {
    buffer_push(value);
    return {done, nullptr};
  }
  return {would_block, nullptr};
}

chan_core::attempt chan_core::try_recv_locked(void* out) noexcept {
  using enum attempt::outcome;
  if (chan_waiter* s = sendq_.pop_claimed()) {
    if (capacity_ == 0) {
      move_in(out, s->slot);
    } else {
      // Full buffer: take the oldest item, and the sender's value takes the freed place at
      // the back, keeping FIFO order.
      take_front(out);
      move_in(slot_at(capacity_ - 1), s->slot);
    }
    s->ok = true;
    return {done, s->w};
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
    return wait_in(sendq_, value, no_limit);  // full, no receiver: wait
  }
  // A receiver is waiting. (Once closed, the queue holds only stale waiters, which
  // pop_claimed drops, and send_locked reports the close.)
  if (chan_waiter* r = recvq_.pop_claimed()) {
    waiter* wake = hand_over(r, value);
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
    if (!closed_) return wait_in(recvq_, out, no_limit);  // empty, no sender: wait
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
    if (a.wake != nullptr) a.wake->unpark();
    return chan_result::ok;
  }
  if (a.result == attempt::outcome::closed || non_blocking) {
    lock_.unlock();
    return a.result == attempt::outcome::closed ? chan_result::closed : chan_result::would_block;
  }
  return wait_in(sendq_, value, limit);
}

chan_result chan_core::recv_locked(void* out, const wait_limit& limit, bool non_blocking) {
  const attempt a = try_recv_locked(out);
  if (a.result != attempt::outcome::would_block) {
    lock_.unlock();
    if (a.wake != nullptr) a.wake->unpark();
    return a.result == attempt::outcome::done ? chan_result::ok : chan_result::closed;
  }
  if (non_blocking) {
    lock_.unlock();
    return chan_result::would_block;
  }
  return wait_in(recvq_, out, limit);
}

// Outside the analysis: on the gated path, lock_ is released by the park's arrival hook.
chan_result chan_core::wait_in(waiter_queue& queue, void* slot,
                               const wait_limit& limit) GORO_NO_THREAD_SAFETY_ANALYSIS {
  waiter w(&queue == &recvq_ ? chan_recv_wait : chan_send_wait, this);
  chan_waiter node;
  node.w = &w;
  node.slot = slot;
  // Without a limit only a completer holding lock_ can reach the node, and park_queued parks
  // gated (waiter::park_gated): the completer may skip the claim.
  node.needs_claim = !limit.unlimited();
  queue.push(&node);
  park_queued(w, lock_, limit);
  if (!node.needs_claim) return node.ok ? chan_result::ok : chan_result::closed;
  const claim_outcome winner = w.winner();
  if (!limit_won(winner)) return node.ok ? chan_result::ok : chan_result::closed;
  lock_.lock();
  queue.remove(&node);
  lock_.unlock();
  return winner == claim_outcome::timed_out ? chan_result::timed_out : chan_result::cancelled;
}

void chan_core::close() {
  lock_.lock();
  if (closed_) {
    lock_.unlock();
    throw closed_channel_error("goro::chan::close: close of closed channel");
  }
  closed_ = true;
  // Every blocked party completes empty-handed: ok stays false.
  chan_waiter* const receivers = recvq_.pop_all_claimed();
  chan_waiter* const senders = sendq_.pop_all_claimed();
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
