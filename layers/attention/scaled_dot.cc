// Scaled dot-product attention, Vaswani et al. 2017, eq. (1): softmax(Q K^T / sqrt(d_k)) V.
#include <cmath>

#include "framework/ops/ops.h"
#include "layers/attention/attention.h"

namespace attnlab::nn {
namespace {

class ScaledDotAttention : public ScoreAttention {
 public:
  explicit ScaledDotAttention(const AttentionShape& shape)
      : scale_(1.0f / std::sqrt(static_cast<float>(shape.head_dim))) {}

 protected:
  // [b, h, tgt, d] x [b, h, src, d]^T -> [b, h, tgt, src]
  Tensor Scores(const AttentionInputs& in) const override {
    return MulScalar(Matmul(in.query, in.key, false, true), scale_);
  }

 private:
  float scale_;
};

ATTNLAB_REGISTER_ATTENTION(scaled_dot, "scaled_dot", [](const AttentionShape& shape, Generator&) {
  return std::make_shared<ScaledDotAttention>(shape);
});

}  // namespace
}  // namespace attnlab::nn
