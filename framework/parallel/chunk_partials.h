// The second half of ParallelFor's deterministic pattern (parallel_for.h): kernels that
// keep one partial result per fixed chunk of work add the partials up here, in chunk
// order, so the sum is the same on any number of threads.
#pragma once

#include <cstdint>

#include "framework/parallel/parallel_for.h"

namespace attnlab {

// out[i] = 0 + partials[0][i] + partials[1][i] + ... + partials[chunks - 1][i], added in
// that order. partials: [chunks, size] floats, one row per chunk; out: [size].
inline void SumChunkPartials(const float* partials, int64_t chunks, int64_t size, float* out) {
  ParallelFor(size, 4096, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      float total = 0.0f;
      for (int64_t chunk = 0; chunk < chunks; ++chunk) total += partials[chunk * size + i];
      out[i] = total;
    }
  });
}

}  // namespace attnlab
