// SPDX-License-Identifier: Apache-2.0
// Layer: net. May include: net, park, sched, stack, time, platform.
// A socket's descriptor (net_fd.hpp): calls in flight against close, deadlines, the per-
// direction locks and the wait for readiness. Argument: docs/net.md.
#include "net/net_fd.hpp"

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <mutex>
#include <system_error>
#include <vector>

#include "goro/detail/check.hpp"
#include "goro/detail/spawn.hpp"
#include "platform/thread_mutex.hpp"
#include "sched/scheduler.hpp"
#include "sched/worker.hpp"

namespace goro::detail {

void throw_errno(int err, const char* what) {
  throw std::system_error(err, std::system_category(), std::string("goro::net: ") + what);
}

void throw_closed(const char* what) {
  throw std::system_error(std::make_error_code(std::errc::bad_file_descriptor),
                          std::string("goro::net: ") + what + ": use of closed network connection");
}

void throw_timed_out(const char* what) {
  throw std::system_error(std::make_error_code(std::errc::timed_out),
                          std::string("goro::net: ") + what + ": i/o timeout");  // as Go's
}

void throw_cancelled(const char* what) {
  throw std::system_error(std::make_error_code(std::errc::operation_canceled),
                          std::string("goro::net: ") + what + ": stop requested");
}

// ---- the descriptors of goro's sockets ----------------------------------------------------

namespace {

// Every open net_fd's descriptor, one bit each, indexed by descriptor. A socket registers with
// a poller only at its first wait, so epoll's EEXIST alone let a foreign wait through on a
// socket that had not waited yet, and the socket's own first wait then failed. The lock is
// taken once as a socket opens and once as it closes, each time beside a system call.
class socket_descriptors {
 public:
  void add(int fd) {
    const lock_guard lock(mu_);
    const std::size_t word = word_of(fd);
    if (word >= bits_.size()) bits_.resize(word + 1);
    bits_[word] |= bit_of(fd);
  }
  void remove(int fd) noexcept {
    const lock_guard lock(mu_);
    bits_[word_of(fd)] &= ~bit_of(fd);
  }
  bool contains(int fd) noexcept {
    if (fd < 0) return false;
    const lock_guard lock(mu_);
    const std::size_t word = word_of(fd);
    return word < bits_.size() && (bits_[word] & bit_of(fd)) != 0;
  }

 private:
  static std::size_t word_of(int fd) noexcept { return static_cast<std::size_t>(fd) / 64; }
  static std::uint64_t bit_of(int fd) noexcept { return std::uint64_t{1} << (fd % 64); }

