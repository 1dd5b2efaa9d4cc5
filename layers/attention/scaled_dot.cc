// Scaled dot-product attention, Vaswani et al. 2017, eq. (1): softmax(Q K^T / sqrt(d_k)) V,
// fused into one op from kFusedMinKeys keys on and for decoding steps (below).
#include <cmath>

#include "framework/ops/mixed_precision.h"
#include "framework/ops/ops.h"
#include "layers/attention/attention.h"

namespace attnlab::nn {
namespace {

// From this many keys on, f32 attention whose weights are not needed runs as one fused
// op (ScaledDotProductAttention: O(length) memory instead of the [batch, heads, tgt, src]
// scores, weights and dropped weights), below it as the composite ops, which were faster
// at the reference lengths (24 to 64 keys); the crossover and the memory are measured by
// `attnlab bench --attention_sweep` (README, Performance). Mixed precision training keeps
// the composite path: its products run in bf16, the fused op in f32.
constexpr int64_t kFusedMinKeys = 128;

class ScaledDotAttention : public ScoreAttention {
 public:
  explicit ScaledDotAttention(const AttentionShape& shape)
      : scale_(1.0f / std::sqrt(static_cast<float>(shape.head_dim))) {}

 protected:
  // [b, h, tgt, d] x [b, h, src, d]^T -> [b, h, tgt, src]
  Tensor Scores(const AttentionInputs& in) const override {
    return MulScalar(Matmul(in.query, in.key, false, true), scale_);
  }

  std::optional<Tensor> FusedContext(const AttentionInputs& in) const override {
    // One query outside training is a decoding step: the fused op reads the cached keys
    // and values in place, where the composite runs two per-head products and a softmax
    // on [batch, heads, 1, src] (f32 in either precision: that is only more accurate).
    const bool decoding_step = in.query.size(2) == 1 && !is_training();
    if (!decoding_step && (in.key.size(2) < kFusedMinKeys || MatmulInputDType() != DType::kF32)) {
      return std::nullopt;
    }
    // Key s is at position s + key_offset, query t at t + query_offset: the fused op's
    // causal limit s <= t + offset takes the difference.
    return ScaledDotProductAttention(in.query, in.key, in.value, in.key_padding_mask, in.causal,
                                     in.query_offset - in.key_offset, scale_, in.dropout,
                                     is_training());
  }

 private:
  float scale_;
};

ATTNLAB_REGISTER_ATTENTION(scaled_dot, "scaled_dot", [](const AttentionShape& shape, Generator&) {
  return std::make_shared<ScaledDotAttention>(shape);
});

}  // namespace
}  // namespace attnlab::nn
