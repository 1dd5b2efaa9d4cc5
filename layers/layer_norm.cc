#include "layers/layer_norm.h"

#include "framework/ops/ops.h"

namespace attnlab::nn {

LayerNorm::LayerNorm(int64_t dim, float epsilon) : epsilon_(epsilon) {
  weight_ = RegisterParameter("weight", Tensor::Full({dim}, 1.0f));
  bias_ = RegisterParameter("bias", Tensor::Zeros({dim}));
}

Tensor LayerNorm::Forward(const Tensor& x) const {
  const auto profile_scope = ProfileScope("layer_norm");
  return attnlab::LayerNorm(x, weight_, bias_, epsilon_);
}

}  // namespace attnlab::nn
