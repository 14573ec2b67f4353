// SPDX-License-Identifier: Apache-2.0
// Layer: net. May include: net, park, sched, stack, time, platform.
// A socket's descriptor as goro holds it: the counts that let close() race with calls in flight
// (Go's fdMutex), the per-direction deadlines and locks, and the wait for readiness that every
// blocking call makes on EAGAIN. The protocol and its argument: docs/net.md, "The descriptor
// record" and "Close while calls wait".
//
// Invariants:
//   - state_ is closed_bit | the number of calls in flight. A call increments it before using
//     fd_ and fails if closed_bit was set; so once closed_bit is set no call starts.
//   - fd_ is closed, unregistered and record_ returned to the pool exactly once (destroyed_):
//     by whoever brings state_ to closed_bit with nothing in flight (close(), which counts
//     itself in flight while it uses record_, or a call out).
//   - life_ counts the handle (until its destructor) plus the calls in flight; whoever brings it
//     to 0 frees the object, after the descriptor's release above.
//   - A direction's waiter in record_ belongs to the call holding that direction's io_lock.
//   - fd_ is in at most one epoll instance, registered_'s, from the first wait on.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <stop_token>
#include <string>

#include "goro/detail/spinlock.hpp"
#include "goro/detail/thread_safety.hpp"
#include "net/epoll_poller.hpp"
#include "net/poll_record.hpp"
#include "park/park.hpp"
#include "park/sync_queue.hpp"

namespace goro::detail {

// [[noreturn]] helpers that throw the std::system_error the API promises.
[[noreturn]] void throw_errno(int err, const char* what);
[[noreturn]] void throw_closed(const char* what);
[[noreturn]] void throw_timed_out(const char* what);
[[noreturn]] void throw_cancelled(const char* what);

// Whether `fd` is the descriptor of an open goro socket (a net_fd's, from its construction to
// the close of the descriptor): the waits for descriptors goro does not own refuse those
// (wait_foreign). Any thread.
bool is_socket_descriptor(int fd) noexcept;

// One call at a time per direction, first come first served; waits honour the call's limit.
// Uncontended, one spinlock round trip each way.
class io_lock {
 public:
  // Returns the claim that ended the wait: granted, or claim_outcome::timed_out / cancelled.
  // `limit`'s deadline is replaced by `deadline` (a socket direction's deadline word), read
  // under the lock's own spinlock.
  claim_outcome lock(wait_limit limit, const std::atomic<clock::rep>& deadline) noexcept;
  void unlock() noexcept;
  // Wakes every call queued for its turn with `outcome` (a deadline changed: they queue again
  // with the new one).
  void wake_queued(claim_outcome outcome) noexcept;

 private:
  spinlock mu_;
  bool held_ GORO_GUARDED_BY(mu_) = false;
  sync_node* head_ GORO_GUARDED_BY(mu_) = nullptr;
  sync_node* tail_ GORO_GUARDED_BY(mu_) = nullptr;
};

enum class socket_kind : std::uint8_t { stream, listener, datagram };

class net_fd {
 public:
  // Takes ownership of `fd` (non-blocking). It is registered with a poller at its first wait:
  // the poller of the waiting fiber's runtime (the default runtime's, off fibers), so a socket
  // made on a plain thread is polled by the runtime whose fibers use it.
  net_fd(int fd, int family, socket_kind kind);
  net_fd(const net_fd&) = delete;
  net_fd& operator=(const net_fd&) = delete;

  // The handle is gone: closes if open, and frees the object once no call is in flight.
  void release_handle() noexcept;

  int fd() const noexcept { return fd_; }
  int family() const noexcept { return family_; }
  socket_kind kind() const noexcept { return kind_; }
  bool is_open() const noexcept {
    return (state_.load(std::memory_order_acquire) & closed_bit) == 0;
  }

  // Closes: no call starts afterwards, blocked ones fail with bad_file_descriptor, and the last
  // one out closes the descriptor. Returns false if it was closed already.
  bool close() noexcept;
  // A Unix listener's socket file, removed at close (as Go does).
  void unlink_on_close(std::string path) { unlink_on_close_ = std::move(path); }

  void set_deadline(io_direction d, clock::time_point t) noexcept;
  clock::time_point deadline(io_direction d) const noexcept {
    return clock::time_point(
        // Relaxed: see set_deadline; waits read it again under a lock.
        clock::duration(deadline_[static_cast<int>(d)].load(std::memory_order_relaxed)));
  }

  // A call in flight: holds the descriptor open and the object alive; throws
  // bad_file_descriptor if closed. `what` names the operation in errors.
  class call {
   public:
    call(net_fd& fd, const char* what);
    ~call();
    call(const call&) = delete;
    call& operator=(const call&) = delete;

   private:
    net_fd& fd_;
  };

  // The calling call's turn on direction `d`, for the length of its scope; throws on the
  // limit, or if closed meanwhile.
  class turn {
   public:
    turn(net_fd& fd, io_direction d, const std::stop_token& stop, const char* what);
    ~turn() { lock_.unlock(); }
    turn(const turn&) = delete;
    turn& operator=(const turn&) = delete;

   private:
    io_lock& lock_;
  };

  // Throws timed_out if direction d's deadline has passed (a call fails then even if it would
  // not block, as in Go).
  void check_deadline(io_direction d, const char* what) const;

  // Waits until direction `d` may be ready (then the caller retries its system call); throws
  // on the deadline, a stop request or a close. REQUIRES: a call and a turn on `d`.
  void wait(io_direction d, const std::stop_token& stop, const char* what);

  // Skipping the system call that would fail (docs/net.md): the count of readiness events on
  // `d`, to read before a system call; a short result then reports it to drained(); and whether
  // the next call should wait first.
  std::uint32_t tick(io_direction d) const noexcept {
    return record_->ticks[static_cast<int>(d)].load(std::memory_order_acquire);
  }
  void drained(io_direction d, std::uint32_t tick) noexcept;
  bool probably_drained(io_direction d) const noexcept {
    // Relaxed: a hint either way (poll_record::signal says why).
    return record_->drained[static_cast<int>(d)].load(std::memory_order_relaxed);
  }

 private:
  static constexpr std::uint64_t closed_bit = std::uint64_t{1} << 63;

  ~net_fd() = default;
  bool close_descriptor() noexcept;
  void release_call() noexcept;
  void destroy_descriptor() noexcept;
  // close() of a listener: stops it listening at once, though calls may still hold fd_.
  void stop_listening() noexcept;
  epoll_poller& registered_poller();
  void release_life() noexcept;

  const int fd_;
  const int family_;
  const socket_kind kind_;
  std::atomic<std::uint64_t> state_{0};
  std::atomic<std::uint32_t> life_{1};
  std::atomic<bool> destroyed_{false};
  std::atomic<clock::rep> deadline_[2];
  io_lock locks_[2];
  poll_record* record_;
  // Set once, at the first wait (registered_poller), under record_->lock; poller_ is published
  // by the release store of registered_, and kept to the end (a socket keeps its poller).
  std::shared_ptr<epoll_poller> poller_;
  std::atomic<epoll_poller*> registered_{nullptr};
  std::mutex register_mu_;  // one registration, even if both directions wait at once
  std::string unlink_on_close_;
};

// Waits for a one-shot readiness of a descriptor goro does not own (wait_readable).
void wait_foreign(int fd, io_direction d, const wait_limit& limit);

}  // namespace goro::detail
