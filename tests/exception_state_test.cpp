// SPDX-License-Identifier: Apache-2.0
// Tests that the C++ runtime's exception state (the stack of caught exceptions behind
// std::current_exception() and `throw;`, and the count behind std::uncaught_exceptions()) is
// each fiber's own: fibers that park inside catch handlers or in destructors running during
// unwinding, on one worker and many, keep their own exceptions, and fibers that are not
// unwinding see none; a fresh fiber starts with none; a plain thread blocking in a handler is
// unaffected. docs/scheduler.md, "Exception state per fiber". Concurrency tests run once per
// worker count.
#include <cxxabi.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "goro/goro.hpp"
#include "test_support.hpp"

namespace {

using goro_test::fiber_count;
using goro_test::live_fiber_cap;

// An exception that says which fiber threw it. The message is long enough that the string
// lives on the heap, so a freed exception is a heap-use-after-free under AddressSanitizer.
struct tagged_error : std::runtime_error {
  explicit tagged_error(std::size_t thrower)
      : std::runtime_error(message_for(thrower)), id(thrower) {}
  static std::string message_for(std::size_t id) {
    return "exception thrown by fiber " + std::to_string(id) + ", long enough for the heap";
  }
  std::size_t id;
};

constexpr long no_exception = -1;
constexpr long foreign_exception = -2;

// The id of the tagged_error p holds; no_exception for a null p, foreign_exception for any
// other type.
long id_of(const std::exception_ptr& p) {
  if (!p) return no_exception;
  try {
    std::rethrow_exception(p);
  } catch (const tagged_error& e) {
    return static_cast<long>(e.id);
  } catch (...) {
    return foreign_exception;
  }
}

class ExceptionStateTest : public goro_test::workers_test {};

// Every fiber throws and catches its own exception, and all of them are inside their handlers
// at once; each then parks twice more inside its handler (an unbuffered send of
// std::current_exception() to the test thread, and a yield), so handlers begin and end
// interleaved, on one worker or after migrating between several. Each handler must still see
// its own exception through std::current_exception() and `throw;`, and none once it has ended.
TEST_P(ExceptionStateTest, HandlersThatParkKeepTheirOwnException) {
  const std::size_t n = fiber_count(2000);
  goro::runtime rt(opts());
  goro::chan<std::exception_ptr> errors;  // unbuffered: every send parks in the handler
  goro::chan<int> gate;                   // closed once every fiber is inside its handler
  goro::wait_group in_handler;
  goro::wait_group finished;
  in_handler.add(static_cast<std::int64_t>(n));
  finished.add(static_cast<std::int64_t>(n));
  std::atomic<int> wrong_current{0};
  std::atomic<int> wrong_rethrow{0};
  std::atomic<int> wrong_message{0};
  std::atomic<int> wrong_uncaught{0};
  std::atomic<int> left_after_handler{0};

  for (std::size_t i = 0; i < n; ++i) {
    rt.go([&, i] {
      try {
        throw tagged_error(i);
      } catch (const tagged_error& e) {
        in_handler.done();
        gate.recv();
        errors.send(std::current_exception());
        goro::this_fiber::yield();
        if (id_of(std::current_exception()) != static_cast<long>(i)) ++wrong_current;
        if (std::uncaught_exceptions() != 0) ++wrong_uncaught;
        if (e.what() != tagged_error::message_for(i)) ++wrong_message;
        try {
          throw;
        } catch (const tagged_error& again) {
          if (&again != &e) ++wrong_rethrow;
        } catch (...) {
          ++wrong_rethrow;
        }
      }
      if (std::current_exception() != nullptr) ++left_after_handler;
      finished.done();
    });
  }
  in_handler.wait();
  gate.close();
  std::vector<std::exception_ptr> sent;
  for (std::size_t k = 0; k < n; ++k) {
    std::optional<std::exception_ptr> p = errors.recv();
    ASSERT_TRUE(p.has_value());
    sent.push_back(std::move(*p));
  }
  // Looked at only once every handler has ended: ThreadSanitizer does not see the atomic
  // reference count of an exception_ptr (it lives in the uninstrumented C++ runtime), so a
  // read here racing with a handler's end would be reported.
  finished.wait();
  std::vector<bool> seen(n, false);
  std::size_t distinct = 0;
  for (const std::exception_ptr& p : sent) {
    const long id = id_of(p);
    if (id >= 0 && static_cast<std::size_t>(id) < n && !seen[static_cast<std::size_t>(id)]) {
      seen[static_cast<std::size_t>(id)] = true;
      ++distinct;
    }
  }
  EXPECT_EQ(distinct, n) << "std::current_exception() sent from the handlers";
  EXPECT_EQ(wrong_current.load(), 0) << "handlers whose std::current_exception() was not theirs";
  EXPECT_EQ(wrong_rethrow.load(), 0) << "handlers whose `throw;` rethrew another exception";
  EXPECT_EQ(wrong_message.load(), 0) << "handlers whose exception object changed";
  EXPECT_EQ(wrong_uncaught.load(), 0) << "handlers that saw std::uncaught_exceptions() != 0";
  EXPECT_EQ(left_after_handler.load(), 0) << "fibers with a current exception after the handler";
}

// A guard whose destructor parks: it says it is inside, waits for the gate to close, and
// yields, counting what std::uncaught_exceptions() says before and after.
struct parks_in_destructor {
  goro::wait_group& inside;
  goro::chan<int>& gate;
  std::atomic<int>& wrong;
  ~parks_in_destructor() {
    if (std::uncaught_exceptions() != 1) ++wrong;
    inside.done();
    gate.recv();
    goro::this_fiber::yield();
    if (std::uncaught_exceptions() != 1) ++wrong;
  }
};

// Half the fibers park in a destructor that runs while their exception unwinds the stack; the
// other half, not unwinding, park at the same gate. std::uncaught_exceptions() is 1 in every
// unwinding destructor, before and after it parks, and 0 in every other fiber and once the
// exception is caught.
TEST_P(ExceptionStateTest, UncaughtExceptionsIsPerFiberAcrossParksDuringUnwinding) {
  const std::size_t n = fiber_count(2000);
  goro::runtime rt(opts());
  goro::chan<int> gate;  // closed once every fiber is parked or about to park at it
  goro::wait_group inside;
  goro::wait_group finished;
  inside.add(static_cast<std::int64_t>(n));
  finished.add(static_cast<std::int64_t>(n));
  std::atomic<int> wrong_unwinding{0};
  std::atomic<int> wrong_caught{0};
  std::atomic<int> wrong_bystander{0};

  for (std::size_t i = 0; i < n; ++i) {
    if (i % 2 == 0) {
      rt.go([&, i] {
        try {
          const parks_in_destructor guard{inside, gate, wrong_unwinding};
          throw tagged_error(i);
        } catch (const tagged_error& e) {
          if (e.id != i || std::uncaught_exceptions() != 0) ++wrong_caught;
        }
        if (std::uncaught_exceptions() != 0 || std::current_exception() != nullptr) {
          ++wrong_caught;
        }
        finished.done();
      });
    } else {
      rt.go([&] {
        if (std::uncaught_exceptions() != 0) ++wrong_bystander;
        inside.done();
        gate.recv();
        goro::this_fiber::yield();
        if (std::uncaught_exceptions() != 0) ++wrong_bystander;
        if (std::current_exception() != nullptr) ++wrong_bystander;
        finished.done();
      });
    }
  }
  inside.wait();
  gate.close();
  finished.wait();
  EXPECT_EQ(wrong_unwinding.load(), 0) << "unwinding destructors that saw a count other than 1";
  EXPECT_EQ(wrong_caught.load(), 0) << "fibers with a wrong exception or count once caught";
  EXPECT_EQ(wrong_bystander.load(), 0) << "checks in fibers not unwinding that saw an exception";
}

// Handlers that end out of order: A catches and parks, B catches and parks, A's handler ends,
// then B's. Ending A's handler must free A's exception, not B's (with one shared stack of
// caught exceptions it freed B's, which B then read: a heap-use-after-free under
// AddressSanitizer), and B's `throw;` must rethrow B's. A third fiber that catches and ends its
// handler while A is parked leaves A's exception alone.
TEST_P(ExceptionStateTest, HandlersEndingOutOfOrderFreeOnlyTheirOwnException) {
  goro::runtime rt(opts());
  goro::chan<int> a_in_handler;
  goro::chan<int> b_in_handler;
  goro::chan<int> resume_a;
  goro::chan<int> resume_b;
  goro::wait_group finished;
  finished.add(3);
  std::vector<std::string> failures_a;
  std::vector<std::string> failures_b;
  std::vector<std::string> failures_c;

  rt.go([&] {
    try {
      throw tagged_error(1);
    } catch (const tagged_error& e) {
      a_in_handler.send(0);
      resume_a.recv();
      if (e.what() != tagged_error::message_for(1)) failures_a.push_back("exception changed");
      const long current = id_of(std::current_exception());
      if (current != 1) failures_a.push_back("current_exception is " + std::to_string(current));
    }
    if (std::current_exception() != nullptr) failures_a.push_back("exception left after handler");
    finished.done();
  });
  a_in_handler.recv();
  rt.go([&] {
    try {
      throw tagged_error(3);
    } catch (const tagged_error& e) {
      if (e.id != 3) failures_c.push_back("caught another exception");
    }
    if (std::current_exception() != nullptr) failures_c.push_back("exception left after handler");
    finished.done();
  });
  rt.go([&] {
    try {
      throw tagged_error(2);
    } catch (const tagged_error& e) {
      b_in_handler.send(0);
      resume_b.recv();
      if (e.what() != tagged_error::message_for(2)) failures_b.push_back("exception changed");
      try {
        throw;
      } catch (const tagged_error& again) {
        if (&again != &e) failures_b.push_back("throw; rethrew " + std::to_string(again.id));
      }
    }
    if (std::current_exception() != nullptr) failures_b.push_back("exception left after handler");
    finished.done();
  });
  b_in_handler.recv();
  resume_a.send(0);
  resume_b.send(0);
  finished.wait();
  for (const std::string& f : failures_a) ADD_FAILURE() << "fiber A: " << f;
  for (const std::string& f : failures_b) ADD_FAILURE() << "fiber B: " << f;
  for (const std::string& f : failures_c) ADD_FAILURE() << "fiber C: " << f;
}

// A fiber spawned from inside a handler, or from a destructor running during unwinding, runs
// first on the spawning worker (goro spawns work-first); it starts with no exception of its
// own. The spawning fiber's exception is intact when it resumes.
TEST_P(ExceptionStateTest, FreshFiberStartsWithNoException) {
  goro::runtime rt(opts());
  goro::wait_group finished;  // the parent and its two children
  finished.add(3);
  std::atomic<int> child_saw_exception{0};
  std::atomic<int> parent_wrong{0};
  auto child = [&] {
    if (std::current_exception() != nullptr) ++child_saw_exception;
    if (std::uncaught_exceptions() != 0) ++child_saw_exception;
    goro::this_fiber::yield();
    finished.done();
  };
  struct spawns_in_destructor {
    decltype(child)& body;
    ~spawns_in_destructor() { goro::go(body); }
  };
  rt.go([&] {
    try {
      throw tagged_error(7);
    } catch (const tagged_error& e) {
      goro::go(child);
      goro::this_fiber::yield();
      if (id_of(std::current_exception()) != 7 || e.id != 7) ++parent_wrong;
    }
    try {
      const spawns_in_destructor guard{child};
      throw tagged_error(8);
    } catch (const tagged_error& e) {
      if (e.id != 8 || std::uncaught_exceptions() != 0) ++parent_wrong;
    }
    finished.done();
  });
  finished.wait();
  EXPECT_EQ(parent_wrong.load(), 0) << "checks in the parent that saw another exception";
  EXPECT_EQ(child_saw_exception.load(), 0) << "checks in fresh fibers that saw an exception";
}

// A plain thread (not a fiber) that blocks on a goro channel inside its own handler, while
// fibers throw, catch, park and end their handlers, keeps its own exception: it never switches
// context, so nothing saves or installs its state.
TEST_P(ExceptionStateTest, PlainThreadBlockingInHandlerIsUnaffected) {
  goro::runtime rt(opts());
  goro::chan<int> thread_in_handler;
  goro::chan<int> resume_thread;
  std::vector<std::string> failures;
  std::thread t([&] {
    try {
      throw tagged_error(100);
    } catch (const tagged_error& e) {
      thread_in_handler.send(0);
      resume_thread.recv();  // blocks this thread while the fibers run
      if (id_of(std::current_exception()) != 100) failures.push_back("current_exception");
      if (e.what() != tagged_error::message_for(100)) failures.push_back("exception changed");
      try {
        throw;
      } catch (const tagged_error& again) {
        if (&again != &e) failures.push_back("throw; rethrew another exception");
      }
    }
    if (std::current_exception() != nullptr) failures.push_back("exception left after handler");
    if (std::uncaught_exceptions() != 0) failures.push_back("uncaught_exceptions");
  });
  thread_in_handler.recv();
  goro_test::run_fibers(rt, live_fiber_cap(200), [](std::size_t i) {
    try {
      throw tagged_error(i);
    } catch (const tagged_error&) {
      goro::this_fiber::yield();
    }
  });
  resume_thread.send(0);
  t.join();
  for (const std::string& f : failures) ADD_FAILURE() << f;
}

INSTANTIATE_TEST_SUITE_P(Workers, ExceptionStateTest, goro_test::worker_counts(),
                         goro_test::worker_count_name);

// The layout the runtime relies on (src/platform/context.hpp, cxa_eh_state): the Itanium C++ ABI's
// per-thread __cxa_eh_globals begins with the list of caught exceptions and the count of
// uncaught ones, in that order.
struct eh_globals_prefix {
  void* caught_exceptions;
  unsigned int uncaught_exceptions;
};

const eh_globals_prefix& thread_eh_globals() {
  return *reinterpret_cast<const eh_globals_prefix*>(abi::__cxa_get_globals());
}

struct reads_globals_in_destructor {
  unsigned int& uncaught;
  ~reads_globals_in_destructor() { uncaught = thread_eh_globals().uncaught_exceptions; }
};

TEST(ExceptionStateLayoutTest, CxaEhGlobalsBeginsWithCaughtListAndUncaughtCount) {
  EXPECT_EQ(thread_eh_globals().caught_exceptions, nullptr);
  EXPECT_EQ(thread_eh_globals().uncaught_exceptions, 0u);
  unsigned int during_unwinding = 0;
  try {
    const reads_globals_in_destructor guard{during_unwinding};
    throw tagged_error(0);
  } catch (const tagged_error&) {
    EXPECT_NE(thread_eh_globals().caught_exceptions, nullptr);
    EXPECT_EQ(thread_eh_globals().uncaught_exceptions, 0u);
  }
  EXPECT_EQ(during_unwinding, 1u);
  EXPECT_EQ(thread_eh_globals().caught_exceptions, nullptr);
}

}  // namespace
