// Relative position representations, Shaw, Uszkoreit & Vaswani 2018, "Self-Attention with
// Relative Position Representations": learned embeddings of the clipped distance between
// a query and a key, added to the key in the score (eq. 4) and to the value in the
// weighted sum (eq. 3):
//   e_ij = q_i . (k_j + a^K_ij) / sqrt(d_k),   z_i = sum_j alpha_ij (v_j + a^V_ij),
//   a^K_ij = w^K_clip(p_j - p_i, k),  a^V_ij = w^V_clip(p_j - p_i, k),  clip(x, k) =
//   max(-k, min(k, x)) (eq. 5-6),
// with query i at position p_i = i + query_offset, key j at p_j = j + key_offset, and k =
// max_relative_position. The 2k + 1 embeddings w^K, w^V [2k+1, head_dim] are shared by
// the heads, as in the paper (section 3.3), and each attention block has its own.
//
// Efficient form (after section 3.3, which splits each term in two so that no [batch,
// heads, tgt, src, d] tensor is formed; here not even the paper's [tgt, src, d] one):
//  * scores: q_i . w^K_r for the 2k + 1 distances r is one matmul, [b, h, tgt, d] x
//    [2k+1, d]^T -> [b, h, tgt, 2k+1]; each (i, j) then picks its entry r(i, j);
//  * values: sum_j alpha_ij w^V_r(i,j) = sum_r s_ir w^V_r, where s_ir sums the weights
//    of the keys at distance bucket r. Those keys are a contiguous range of j (one key
//    for |r| < k; every key at or beyond the clip for r = +-k), so s_ir is a difference of
//    the row's prefix sums of the weights; then [b, h, tgt, 2k+1] x [2k+1, d].
// Both cost O(tgt (src + k)) per head beyond scaled dot's matmuls.
//
// Self-attention only, as in the paper: in a block built for cross-attention
// (AttentionRole::kCross) target and source positions are different sequences, and the
// variant is exactly scaled_dot, without embeddings. The paper drops absolute position
// encodings (model.positional = "none").
#include <algorithm>
#include <cmath>
#include <memory>
#include <vector>

#include "framework/ops/ops.h"
#include "layers/attention/attention.h"
#include "layers/init.h"

namespace attnlab::nn {
namespace {

struct RelativeOptions {
  int64_t max_relative_position = 16;
};

const OptionFields<RelativeOptions>& RelativeOptionFields() {
  static const auto* fields = new OptionFields<RelativeOptions>{
      IntOption("max_relative_position", &RelativeOptions::max_relative_position,
                "k of Shaw et al. 2018: distances are clipped to [-k, k], so 2k + 1 key and "
                "value embeddings are learned.",
                1, 512),
  };
  return *fields;
}

class RelativeAttention : public ScoreAttention {
 public:
  RelativeAttention(const AttentionShape& shape, const RelativeOptions& options,
                    Generator& generator)
      : scale_(1.0f / std::sqrt(static_cast<float>(shape.head_dim))),
        max_relative_position_(options.max_relative_position) {
    if (shape.role != AttentionRole::kSelf) return;
    const int64_t distances = 2 * max_relative_position_ + 1;
    Tensor key_embedding = Tensor::Empty({distances, shape.head_dim});
    Tensor value_embedding = Tensor::Empty({distances, shape.head_dim});
    init::XavierUniform(key_embedding, generator);
    init::XavierUniform(value_embedding, generator);
    key_embedding_ = RegisterParameter("relative_key_embedding", key_embedding);
    value_embedding_ = RegisterParameter("relative_value_embedding", value_embedding);
  }

 protected:
  // (q_i . k_j + q_i . a^K_ij) / sqrt(d_k): [b, h, tgt, src]
  Tensor Scores(const AttentionInputs& in) const override {
    const Tensor content = Matmul(in.query, in.key, false, true);
    if (!key_embedding_.defined()) return MulScalar(content, scale_);  // cross-attention
    const int64_t tgt = in.query.size(2), src = in.key.size(2);
    // q_i . w^K_r for every distance: [b, h, tgt, 2k+1]
    const Tensor by_distance = Matmul(in.query, key_embedding_, false, /*transpose_b=*/true);
    std::vector<int32_t> picks(tgt * src);  // r(i, j), the clipped distance + k
    for (int64_t i = 0; i < tgt; ++i) {
      for (int64_t j = 0; j < src; ++j) {
        const int64_t distance = j - OwnKeyIndex(in, i);  // p_j - p_i
        picks[i * src + j] = static_cast<int32_t>(
            std::clamp(distance, -max_relative_position_, max_relative_position_) +
            max_relative_position_);
      }
    }
    return MulScalar(Add(content, PickPerQuery(by_distance, picks, src)), scale_);
  }

