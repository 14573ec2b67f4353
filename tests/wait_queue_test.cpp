// SPDX-License-Identifier: Apache-2.0
// Tests of goro's one wait-queue family (src/park/wait_queue.hpp) and of claim outcomes
// (src/park/park.hpp), driven directly on one thread: FIFO order, O(1) unlinking from any
// place, a completer's pop that drops nodes someone else claimed, batches, and that a claim
// takes only a claim_outcome.
#include <cstddef>
#include <type_traits>
#include <vector>

#include <gtest/gtest.h>

#include "park/park.hpp"
#include "park/wait_queue.hpp"

namespace {

using goro::detail::case_index;
using goro::detail::case_outcome;
using goro::detail::claim_outcome;
using goro::detail::limit_won;
using goro::detail::waiter;

// A module's own outcomes, named as park.hpp says a module names them.
constexpr claim_outcome ready{0};
constexpr claim_outcome closed{1};

struct node : goro::detail::wait_link<node> {
  waiter w;  // a plain thread's: claim and unpark need no runtime
  int id = 0;
  bool claim(claim_outcome c) noexcept { return w.claim(c); }
  void unpark() noexcept { w.unpark(); }
};

struct queue_fixture {
  node* head = nullptr;
  node* tail = nullptr;
  goro::detail::wait_queue<node> q{head, tail};

  std::vector<int> ids() const {
    std::vector<int> out;
    for (node* n = head; n != nullptr; n = n->next) out.push_back(n->id);
    return out;
  }
};

static_assert(!std::is_invocable_v<decltype(&waiter::claim), waiter&, int>,
              "a claim takes a claim_outcome, never a bare int");
static_assert(std::is_invocable_v<decltype(&waiter::claim), waiter&, claim_outcome>);
static_assert(case_index(case_outcome(7)) == 7);
static_assert(!limit_won(case_outcome(0)) && !limit_won(ready) && !limit_won(claim_outcome::none));
static_assert(limit_won(claim_outcome::timed_out) && limit_won(claim_outcome::cancelled));

TEST(WaitQueueTest, KeepsFifoOrderAndUnlinksFromAnyPlace) {
  queue_fixture f;
  node n[5];
  for (int i = 0; i < 5; ++i) {
    n[i].id = i;
    f.q.push_back(&n[i]);
  }
  EXPECT_EQ(f.ids(), (std::vector<int>{0, 1, 2, 3, 4}));
  EXPECT_TRUE(f.q.remove(&n[2]));  // the middle
  EXPECT_TRUE(f.q.remove(&n[0]));  // the front
  EXPECT_TRUE(f.q.remove(&n[4]));  // the back
  EXPECT_EQ(f.ids(), (std::vector<int>{1, 3}));
  EXPECT_EQ(f.tail, &n[3]);
  EXPECT_FALSE(f.q.remove(&n[2])) << "a node already out is left alone";
  f.q.push_front(&n[0]);
  EXPECT_EQ(f.ids(), (std::vector<int>{0, 1, 3}));
  EXPECT_TRUE(f.q.remove(&n[1]));
  EXPECT_TRUE(f.q.remove(&n[3]));
  EXPECT_TRUE(f.q.remove(&n[0]));
  EXPECT_TRUE(f.q.empty());
  EXPECT_EQ(f.tail, nullptr);
}

TEST(WaitQueueTest, PopClaimedDropsNodesClaimedElsewhereAndNamesTheWinner) {
  queue_fixture f;
  node n[4];
  for (int i = 0; i < 4; ++i) {
    n[i].id = i;
    f.q.push_back(&n[i]);
  }
  // Nodes 0 and 2 were claimed by their own limits (still queued, as a waiter that gave up is
  // until it takes its lock).
  ASSERT_TRUE(n[0].w.claim(claim_outcome::timed_out));
  ASSERT_TRUE(n[2].w.claim(claim_outcome::cancelled));
  node* first = f.q.pop_claimed(ready);
  ASSERT_EQ(first, &n[1]);
  EXPECT_EQ(n[1].w.winner(), ready);
  EXPECT_FALSE(n[0].queued) << "a stale node is unlinked on the way";
  EXPECT_FALSE(f.q.remove(&n[0]));  // so its owner's give-up finds nothing to do
  EXPECT_EQ(n[0].w.winner(), claim_outcome::timed_out) << "and keeps the claim it had";
  node* second = f.q.pop_claimed(closed);
  ASSERT_EQ(second, &n[3]);
  EXPECT_EQ(n[3].w.winner(), closed);
  EXPECT_EQ(f.q.pop_claimed(ready), nullptr);
  EXPECT_TRUE(f.q.empty());
  EXPECT_EQ(n[2].w.winner(), claim_outcome::cancelled);
}

TEST(WaitQueueTest, BatchesChainInQueueOrderUpToTheirLimit) {
  queue_fixture f;
  node n[5];
  for (int i = 0; i < 5; ++i) {
    n[i].id = i;
    f.q.push_back(&n[i]);
  }
  ASSERT_TRUE(n[1].w.claim(claim_outcome::timed_out));
  const goro::detail::claimed_batch<node> two = f.q.pop_claimed_batch(2, ready);
  ASSERT_EQ(two.count, 2u);
  EXPECT_EQ(two.first, &n[0]);
  EXPECT_EQ(two.first->next, &n[2]);
  EXPECT_EQ(two.first->next->next, nullptr);
  EXPECT_EQ(f.ids(), (std::vector<int>{3, 4}));
  const goro::detail::claimed_batch<node> rest = f.q.pop_all_claimed(closed);
  ASSERT_EQ(rest.count, 2u);
  EXPECT_EQ(rest.first, &n[3]);
  EXPECT_EQ(rest.first->next, &n[4]);
  EXPECT_TRUE(f.q.empty());
  goro::detail::unpark_all(two.first);  // plain-thread waiters: unpark only marks them
  goro::detail::unpark_all(rest.first);
  for (node* w : {&n[0], &n[2], &n[3], &n[4]}) w->w.park();  // returns at once: unparked
}

}  // namespace
