// SPDX-License-Identifier: Apache-2.0
// Layer: net. May include: net, park, sched, stack, time, platform.
// The epoll poller: one epoll instance per runtime, descriptors registered once and
// edge-triggered for both directions, an eventfd to wake a blocked poll, and the poll loop that
// hands readiness to the descriptor records. Design and argument: docs/net.md.
//
// Invariants:
//   - wake_pending_ is set from a wake() that wrote the eventfd until a poll drains it: at most
//     one write is outstanding (Go's netpollWakeSig).
//   - sched_ is the scheduler whose workers poll this poller, until that scheduler is
//     destroyed (detach), then null. From then on, while any wait is in flight, a thread of
//     the poller's own polls it (drain), so no wait that started before is stranded.
//   - foreign_ holds one entry per descriptor goro does not own that a wait has registered
//     here: its record and which directions are waited on; the registration asks epoll for
//     exactly those directions, and is removed with the entry when the last wait leaves.
#pragma once

#include <sys/epoll.h>

#include <array>
#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>

#include "net/poll_record.hpp"
#include "sched/io_poller.hpp"

namespace goro::detail {

// Throws the std::invalid_argument of a wait_readable (wait_writable, as `what` says) on a
// descriptor of goro's own sockets.
[[noreturn]] void throw_goro_socket(const char* what);

class scheduler;

class epoll_poller final : public io_poller, public std::enable_shared_from_this<epoll_poller> {
 public:
  explicit epoll_poller(scheduler& sched);
  ~epoll_poller() override;

  // The poller of `sched`, installed on first use; shared, since a socket keeps it.
  static std::shared_ptr<epoll_poller> of(scheduler& sched);

  void poll(clock::time_point until) noexcept override;
  void wake() noexcept override;
  // Later waits fail (owner() is null); waits in flight are served by a thread of the
  // poller's own until the last returns (docs/net.md, "When the runtime goes first").
  void detach() noexcept override;

  // Registers `fd` for both directions, edge-triggered, tagged with `r`; throws system_error.
  void add(int fd, poll_record& r);
  // A wait for direction `d` of `fd`, a descriptor goro does not own (wait_readable,
  // wait_writable), joins the registration of `fd` here, making it if it is the first, and
  // returns the record to wait on. Waits for both directions at once share one registration,
  // as Go's pollDesc has both; a second wait for a direction already waited on throws
  // std::invalid_argument, and so does a goro socket's descriptor. Otherwise throws
  // system_error.
  poll_record& join_foreign(int fd, io_direction d);
  // The wait for `d` of `fd` has returned: the registration keeps only the other direction, if
  // it is still waited on, and otherwise goes, with its record.
  void leave_foreign(int fd, io_direction d) noexcept;
  // Unregisters `fd`; harmless if it was not registered.
  void remove(int fd) noexcept;

  // The scheduler, or null once it is gone. seq_cst: one side of the Dekker pair with
  // detach() (a wait counts itself, then reads this; detach clears it, then reads the count).
  scheduler* owner() const noexcept { return sched_.load(std::memory_order_seq_cst); }
  // Calls f(owner) with the scheduler kept from destruction meanwhile (detach waits for it);
  // does nothing once it is gone. For a thread or another runtime's fiber, which nothing else
  // keeps the scheduler alive for.
  template <class F>
  void with_owner(F&& f) noexcept {
    // seq_cst, both: a Dekker pair with detach(), which clears sched_ and then waits for
    // owner_users_ to be zero: either we see null, or it sees us and waits.
    owner_users_.fetch_add(1, std::memory_order_seq_cst);
    if (scheduler* s = sched_.load(std::memory_order_seq_cst)) f(*s);
    // Release: our use of the scheduler happens-before detach's acquire sees the count fall.
    owner_users_.fetch_sub(1, std::memory_order_release);
  }

 private:
  struct foreign_entry {
    poll_record* record = nullptr;
    std::array<bool, 2> waited{};  // per io_direction
  };

  int wait_events(::epoll_event* events, int max, clock::time_point until) noexcept;
  // epoll_ctl(op) for `fd` with the events of the directions in `waited`, tagged with `r`.
  void control(int op, int fd, poll_record& r, const std::array<bool, 2>& waited);
  // The drain thread's loop: polls until no wait is in flight.
  void drain() noexcept;

  int epfd_ = -1;
  int eventfd_ = -1;
  std::atomic<bool> wake_pending_{false};
  std::atomic<scheduler*> sched_;
  std::atomic<int> owner_users_{0};  // inside with_owner()
  std::mutex foreign_mu_;
  std::map<int, foreign_entry> foreign_;  // GUARDED_BY(foreign_mu_)
};

}  // namespace goro::detail
