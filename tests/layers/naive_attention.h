// Naive reference loops for the attention tests: element access to [batch, heads, time,
// dim] tensors, and the masked softmax of a score function written from a paper's
// equations.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <vector>

#include "framework/tensor/tensor.h"

namespace attnlab::nn::testing {

// Reads [batch, heads, time, dim] element (b, h, t, c) from a row-major copy.
struct Array4 {
  explicit Array4(const Tensor& t) : values(t.ToFloats()), shape(t.shape()) {}
  double operator()(int64_t b, int64_t h, int64_t t, int64_t c) const {
    return values[((b * shape[1] + h) * shape[2] + t) * shape[3] + c];
  }
  std::vector<float> values;
  Shape shape;
};

// softmax over keys of scores(b, h, i, j) with padding and causal masks, as the weights
// [batch, heads, tgt, src] in row-major order; fully masked rows are zero. Query i is at
// position i + query_offset, key j at j + key_offset.
inline std::vector<float> NaiveWeights(
    const std::function<double(int64_t, int64_t, int64_t, int64_t)>& score,
    const std::vector<int64_t>& lengths, bool causal, int64_t query_offset, int64_t heads,
    int64_t tgt, int64_t src, int64_t key_offset = 0) {
  std::vector<float> weights;
  for (int64_t b = 0; b < static_cast<int64_t>(lengths.size()); ++b) {
    for (int64_t h = 0; h < heads; ++h) {
      for (int64_t i = 0; i < tgt; ++i) {
        std::vector<double> row(src, 0.0);
        std::vector<bool> visible(src);
        double max_score = -1e300, total = 0.0;
        for (int64_t j = 0; j < src; ++j) {
          visible[j] = j < lengths[b] && (!causal || j + key_offset <= i + query_offset);
          if (visible[j]) max_score = std::max(max_score, row[j] = score(b, h, i, j));
        }
        for (int64_t j = 0; j < src; ++j) {
          row[j] = visible[j] ? std::exp(row[j] - max_score) : 0.0;
          total += row[j];
        }
        for (int64_t j = 0; j < src; ++j) weights.push_back(total > 0 ? row[j] / total : 0.0);
      }
    }
  }
  return weights;
}

}  // namespace attnlab::nn::testing
