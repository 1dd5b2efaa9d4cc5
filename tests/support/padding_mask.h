// A padding mask from sequence lengths, as the layers take it: f32 [batch, time], 0 for
// the first lengths[b] positions of row b and 1 (padding) after.
#pragma once

#include <cstdint>
#include <vector>

#include "framework/tensor/tensor.h"

namespace attnlab::testing {

inline Tensor PaddingMask(const std::vector<int64_t>& lengths, int64_t time) {
  std::vector<float> values;
  for (const int64_t length : lengths) {
    for (int64_t t = 0; t < time; ++t) values.push_back(t < length ? 0.0f : 1.0f);
  }
  return Tensor::FromFloats(values, {static_cast<int64_t>(lengths.size()), time});
}

}  // namespace attnlab::testing
