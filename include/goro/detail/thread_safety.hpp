// SPDX-License-Identifier: Apache-2.0
// Clang's thread-safety attributes, under GORO_ names: which lock guards which member, and which
// functions take, release or need it. Clang's -Wthread-safety checks them at compile time (the
// "clang" preset makes a warning an error); other compilers see nothing. The attributes and
// what the analysis can and cannot follow: Clang's documentation, "Thread Safety Analysis"
// (https://clang.llvm.org/docs/ThreadSafetyAnalysis.html). Where goro switches it off, and why:
// docs/sync.md, "Waiting".
#pragma once

#if defined(__clang__)
#define GORO_THREAD_ANNOTATION(x) __attribute__((x))
#else
#define GORO_THREAD_ANNOTATION(x)
#endif

// A type that is a lock; x names its kind in the warnings ("mutex").
#define GORO_CAPABILITY(x) GORO_THREAD_ANNOTATION(capability(x))
// A RAII type that holds a lock from its constructor to its destructor.
#define GORO_SCOPED_CAPABILITY GORO_THREAD_ANNOTATION(scoped_lockable)
// A member read or written only with lock x held.
#define GORO_GUARDED_BY(x) GORO_THREAD_ANNOTATION(guarded_by(x))
// A pointer whose pointee is read or written only with lock x held.
#define GORO_PT_GUARDED_BY(x) GORO_THREAD_ANNOTATION(pt_guarded_by(x))
// A function called with these locks held, which it leaves held.
#define GORO_REQUIRES(...) GORO_THREAD_ANNOTATION(requires_capability(__VA_ARGS__))
// A function that returns with these locks held (none named: *this).
#define GORO_ACQUIRE(...) GORO_THREAD_ANNOTATION(acquire_capability(__VA_ARGS__))
// A function that releases these locks, held at the call (none named: *this).
#define GORO_RELEASE(...) GORO_THREAD_ANNOTATION(release_capability(__VA_ARGS__))
// A function that has taken these locks when it returns its first argument (true: try_lock).
#define GORO_TRY_ACQUIRE(...) GORO_THREAD_ANNOTATION(try_acquire_capability(__VA_ARGS__))
// A function called without these locks held (it takes them itself).
#define GORO_EXCLUDES(...) GORO_THREAD_ANNOTATION(locks_excluded(__VA_ARGS__))
// A function the analysis skips; each use says why beside it.
#define GORO_NO_THREAD_SAFETY_ANALYSIS GORO_THREAD_ANNOTATION(no_thread_safety_analysis)

namespace goro::detail {

// std::lock_guard, as the analysis sees it (libstdc++'s is not annotated, so a member guarded
// by a lock taken through it would read as unguarded).
template <class Lock>
class GORO_SCOPED_CAPABILITY lock_guard {
 public:
  explicit lock_guard(Lock& lock) GORO_ACQUIRE(lock) : lock_(lock) { lock_.lock(); }
  ~lock_guard() GORO_RELEASE() { lock_.unlock(); }
  lock_guard(const lock_guard&) = delete;
  lock_guard& operator=(const lock_guard&) = delete;

 private:
  Lock& lock_;
};

}  // namespace goro::detail
