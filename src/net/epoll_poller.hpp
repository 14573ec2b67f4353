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
//     destroyed (detach), then null.
#pragma once

#include <sys/epoll.h>

#include <atomic>
#include <cstdint>
#include <memory>

#include "net/poll_record.hpp"
#include "sched/io_poller.hpp"

namespace goro::detail {

class scheduler;

class epoll_poller final : public io_poller {
 public:
  explicit epoll_poller(scheduler& sched);
  ~epoll_poller() override;

  // The poller of `sched`, installed on first use; shared, since a socket keeps it.
  static std::shared_ptr<epoll_poller> of(scheduler& sched);

  void poll(clock::time_point until) noexcept override;
  void wake() noexcept override;
  void detach() noexcept override { sched_.store(nullptr, std::memory_order_release); }

  // Registers `fd` for both directions, edge-triggered, tagged with `r`; throws system_error.
  void add(int fd, poll_record& r);
  // Registers `fd` once for `d` (level-triggered, one shot): for descriptors goro does not own.
  void add_oneshot(int fd, poll_record& r, io_direction d);
  // Unregisters `fd`; harmless if it was not registered.
  void remove(int fd) noexcept;

  // The scheduler, or null once it is gone.
  scheduler* owner() const noexcept { return sched_.load(std::memory_order_acquire); }

 private:
  int wait_events(::epoll_event* events, int max, clock::time_point until) noexcept;

  int epfd_ = -1;
  int eventfd_ = -1;
  std::atomic<bool> wake_pending_{false};
  std::atomic<scheduler*> sched_;
};

}  // namespace goro::detail
