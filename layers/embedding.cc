#include "layers/embedding.h"

#include <cmath>
#include <cstring>

#include "framework/ops/ops.h"
#include "layers/init.h"

namespace attnlab::nn {

Embedding::Embedding(int64_t vocab_size, int64_t dim, int64_t padding_index, Generator& generator)
    : padding_index_(padding_index) {
  weight_ = Tensor::Empty({vocab_size, dim});
  init::Normal(weight_, 0.0f, 1.0f / std::sqrt(static_cast<float>(dim)), generator);
  if (padding_index >= 0) {
    ATTNLAB_CHECK(padding_index < vocab_size, "Embedding: padding index ", padding_index,
                  " outside a vocabulary of ", vocab_size);
    std::memset(weight_.data<float>() + padding_index * dim, 0, dim * sizeof(float));
  }
  weight_ = RegisterParameter("weight", weight_);
}

Tensor Embedding::Forward(const Tensor& ids) const {
  const auto profile_scope = ProfileScope("embedding");
  return attnlab::Embedding(weight_, ids, padding_index_);
}

}  // namespace attnlab::nn
