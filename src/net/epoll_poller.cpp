// SPDX-License-Identifier: Apache-2.0
// Layer: net. May include: net, park, sched, stack, time, platform.
// The epoll poller (epoll_poller.hpp): registration, the wake-up eventfd and the poll loop.
#include "net/epoll_poller.hpp"

#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <ctime>
#include <stdexcept>
#include <system_error>
#include <thread>

#include "sched/scheduler.hpp"

namespace goro::detail {

namespace {

constexpr std::uint64_t wake_tag = ~std::uint64_t{0};
constexpr int max_events = 128;

// epoll_pwait2 takes a nanosecond timeout (Linux 5.11); where the kernel lacks it, epoll_wait's
// milliseconds, rounded up so a timer never fires early.
std::atomic<bool> have_pwait2{true};

}  // namespace

epoll_poller::epoll_poller(scheduler& sched) : sched_(&sched) {
  epfd_ = ::epoll_create1(EPOLL_CLOEXEC);
  if (epfd_ < 0) throw std::system_error(errno, std::system_category(), "goro::net: epoll_create1");
  eventfd_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (eventfd_ < 0) {
    const int err = errno;
    ::close(epfd_);
    throw std::system_error(err, std::system_category(), "goro::net: eventfd");
  }
  // Level-triggered: a poll that does not block sees the wake-up and leaves it for the blocked
  // poller it was meant for, which the kernel wakes all the same (see poll()).
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.u64 = wake_tag;
  if (::epoll_ctl(epfd_, EPOLL_CTL_ADD, eventfd_, &ev) != 0) {
    const int err = errno;
    ::close(eventfd_);
    ::close(epfd_);
    throw std::system_error(err, std::system_category(), "goro::net: epoll_ctl");
  }
}

epoll_poller::~epoll_poller() {
  ::close(eventfd_);
  ::close(epfd_);
}

std::shared_ptr<epoll_poller> epoll_poller::of(scheduler& sched) {
  if (sched.poller() == nullptr) {
    sched.install_poller([&sched] { return std::make_shared<epoll_poller>(sched); });
  }
  return std::static_pointer_cast<epoll_poller>(sched.poller_shared());
}

void epoll_poller::add(int fd, poll_record& r) {
  epoll_event ev{};
  // EPOLLPRI: TCP urgent data, after which a short read is no sign of a drained socket
  // (poll_record::not_drained_by_short).
  ev.events = EPOLLIN | EPOLLPRI | EPOLLOUT | EPOLLRDHUP | EPOLLET;
  {
    lock_guard lock(r.lock);
    ev.data.u64 = r.tag();
  }
  if (::epoll_ctl(epfd_, EPOLL_CTL_ADD, fd, &ev) != 0) {
    throw std::system_error(errno, std::system_category(), "goro::net: epoll_ctl");
  }
}

void epoll_poller::control(int op, int fd, poll_record& r, const std::array<bool, 2>& waited) {
  epoll_event ev{};
  // Edge-triggered: a registration made or changed reports the directions ready at that moment
  // (epoll checks them at EPOLL_CTL_ADD and MOD), and after that only new edges, so a direction
  // that is ready but not waited on does not make every poll return.
  ev.events = EPOLLET;
  if (waited[static_cast<int>(io_direction::read)]) ev.events |= EPOLLIN | EPOLLRDHUP;
  if (waited[static_cast<int>(io_direction::write)]) ev.events |= EPOLLOUT;
  {
    lock_guard lock(r.lock);
    ev.data.u64 = r.tag();
  }
  if (::epoll_ctl(epfd_, op, fd, &ev) != 0) {
    throw std::system_error(errno, std::system_category(), "goro::net: epoll_ctl");
  }
}

void throw_goro_socket(const char* what) {
  throw std::invalid_argument(std::string("goro::net: ") + what +
                              ": the descriptor is a goro socket's (use its calls)");
}

poll_record& epoll_poller::join_foreign(int fd, io_direction d) {
  const int i = static_cast<int>(d);
  const char* what = d == io_direction::read ? "wait_readable" : "wait_writable";
  const std::lock_guard lock(foreign_mu_);
  auto [it, made] = foreign_.try_emplace(fd);
  foreign_entry& e = it->second;
  if (made) {
    e.record = &acquire_poll_record();
    e.waited[i] = true;
    try {
      control(EPOLL_CTL_ADD, fd, *e.record, e.waited);
    } catch (const std::system_error& err) {
      release_poll_record(*e.record);
      foreign_.erase(it);
      if (err.code().value() == EEXIST) throw_goro_socket(what);
      throw;
    }
    return *e.record;
  }
  if (e.waited[i]) {
    throw std::invalid_argument(std::string("goro::net: ") + what +
                                ": the descriptor is already waited on for this direction");
  }
  {
    // An edge kept from before this wait says nothing of now: the MOD below reports the
    // direction again if it is ready.
    lock_guard record_lock(e.record->lock);
    e.record->side(d).ready = false;
  }
  std::array<bool, 2> both = e.waited;
  both[i] = true;
  control(EPOLL_CTL_MOD, fd, *e.record, both);  // throws: the entry stays as it was
  e.waited = both;
  return *e.record;
}

void epoll_poller::leave_foreign(int fd, io_direction d) noexcept {
  const std::lock_guard lock(foreign_mu_);
  const auto it = foreign_.find(fd);
  if (it == foreign_.end()) return;
  foreign_entry& e = it->second;
  e.waited[static_cast<int>(d)] = false;
  if (e.waited[0] || e.waited[1]) {
    try {
      control(EPOLL_CTL_MOD, fd, *e.record, e.waited);
    } catch (const std::system_error&) {
      // The descriptor was closed under the wait that is left: epoll dropped it, and that wait
      // ends by its deadline or stop token, or on the events it was already sent.
    }
    return;
  }
  remove(fd);
  release_poll_record(*e.record);
  foreign_.erase(it);
}

void epoll_poller::detach() noexcept {
  sched_.store(nullptr, std::memory_order_seq_cst);
  // The other side of the Dekker pair in owner(): a wait that counted itself before this fence
  // is seen here, and one that counts itself after it sees null and fails by itself.
  std::atomic_thread_fence(std::memory_order_seq_cst);
  // A thread that saw the scheduler in with_owner() is done with it before ~scheduler goes on.
  while (owner_users_.load(std::memory_order_acquire) != 0) std::this_thread::yield();
  if (!has_waiters()) return;
  try {
    std::thread([self = shared_from_this()] { self->drain(); }).detach();
  } catch (const std::system_error&) {
    // No thread to be had: the waits in flight end by their deadlines or stop tokens.
  }
}

void epoll_poller::drain() noexcept {
  // A bounded block, so the loop sees the count fall to zero soon after the last wait left
  // (a wait that returns does not wake the poller).
  constexpr auto period = std::chrono::milliseconds(50);
  while (has_waiters()) poll(clock::now() + period);
}

void epoll_poller::remove(int fd) noexcept { ::epoll_ctl(epfd_, EPOLL_CTL_DEL, fd, nullptr); }

void epoll_poller::wake() noexcept {
  bool expected = false;
  // acq_rel with the drain's release: a CAS that fails sees a write not yet drained, which wakes
  // the blocked poller (the eventfd stays readable until drained).
  if (!wake_pending_.compare_exchange_strong(expected, true, std::memory_order_acq_rel)) return;
  const std::uint64_t one = 1;
  // EAGAIN only if the counter is full, which a pending wake-up already covers.
  [[maybe_unused]] const ssize_t n = ::write(eventfd_, &one, sizeof one);
}

int epoll_poller::wait_events(epoll_event* events, int max, clock::time_point until) noexcept {
  if (until == clock::time_point::max()) return ::epoll_wait(epfd_, events, max, -1);
  const clock::time_point now = clock::now();
  if (until <= now) return ::epoll_wait(epfd_, events, max, 0);
  const auto left = std::chrono::duration_cast<std::chrono::nanoseconds>(until - now);
  // Relaxed: a hint; a stale true costs one ENOSYS.
  if (have_pwait2.load(std::memory_order_relaxed)) {
    timespec ts{};
    ts.tv_sec = static_cast<time_t>(left.count() / 1'000'000'000);
    ts.tv_nsec = static_cast<long>(left.count() % 1'000'000'000);
    const int n = ::epoll_pwait2(epfd_, events, max, &ts, nullptr);
    if (n >= 0 || errno != ENOSYS) return n;
    have_pwait2.store(false, std::memory_order_relaxed);
  }
  const auto ms = std::chrono::ceil<std::chrono::milliseconds>(left).count();
  return ::epoll_wait(epfd_, events, max,
                      ms > 1'000'000'000 ? 1'000'000'000 : static_cast<int>(ms));
}

// Hands each event to its record (docs/net.md, "A wait"), then unparks the waiters claimed, with
// no record lock held. A waiter claimed here cannot return before its unpark, so it is valid
// until then.
void epoll_poller::poll(clock::time_point until) noexcept {
  epoll_event events[max_events];
  const int n = wait_events(events, max_events, until);
  if (n <= 0) return;  // timed out, or EINTR: a spurious wake-up, as the futex has
  waiter* wake[2 * max_events];
  int woken = 0;
  for (int i = 0; i < n; ++i) {
    const std::uint64_t tag = events[i].data.u64;
    if (tag == wake_tag) {
      // Only the poller that may block (the timer-duty holder, which passes a real deadline)
      // drains the wake-up: one that does not block would take it from under the blocked one,
      // which would sleep on (Go's netpoll leaves it to the blocking poll the same way).
      if (until != clock::time_point::min()) {
        std::uint64_t count;
        [[maybe_unused]] const ssize_t r = ::read(eventfd_, &count, sizeof count);
        wake_pending_.store(false, std::memory_order_release);
      }
      continue;
    }
    const std::uint32_t flags = events[i].events;
    poll_record& r = poll_record_at(static_cast<std::uint32_t>(tag));
    lock_guard lock(r.lock);
    if (r.seq != static_cast<std::uint32_t>(tag >> 32)) continue;  // a closed descriptor's
    const bool hang_up = (flags & (EPOLLHUP | EPOLLERR)) != 0;
    if ((flags & (EPOLLIN | EPOLLPRI | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) != 0) {
      const bool read_sticky = hang_up || (flags & (EPOLLRDHUP | EPOLLPRI)) != 0;
      if (waiter* w = r.signal(io_direction::read, read_sticky)) wake[woken++] = w;
    }
    if ((flags & (EPOLLOUT | EPOLLHUP | EPOLLERR)) != 0) {
      if (waiter* w = r.signal(io_direction::write, hang_up)) wake[woken++] = w;
    }
  }
  for (int i = 0; i < woken; ++i) wake[i]->unpark();
}

}  // namespace goro::detail