  // sum_j alpha_ij v_j + sum_r s_ir w^V_r: [b, h, tgt, d]
  Tensor Context(const Tensor& undropped, const AttentionInputs& in) const override {
    if (!value_embedding_.defined()) return ScoreAttention::Context(undropped, in);  // cross
    const Tensor weights = Dropout(undropped, in.dropout, is_training());
    const Tensor content = Matmul(weights, in.value);
    const int64_t batch = weights.size(0), heads = weights.size(1);
    const int64_t tgt = weights.size(2), src = weights.size(3);
    const int64_t distances = 2 * max_relative_position_ + 1;
    // prefix[.., i, m] = sum_{j < m} alpha_ij: [b, h, tgt, src + 1]
    const Tensor prefix =
        Concat({Tensor::Zeros({batch, heads, tgt, 1}), CumSum(weights, 3)}, /*dim=*/3);
    // Bucket r of query i holds the keys j in [begin, end): s_ir = prefix[end] - prefix[begin].
    std::vector<int32_t> begins(tgt * distances), ends(tgt * distances);
    for (int64_t i = 0; i < tgt; ++i) {
      for (int64_t r = 0; r < distances; ++r) {
        const int64_t key = OwnKeyIndex(in, i) + r - max_relative_position_;  // p_j = p_i + r - k
        const int64_t begin = r == 0 ? 0 : key;                  // r = 0: every j up to key
        const int64_t end = r == distances - 1 ? src : key + 1;  // r = 2k: every j from key
        begins[i * distances + r] = static_cast<int32_t>(std::clamp<int64_t>(begin, 0, src));
        ends[i * distances + r] = static_cast<int32_t>(std::clamp<int64_t>(end, 0, src));
      }
    }
    const Tensor bucket_weights =
        Sub(PickPerQuery(prefix, ends, distances), PickPerQuery(prefix, begins, distances));
    // [b, h, tgt, 2k+1] x [2k+1, d]
    return Add(content, Matmul(bucket_weights, value_embedding_));
  }

 private:
  // The key index at query i's own position, p_i - key_offset (it may lie outside
  // [0, src) when the keys are not the queries' positions).
  static int64_t OwnKeyIndex(const AttentionInputs& in, int64_t i) {
    return i + in.query_offset - in.key_offset;
  }

  // x [b, h, tgt, n], columns: i32 [tgt * count] row-major, each in [0, n) ->
  // out [b, h, tgt, count] with out[.., i, c] = x[.., i, columns[i * count + c]]: one
  // IndexSelect over x viewed as [b * h, tgt * n].
  static Tensor PickPerQuery(const Tensor& x, const std::vector<int32_t>& columns, int64_t count) {
    const int64_t batch = x.size(0), heads = x.size(1), tgt = x.size(2), n = x.size(3);
    std::vector<int32_t> flat(columns.size());
    for (int64_t i = 0; i < tgt; ++i) {
      for (int64_t c = 0; c < count; ++c) {
        flat[i * count + c] = static_cast<int32_t>(i * n + columns[i * count + c]);
      }
    }
    const Tensor picked =
        IndexSelect(Reshape(x, {batch * heads, tgt * n}), 1, Tensor::FromInts(flat, {tgt * count}));
    return Reshape(picked, {batch, heads, tgt, count});
  }

  float scale_;
  int64_t max_relative_position_;  // k
  // w^K_{-k..k}, w^V_{-k..k}: [2k+1, head_dim]; undefined in cross-attention.
  Tensor key_embedding_, value_embedding_;
};

ATTNLAB_REGISTER_ATTENTION(relative, "relative", RelativeOptionFields(),
                           [](const AttentionShape& shape, const RelativeOptions& options,
                              Generator& generator) {
                             return std::make_shared<RelativeAttention>(shape, options, generator);
                           });

}  // namespace
}  // namespace attnlab::nn
