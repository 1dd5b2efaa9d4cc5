#include "layers/transformer/output_projection.h"

#include "framework/ops/ops.h"
#include "layers/init.h"

namespace attnlab::nn {

OutputProjection::OutputProjection(int64_t d_model, int64_t vocab_size, Generator& generator)
    : tied_(false) {
  Tensor weight = Tensor::Empty({vocab_size, d_model});
  init::XavierUniform(weight, generator);
  weight_ = RegisterParameter("weight", weight);
  bias_ = RegisterParameter("bias", Tensor::Zeros({vocab_size}));
}

OutputProjection::OutputProjection(const Tensor& shared_weight)
    : weight_(shared_weight), tied_(true) {
  ATTNLAB_CHECK(shared_weight.rank() == 2, "OutputProjection: shared weight ",
                shared_weight.Describe(), " should be [vocab, d_model]");
  bias_ = RegisterParameter("bias", Tensor::Zeros({shared_weight.size(0)}));
}

Tensor OutputProjection::Forward(const Tensor& x) const {
  const auto profile_scope = ProfileScope("output_projection");
  return attnlab::Linear(x, weight_, bias_);
}

}  // namespace attnlab::nn