  thread_mutex mu_;
  std::vector<std::uint64_t> bits_ GORO_GUARDED_BY(mu_);
};

// Never destroyed: a socket may close during static destruction.
socket_descriptors& open_sockets() {
  static socket_descriptors* const set = new socket_descriptors;
  return *set;
}

}  // namespace

bool is_socket_descriptor(int fd) noexcept { return open_sockets().contains(fd); }

namespace {

[[noreturn]] void throw_for(claim_outcome outcome, const char* what) {
  if (outcome == claim_outcome::timed_out) throw_timed_out(what);
  if (outcome == claim_outcome::cancelled) throw_cancelled(what);
  throw_closed(what);
}

bool limit_passed(const wait_limit& limit) noexcept {
  return limit.deadline != clock::time_point::max() && clock::now() >= limit.deadline;
}

// Parks on `r`'s direction `d` until readiness, a close, a deadline change, the limit's
// deadline or stop; returns the outcome claimed (docs/net.md, "A wait"). io_ready at once if an
// edge is kept in `ready`.
constexpr wait_reason io_read_wait{"I/O read", /*object_is_fd=*/true};
constexpr wait_reason io_write_wait{"I/O write", /*object_is_fd=*/true};
constexpr wait_reason io_turn_wait{"I/O turn"};  // behind another call in the same direction

// A socket's wait passes its direction's deadline word as `live_deadline`: read under r.lock, it
// sees any setter that came before (a setter stores, then takes r.lock to claim the waiter), so
// a deadline set between the call's start and its publishing the waiter is not missed.
claim_outcome wait_on_record(poll_record& r, io_direction d, wait_limit limit, epoll_poller& poller,
                             int fd, const std::atomic<clock::rep>* live_deadline = nullptr) {
  // The descriptor rides in the object pointer: the dump prints it as a number.
  waiter w(d == io_direction::read ? io_read_wait : io_write_wait,
           reinterpret_cast<const void*>(static_cast<std::intptr_t>(fd)));
  {
    lock_guard lock(r.lock);
    io_side& s = r.side(d);
    if (s.ready) {
      s.ready = false;
      return io_ready;
    }
    if (r.closing) return io_closed;
    if (live_deadline != nullptr) {
      // Relaxed: r.lock orders it after the setter's store (see above).
      limit.deadline =
          clock::time_point(clock::duration(live_deadline->load(std::memory_order_relaxed)));
    }
    if (limit.stop.stop_requested()) return claim_outcome::cancelled;
    if (limit_passed(limit)) return claim_outcome::timed_out;
    GORO_DCHECK(s.w == nullptr);  // one wait per direction: the caller holds its turn
    s.w = &w;
  }
  poller.add_waiter();
  scheduler* owner = poller.owner();
  if (owner == nullptr) {
    // The runtime is gone: nothing will poll. Take the waiter back and fail clearly.
    poller.remove_waiter();
    lock_guard lock(r.lock);
    if (r.side(d).w == &w) r.side(d).w = nullptr;
    return io_closed;
  }
  worker* self = worker::current();
  if (self == nullptr || !w.in_fiber() || &self->sched() != owner) {
    // Through with_owner: nothing keeps the scheduler alive for us. Should it be destroyed
    // first, detach() finds us counted and polls for us (docs/net.md, "When the runtime goes
    // first").
    poller.with_owner([](scheduler& s) { s.io_wait_started(); });
  }
  park_limited(w, limit);
  poller.remove_waiter();
  // Detached meanwhile: a thread of the poller's own polls while waits are in flight; this may
  // have been the last, so let it look again now rather than at the end of its period.
  if (poller.owner() == nullptr) poller.wake();
  {
    lock_guard lock(r.lock);
    if (r.side(d).w == &w) r.side(d).w = nullptr;
  }
  return w.winner();
}

}  // namespace

// ---- io_lock ------------------------------------------------------------------------------

claim_outcome io_lock::lock(wait_limit limit, const std::atomic<clock::rep>& deadline) noexcept {
  mu_.lock();
  if (!held_) {
    held_ = true;
    mu_.unlock();
    return granted;
  }
  // Read under mu_, which a deadline setter takes after its store (wake_queued): a deadline set
  // before we queue is the one we wait with; one set after wakes us.
  limit.deadline = clock::time_point(clock::duration(deadline.load(std::memory_order_relaxed)));
  sync_node node(io_turn_wait, this);
  sync_queue(head_, tail_).push_back(&node);
  park_queued(node.w, mu_, limit);  // releases mu_
  const claim_outcome outcome = node.w.winner();
  if (outcome != granted) {
    lock_guard lock(mu_);
    sync_queue(head_, tail_).remove(&node);
  }
  return outcome;
}

void io_lock::unlock() noexcept {
  sync_node* next = nullptr;
  {
    lock_guard lock(mu_);
    next = sync_queue(head_, tail_).pop_claimed(granted);
    if (next == nullptr) held_ = false;  // else handed over: held_ stays set
  }
  if (next != nullptr) next->w.unpark();
}

void io_lock::wake_queued(claim_outcome outcome) noexcept {
  claimed_batch<sync_node> queued;
  {
    lock_guard lock(mu_);
    queued = sync_queue(head_, tail_).pop_all_claimed(outcome);
  }
  unpark_all(queued.first);
}

// ---- net_fd -------------------------------------------------------------------------------

net_fd::net_fd(int fd, int family, socket_kind kind) : fd_(fd), family_(family), kind_(kind) {
  for (auto& d : deadline_) d.store(clock::time_point::max().time_since_epoch().count());
  try {
    open_sockets().add(fd_);
  } catch (...) {
    ::close(fd_);
    throw;
  }
  try {
    record_ = &acquire_poll_record();
  } catch (...) {
    open_sockets().remove(fd_);
    ::close(fd_);
    throw;
  }
}

// Registration at the first wait, not at creation: the descriptor then belongs to the runtime
// whose fiber waits on it. Edge-triggered registration reports the readiness the descriptor
// already has (the kernel polls it on insertion), so nothing is missed by registering late.
epoll_poller& net_fd::registered_poller() {
  if (epoll_poller* p = registered_.load(std::memory_order_acquire)) return *p;
  std::shared_ptr<epoll_poller> poller = epoll_poller::of(current_or_default_scheduler());
  std::lock_guard lock(register_mu_);
  // Relaxed: under register_mu_, which orders it after the registering store.
  if (epoll_poller* p = registered_.load(std::memory_order_relaxed)) return *p;
  poller->add(fd_, *record_);
  poller_ = std::move(poller);
  registered_.store(poller_.get(), std::memory_order_release);
  return *poller_;
}

void net_fd::release_handle() noexcept {
  close();
  release_life();
}

void net_fd::release_life() noexcept {
  // acq_rel: the last one out sees every other's writes before it frees the object.
  if (life_.fetch_sub(1, std::memory_order_acq_rel) == 1) delete this;
}

void net_fd::release_call() noexcept {
  if (state_.fetch_sub(1, std::memory_order_acq_rel) - 1 == closed_bit) destroy_descriptor();
}

bool net_fd::close() noexcept {
  // Held alive for our own length: the fiber we wake may destroy the handle at once. Relaxed:
  // the caller's handle keeps life_ above 0, and the release in release_life orders our accesses.
  life_.fetch_add(1, std::memory_order_relaxed);
  const bool closed = close_descriptor();
  release_life();
  return closed;
}

bool net_fd::close_descriptor() noexcept {
  // Counted as a call in flight for its own length: the last call out destroys the descriptor
  // and gives the record back to the pool, where a new descriptor may take it at once, so we
  // touch the record only while our count keeps the descriptor. (Without it, a read finishing
  // between our mark and our lock of the record freed the record, and `closing` landed on a
  // new connection's, which then failed as closed: NetAdversarial.CloseRacesSetDeadlineAndStop,
  // about 1 run in 25 under load.) Acquire, as a call's start.
  state_.fetch_add(1, std::memory_order_acquire);
  const std::uint64_t was = state_.fetch_or(closed_bit, std::memory_order_acq_rel);
  if ((was & closed_bit) != 0) {
    release_call();
    return false;
  }
  if (kind_ == socket_kind::listener) stop_listening();
  // A Unix socket's file goes with the close, as Go's UnixListener.Close removes it, not with
  // the last call out: a listener made again on the path at once must not lose its file then.
  if (!unlink_on_close_.empty()) ::unlink(unlink_on_close_.c_str());
  waiter* to_wake[2];
  {
    lock_guard lock(record_->lock);
    record_->closing = true;
    to_wake[0] = record_->claim_waiter(io_direction::read, io_closed);
    to_wake[1] = record_->claim_waiter(io_direction::write, io_closed);
  }
  for (waiter* w : to_wake) {
    if (w != nullptr) w->unpark();
  }
  // Callers queued on a direction's lock fail when they get it: the wait finds `closing`.
  release_call();  // the last one out, perhaps us, destroys the descriptor
  return true;
}

// By the last one out: after it no call uses fd_ or record_. A call that starts after the close
// and fails brings the count to zero again, so only the first one here acts.
void net_fd::destroy_descriptor() noexcept {
  if (destroyed_.exchange(true, std::memory_order_acq_rel)) return;
  if (epoll_poller* p = registered_.load(std::memory_order_acquire)) p->remove(fd_);
  open_sockets().remove(fd_);  // before the number can be given to a descriptor not ours
  ::close(fd_);
  release_poll_record(*record_);
}

// A listener stops listening at close(), not when its last call is out: Go's Close waits for
// the descriptor's end, so a dial after it is refused. Here a woken accept may still hold the
// descriptor, so its number is pointed (dup3) at a socket that listens on nothing: this
// descriptor's reference to the listening socket goes at once, while the calls in flight keep
// a number that names no one else's file until the last one out closes it (an accept4 there
// fails with EINVAL, which accept reports as the close). Copies of the socket (dup, fork,
// SCM_RIGHTS: a graceful restart's) keep listening, which shutdown(2) would have stopped. The
// registration goes first, while the number still names the socket, under register_mu_ so that
// no first wait registers the socket meanwhile. If no placeholder can be made, the listener
// listens until its last call is out, as before.
void net_fd::stop_listening() noexcept {
  const int placeholder = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (placeholder < 0) return;
  {
    std::lock_guard lock(register_mu_);
    // Relaxed: under register_mu_, which orders it after the registering store.
    if (epoll_poller* p = registered_.load(std::memory_order_relaxed)) p->remove(fd_);
    while (::dup3(placeholder, fd_, O_CLOEXEC) < 0 && errno == EINTR) {
    }
  }
  ::close(placeholder);
}

void net_fd::set_deadline(io_direction d, clock::time_point t) noexcept {
  // Relaxed: waits read it under record_->lock or the io_lock's spinlock, both taken below after
  // this store; check_deadline's unlocked read may miss a change racing with the call's start.
  deadline_[static_cast<int>(d)].store(t.time_since_epoch().count(), std::memory_order_relaxed);
  // A wait parked now moves to the new deadline: it is woken and waits again. One that parks
  // later reads the deadline under the record's lock, after ours.
  waiter* w;
  {
    lock_guard lock(record_->lock);
    w = record_->claim_waiter(d, io_deadline_changed);
  }
  if (w != nullptr) w->unpark();
  // And calls queued for their turn, which wait with the deadline they found.
  locks_[static_cast<int>(d)].wake_queued(io_deadline_changed);
}

void net_fd::drained(io_direction d, std::uint32_t tick) noexcept {
  lock_guard lock(record_->lock);
  record_->note_drained(d, tick);
}

void net_fd::check_deadline(io_direction d, const char* what) const {
  const clock::time_point t = deadline(d);
  if (t != clock::time_point::max() && clock::now() >= t) throw_timed_out(what);
}

void net_fd::wait(io_direction d, const std::stop_token& stop, const char* what) {
  for (;;) {
    const claim_outcome outcome =
        wait_on_record(*record_, d, {clock::time_point::max(), stop}, registered_poller(), fd_,
                       &deadline_[static_cast<int>(d)]);
    if (outcome == io_ready) return;
    if (outcome != io_deadline_changed) throw_for(outcome, what);
  }
}

// ---- calls and turns ----------------------------------------------------------------------

net_fd::call::call(net_fd& fd, const char* what) : fd_(fd) {
  fd.life_.fetch_add(1, std::memory_order_relaxed);  // the caller's handle keeps it above 0
  // Acquire: a close that came before is seen, and so is everything before it.
  if ((fd.state_.fetch_add(1, std::memory_order_acquire) & closed_bit) != 0) {
    // Bringing the count back may make us the last one out (a call that started before the
    // close may have finished meanwhile); destroy_descriptor runs once whoever gets there.
    fd.release_call();
    fd.release_life();
    throw_closed(what);
  }
}

net_fd::call::~call() {
  fd_.release_call();
  fd_.release_life();
}

net_fd::turn::turn(net_fd& fd, io_direction d, const std::stop_token& stop, const char* what)
    : lock_(fd.locks_[static_cast<int>(d)]) {
  const std::atomic<clock::rep>& deadline = fd.deadline_[static_cast<int>(d)];
  claim_outcome outcome = lock_.lock({clock::time_point::max(), stop}, deadline);
  while (outcome == io_deadline_changed)
    outcome = lock_.lock({clock::time_point::max(), stop}, deadline);
  if (outcome != granted) throw_for(outcome, what);
  // A close while we queued for our turn: fail as a call that started after it would, even if
  // the descriptor (held open by our call) has data.
  if (!fd.is_open()) {
    lock_.unlock();
    throw_closed(what);
  }
}

// ---- descriptors goro does not own --------------------------------------------------------

void wait_foreign(int fd, io_direction d, const wait_limit& limit) {
  const char* const what = d == io_direction::read ? "wait_readable" : "wait_writable";
  // Before epoll would see it: a socket that has not waited yet is in no epoll set.
  if (is_socket_descriptor(fd)) throw_goro_socket(what);
  std::shared_ptr<epoll_poller> poller = epoll_poller::of(current_or_default_scheduler());
  poll_record& r = poller->join_foreign(fd, d);
  const claim_outcome outcome = wait_on_record(r, d, limit, *poller, fd);
  poller->leave_foreign(fd, d);
  if (outcome != io_ready) throw_for(outcome, what);
}

}  // namespace goro::detail
