#include "layers/linear.h"

#include "framework/ops/ops.h"
#include "layers/init.h"

namespace attnlab::nn {

Linear::Linear(int64_t in_features, int64_t out_features, bool bias, Generator& generator) {
  weight_ = Tensor::Empty({out_features, in_features});
  init::XavierUniform(weight_, generator);
  weight_ = RegisterParameter("weight", weight_);
  if (bias) bias_ = RegisterParameter("bias", Tensor::Zeros({out_features}));
}

Tensor Linear::Forward(const Tensor& x) const {
  const auto profile_scope = ProfileScope("linear");
  return attnlab::Linear(x, weight_, bias_);
}

}  // namespace attnlab::nn
