// The second half of ParallelFor's deterministic pattern (parallel_for.h): kernels that
// keep one partial result per fixed chunk of work add the partials up here, in chunk
// order, so the sum is the same on any number of threads.
#pragma once

#include <cstdint>

#include "framework/parallel/parallel_for.h"

namespace attnlab {

// out[i] = 0 + partials[0][i] + partials[1][i] + ... + partials[chunks - 1][i], added in
// that order. partials: [chunks, size] floats, one row per chunk; out: [size].
// Each block of out is summed chunk by chunk (one contiguous, vectorised pass per chunk
// over a block that stays in L1) rather than element by element across the chunks, which
// the compiler can only do with scalar loads 4 * size bytes apart; every element still
// gets the same additions in the same order.
inline void SumChunkPartials(const float* partials, int64_t chunks, int64_t size, float* out) {
  ParallelFor(size, 4096, [&](int64_t begin, int64_t end) {
    float* block = out + begin;
    const int64_t length = end - begin;
    for (int64_t i = 0; i < length; ++i) block[i] = 0.0f;
    for (int64_t chunk = 0; chunk < chunks; ++chunk) {
      const float* partial = partials + chunk * size + begin;
      for (int64_t i = 0; i < length; ++i) block[i] += partial[i];
    }
  });
}

}  // namespace attnlab
