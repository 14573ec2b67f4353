// SPDX-License-Identifier: Apache-2.0
// Layer: net. May include: net, park, sched, stack, time, platform.
// The pool of descriptor records: chunks allocated on demand and never freed, a free list
// under a mutex, and a lock-free index from an epoll event's tag to its record.
#include <array>
#include <atomic>
#include <memory>
#include <mutex>
#include <new>

#include "net/poll_record.hpp"

namespace goro::detail {

namespace {

constexpr std::uint32_t chunk_bits = 8;
constexpr std::uint32_t chunk_size = 1u << chunk_bits;
constexpr std::uint32_t max_chunks = 1u << 16;  // 16 M records: far beyond any fd limit

struct record_pool {
  std::mutex mu;
  poll_record* free = nullptr;  // under mu
  std::uint32_t chunks = 0;     // under mu
  // Published with release under mu; read with acquire by poll_record_at, for an index handed
  // out (and so published) before the descriptor was registered.
  std::array<std::atomic<poll_record*>, max_chunks> chunk{};
};

record_pool& pool() {
  static record_pool* p = new record_pool;  // never freed: records outlive every runtime
  return *p;
}

}  // namespace

poll_record& acquire_poll_record() {
  record_pool& p = pool();
  std::lock_guard lock(p.mu);
  if (p.free == nullptr) {
    if (p.chunks == max_chunks) throw std::bad_alloc();
    auto* records = new poll_record[chunk_size];
    for (std::uint32_t i = 0; i < chunk_size; ++i) {
      records[i].index = p.chunks << chunk_bits | i;
      records[i].next_free = i + 1 < chunk_size ? &records[i + 1] : nullptr;
    }
    p.chunk[p.chunks].store(records, std::memory_order_release);
    ++p.chunks;
    p.free = records;
  }
  poll_record* r = p.free;
  p.free = r->next_free;
  r->next_free = nullptr;
  return *r;
}

void release_poll_record(poll_record& r) noexcept {
  {
    lock_guard guard(r.lock);
    ++r.seq;
    r.closing = false;
    r.sides[0] = {};
    r.sides[1] = {};
    for (auto& d : r.drained) d.store(false, std::memory_order_relaxed);  // under r.lock
    r.not_drained_by_short[0] = r.not_drained_by_short[1] = false;
  }
  record_pool& p = pool();
  std::lock_guard lock(p.mu);
  r.next_free = p.free;
  p.free = &r;
}

poll_record& poll_record_at(std::uint32_t index) noexcept {
  poll_record* chunk = pool().chunk[index >> chunk_bits].load(std::memory_order_acquire);
  return chunk[index & (chunk_size - 1)];
}

}  // namespace goro::detail
