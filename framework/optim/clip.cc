#include "framework/optim/clip.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "framework/parallel/parallel_for.h"

namespace attnlab {
namespace {

// Elements per chunk of the sum of squares. Fixed, so the summation order is too.
constexpr int64_t kChunk = int64_t{1} << 14;

struct Chunk {
  float* gradient;
  int64_t count;
};

}  // namespace

float ClipGradNorm(const NamedTensors& parameters, double max_norm) {
  // Reused between calls, so a training step allocates nothing here. (Named through
  // references: inside the parallel loop a thread_local name would be the worker's own.)
  thread_local std::vector<Chunk> chunk_storage;
  thread_local std::vector<double> partial_sum_storage;
  std::vector<Chunk>& chunks = chunk_storage;
  std::vector<double>& partial_sums = partial_sum_storage;
  chunks.clear();
  for (const auto& [name, parameter] : parameters) {
    if (!parameter.defined() || parameter.impl()->grad == nullptr) continue;
    const Tensor gradient(parameter.impl()->grad);
    ATTNLAB_CHECK(gradient.dtype() == DType::kF32 && gradient.is_contiguous(),
                  "ClipGradNorm: gradient of '", name, "' is ", gradient.Describe(),
                  ", expected contiguous f32");
    float* data = gradient.data<float>();
    const int64_t numel = gradient.numel();
    for (int64_t begin = 0; begin < numel; begin += kChunk) {
      chunks.push_back({data + begin, std::min(kChunk, numel - begin)});
    }
  }
  partial_sums.assign(chunks.size(), 0.0);
  const int64_t chunk_count = static_cast<int64_t>(chunks.size());
  ParallelFor(chunk_count, 1, [&](int64_t begin, int64_t end) {
    for (int64_t c = begin; c < end; ++c) {
      double sum = 0.0;
      const float* values = chunks[c].gradient;
      for (int64_t i = 0; i < chunks[c].count; ++i) {
        sum += static_cast<double>(values[i]) * static_cast<double>(values[i]);
      }
      partial_sums[c] = sum;
    }
  });
  double total = 0.0;
  for (double sum : partial_sums) total += sum;  // chunk order: deterministic
  const float total_norm = static_cast<float>(std::sqrt(total));

  // torch: clip_coef = max_norm / (total_norm + 1e-6), clamped to at most 1. Scaling by
  // exactly 1 changes nothing, so it is skipped; a NaN coefficient still propagates.
  const float coefficient = static_cast<float>(max_norm) / (total_norm + 1e-6f);
  if (!(coefficient < 1.0f) && !std::isnan(coefficient)) return total_norm;
  ParallelFor(chunk_count, 1, [&](int64_t begin, int64_t end) {
    for (int64_t c = begin; c < end; ++c) {
      float* values = chunks[c].gradient;
      for (int64_t i = 0; i < chunks[c].count; ++i) values[i] *= coefficient;
    }
  });
  return total_norm;
}

}  // namespace attnlab
