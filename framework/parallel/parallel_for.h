// One helper for our own kernels' outer loops, over OpenMP (libgomp, the runtime oneDNN
// was built with, so both share one thread pool).
//
// Work is cut into chunks of a fixed `grain`, independent of the thread count, and each
// chunk is processed by one thread. A kernel that keeps per-chunk partial results and
// combines them in chunk order therefore gives bit-identical results on any number of
// threads (llm.c rejected atomics for the same reason).
#pragma once

#include <omp.h>

#include <algorithm>
#include <cstdint>

#include "framework/profiler/profiler.h"

namespace attnlab {

// Calls fn(begin, end) over [0, count) in chunks of `grain` elements, in parallel when
// there is more than one chunk and we are not already inside a parallel region.
template <typename Fn>
void ParallelFor(int64_t count, int64_t grain, Fn&& fn) {
  if (count <= 0) return;
  grain = std::max<int64_t>(grain, 1);
  const int64_t chunks = (count + grain - 1) / grain;
  if (chunks == 1 || omp_in_parallel() || omp_get_max_threads() == 1) {
    fn(int64_t{0}, count);
    return;
  }
  // The profiler sees the region on the calling thread and each thread's busy share
  // (its chunks; `nowait` ends the share before the barrier that closes the region).
  profiler::RegionScope region("parallel_for");
#pragma omp parallel
  {
    profiler::WorkerScope busy;
#pragma omp for schedule(static) nowait
    for (int64_t chunk = 0; chunk < chunks; ++chunk) {
      fn(chunk * grain, std::min(count, (chunk + 1) * grain));
    }
  }
}

// For kernels along one dim of an [outer, extent, inner] view (DimSplit): one task per
// outer index and block of `block` inner columns, fn(o, column_begin, column_end), run by
// ParallelFor in chunks of `grain` tasks. A task walks the extent in order over its own
// columns, so the result does not depend on the thread count.
template <typename Fn>
void ParallelForColumnBlocks(int64_t outer, int64_t inner, int64_t block, int64_t grain, Fn&& fn) {
  const int64_t blocks_per_outer = (inner + block - 1) / block;
  ParallelFor(outer * blocks_per_outer, grain, [&](int64_t begin, int64_t end) {
    for (int64_t task = begin; task < end; ++task) {
      const int64_t column_begin = (task % blocks_per_outer) * block;
      fn(task / blocks_per_outer, column_begin, std::min(inner, column_begin + block));
    }
  });
}

// Threads used by our kernels and by oneDNN. Default: OMP_NUM_THREADS or every core.
inline int NumThreads() { return omp_get_max_threads(); }
inline void SetNumThreads(int threads) { omp_set_num_threads(std::max(threads, 1)); }

}  // namespace attnlab
