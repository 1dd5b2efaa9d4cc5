// Tests that change the engine's thread count (determinism across thread counts): the
// count is restored when the scope ends, also when an assertion returns early, so that
// the tests after them run on the count they expect.
#pragma once

#include <utility>

#include "framework/parallel/parallel_for.h"

namespace attnlab::testing {

class ThreadCountRestorer {
 public:
  ThreadCountRestorer() : saved_threads_(NumThreads()) {}
  ~ThreadCountRestorer() { SetNumThreads(saved_threads_); }
  ThreadCountRestorer(const ThreadCountRestorer&) = delete;
  ThreadCountRestorer& operator=(const ThreadCountRestorer&) = delete;

 private:
  int saved_threads_;
};

// compute() run with the engine on `threads` threads; the count before is restored after.
template <typename Compute>
auto OnThreads(int threads, Compute&& compute) {
  const ThreadCountRestorer restore;
  SetNumThreads(threads);
  return std::forward<Compute>(compute)();
}

}  // namespace attnlab::testing
