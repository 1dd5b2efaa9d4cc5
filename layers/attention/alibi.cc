// ALiBi, Press et al. 2022, "Train Short, Test Long", section 3: no position embeddings;
// instead a fixed, head-specific linear penalty on distance is added to the scaled dot
// scores:  softmax(q_i K^T / sqrt(d_k) + m_h * [-(i - 1), ..., -2, -1, 0]),
// i.e. bias(h, i, j) = -m_h * (i - j) for key j <= query i.
//
// Slopes: m_h = 2^(-8 (h + 1) / H) for h = 0..H-1 when H is a power of two (the paper's
// geometric sequence starting and stepping at 2^(-8/H)). For other H we follow the
// authors' reference code (get_slopes in ofirpress/attention_with_linear_biases): the H'
// slopes of the largest power of two H' <= H, then the first H - H' of the odd-position
// slopes of 2H', i.e. 2^(-4 (2k + 1) / H') for k = 0..H-H'-1 (slopes that interleave
// the first ones).
//
// Positions: query i is at absolute position i + query_offset (so a cached decoding step
// gets the same bias as in full recomputation), key j at j + key_offset. The paper covers
// causal attention only; for non-causal attention (encoder self-attention,
// cross-attention) we use the symmetric -m_h * |i - j|, the common bidirectional
// extension. Under a causal
// mask the two agree on every unmasked entry, so one formula serves both. In
// cross-attention this puts target and source positions on one axis: a monotone-
// alignment prior, sensible for copy-like tasks and worth knowing about for others.
#include <cmath>
#include <cstdlib>
#include <vector>

#include "framework/ops/ops.h"
#include "layers/attention/attention.h"

namespace attnlab::nn {
namespace {

// The paper's head slopes (see above), for num_heads >= 1.
std::vector<double> AlibiSlopes(int64_t num_heads) {
  int64_t power_of_two = 1;
  while (power_of_two * 2 <= num_heads) power_of_two *= 2;
  std::vector<double> slopes;
  for (int64_t h = 0; h < power_of_two; ++h) {
    slopes.push_back(std::pow(2.0, -8.0 * static_cast<double>(h + 1) / power_of_two));
  }
  for (int64_t k = 0; static_cast<int64_t>(slopes.size()) < num_heads; ++k) {
    slopes.push_back(std::pow(2.0, -4.0 * static_cast<double>(2 * k + 1) / power_of_two));
  }
  return slopes;
}

class AlibiAttention : public ScoreAttention {
 public:
  explicit AlibiAttention(const AttentionShape& shape)
      : scale_(1.0f / std::sqrt(static_cast<float>(shape.head_dim))),
        slopes_(AlibiSlopes(shape.heads)) {}

 protected:
  // q k^T / sqrt(d) + bias: [b, h, tgt, src] + [1, h, tgt, src]
  Tensor Scores(const AttentionInputs& in) const override {
    const int64_t heads = in.query.size(1), tgt = in.query.size(2), src = in.key.size(2);
    ATTNLAB_CHECK(heads == static_cast<int64_t>(slopes_.size()), "alibi attention: built for ",
                  slopes_.size(), " heads, called with query ", in.query.Describe());
    const Tensor scores = MulScalar(Matmul(in.query, in.key, false, true), scale_);
    return Add(scores, DistanceBias(tgt, src, in.query_offset - in.key_offset));
  }

 private:
  // bias[0, h, i, j] = -m_h * |i - j + shift|, shift = query_offset - key_offset (the
  // distance between the query and key positions): [1, heads, tgt, src], no gradient.
  Tensor DistanceBias(int64_t tgt, int64_t src, int64_t shift) const {
    const int64_t heads = static_cast<int64_t>(slopes_.size());
    Tensor bias = Tensor::Empty({1, heads, tgt, src});
    float* values = bias.data<float>();
    for (int64_t h = 0; h < heads; ++h) {
      for (int64_t i = 0; i < tgt; ++i) {
        for (int64_t j = 0; j < src; ++j) {
          const int64_t distance = std::llabs(i - j + shift);
          values[(h * tgt + i) * src + j] = static_cast<float>(-slopes_[h] * distance);
        }
      }
    }
    return bias;
  }

  float scale_;
  std::vector<double> slopes_;  // m_h, one per head
};

ATTNLAB_REGISTER_ATTENTION(alibi, "alibi", [](const AttentionShape& shape, Generator&) {
  return std::make_shared<AlibiAttention>(shape);
});

}  // namespace
}  // namespace attnlab::nn
