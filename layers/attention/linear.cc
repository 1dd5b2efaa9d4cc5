// Linear attention, Katharopoulos et al. 2020, "Transformers are RNNs", with the feature
// map of section 3.2.1, phi(x) = elu(x) + 1 (positive, so every weight is positive).
// Replacing exp(q . k) by phi(q) . phi(k) lets the sum over keys be taken first:
//   non-causal (section 3.2, eq. 4):
//     V'_i = phi(Q_i)^T (sum_s phi(K_s) V_s^T) / (phi(Q_i)^T sum_s phi(K_s))
//   causal (section 3.3): the same with both sums over s <= i only, i.e. with the prefix
//     sums S_i = sum_{s<=i} phi(K_s) V_s^T and Z_i = sum_{s<=i} phi(K_s), here CumSum
//     over time: V'_i = phi(Q_i)^T S_i / (phi(Q_i)^T Z_i).
// Cost is O(n d^2) instead of O(n^2 d); the causal form keeps the [.., src, d, d] prefix
// sums (O(n d^2) memory) so that training stays parallel over time.
//
// Not a ScoreAttention: there is no score matrix to mask and softmax. The interface's
// shared features map as follows:
//  * key padding: phi(K_s) is zeroed at padded keys, which removes them from both sums;
//    a query with no unpadded key gets 0 / (0 + eps) = 0, finite, like softmax's zero rows;
//  * causal, with query_offset and key_offset: query t sees the prefix sums up to key
//    index t + query_offset - key_offset (clipped to the last key). With a
//    KeyValueCache, MultiHeadAttention passes every cached key, and the prefix sums are
//    recomputed over all of them at each step: O(n) per decoded token rather than the
//    O(1) of the paper's RNN form (which would need a variant-specific cache of S and Z).
//    Correct, and acceptable for the short sequences decoded here;
//  * need_weights: the implicit weights phi(q_i) . phi(k_s) / sum_s' phi(q_i) . phi(k_s'),
//    masked like the context, are computed (O(tgt * src)) only when asked for;
//  * dropout on the weights: not applicable, as the weights are never formed. The
//    probability is ignored (dropout elsewhere in the model still applies).
// eps = 1e-6 in the denominator, as in the authors' fast-transformers implementation.
#include <algorithm>
#include <vector>

#include "framework/ops/ops.h"
#include "layers/attention/attention.h"

namespace attnlab::nn {
namespace {

constexpr float kDenominatorEpsilon = 1e-6f;

class LinearAttention : public Attention {
 public:
  AttentionOutput Forward(const AttentionInputs& inputs) const override {
    const auto profile_scope = ProfileScope("attention");
    const Tensor& query = inputs.query;
    ATTNLAB_CHECK(query.rank() == 4 && inputs.key.rank() == 4 && inputs.value.rank() == 4,
                  "linear attention: expects [batch, heads, time, head_dim] tensors, got query ",
                  query.Describe(), ", key ", inputs.key.Describe(), ", value ",
                  inputs.value.Describe());
    const Tensor query_features = FeatureMap(query);  // phi(Q): [b, h, tgt, d]
    const Tensor key_features = KeyFeatures(inputs);  // phi(K): [b, h, src, d], 0 at padding
    AttentionOutput output;
    output.context = inputs.causal ? CausalContext(inputs, query_features, key_features)
                                   : Context(inputs, query_features, key_features);
    if (inputs.need_weights) output.weights = ImplicitWeights(inputs, query_features, key_features);
    return output;
  }

 private:
  // phi(x) = elu(x) + 1.
  static Tensor FeatureMap(const Tensor& x) { return AddScalar(Elu(x), 1.0f); }

  // phi(K), with rows of padded keys zeroed: [b, h, src, d].
  static Tensor KeyFeatures(const AttentionInputs& in) {
    const Tensor features = FeatureMap(in.key);
    if (!in.key_padding_mask.defined()) return features;
    const int64_t batch = in.key.size(0), src = in.key.size(2);
    ATTNLAB_CHECK(in.key_padding_mask.shape() == (Shape{batch, src}),
                  "linear attention: key padding mask ", in.key_padding_mask.Describe(),
                  " should be [batch, src] = [", batch, ", ", src, "]");
    // keep: [b, 1, src, 1], 0 at padding (any non-zero mask entry, as BuildAttentionMask).
    std::vector<float> keep = in.key_padding_mask.ToFloats();
    for (float& entry : keep) entry = entry != 0.0f ? 0.0f : 1.0f;
    return Mul(features, Tensor::FromFloats(keep, {batch, 1, src, 1}));
  }

  // Non-causal. phi(K)^T V: [b, h, d, src] x [b, h, src, d_v] -> [b, h, d, d_v], then
  // phi(Q) (phi(K)^T V): [b, h, tgt, d_v], over phi(Q) . sum_s phi(K_s): [b, h, tgt, 1].
  static Tensor Context(const AttentionInputs& in, const Tensor& query_features,
                        const Tensor& key_features) {
    const Tensor key_value = Matmul(key_features, in.value, /*transpose_a=*/true);
    const Tensor numerator = Matmul(query_features, key_value);
    const Tensor key_sum = Sum(key_features, {2}, /*keepdim=*/true);  // [b, h, 1, d]
    const Tensor denominator = Matmul(query_features, key_sum, false, /*transpose_b=*/true);
    return Div(numerator, AddScalar(denominator, kDenominatorEpsilon));
  }

  // Causal, with prefix sums S and Z over time.
  static Tensor CausalContext(const AttentionInputs& in, const Tensor& query_features,
                              const Tensor& key_features) {
    const int64_t batch = in.query.size(0), heads = in.query.size(1), tgt = in.query.size(2);
    const int64_t src = in.key.size(2), dim = in.key.size(3), value_dim = in.value.size(3);
    // phi(K_s) V_s^T: [b, h, src, d, 1] * [b, h, src, 1, d_v] -> [b, h, src, d, d_v]
    const Tensor outer = Mul(Reshape(key_features, {batch, heads, src, dim, 1}),
                             Reshape(in.value, {batch, heads, src, 1, value_dim}));
    const Tensor last_key = LastVisibleKey(tgt, src, in.query_offset - in.key_offset);
    // S_i: [b, h, tgt, d, d_v] and Z_i: [b, h, tgt, d], the prefix sums at each query's
    // last visible key.
    const Tensor key_value_prefix = IndexSelect(CumSum(outer, 2), 2, last_key);
    const Tensor key_prefix = IndexSelect(CumSum(key_features, 2), 2, last_key);
    // phi(Q_i)^T S_i: [b, h, tgt, 1, d] x [b, h, tgt, d, d_v] -> [b, h, tgt, 1, d_v]
    const Tensor numerator =
        Reshape(Matmul(Reshape(query_features, {batch, heads, tgt, 1, dim}), key_value_prefix),
                {batch, heads, tgt, value_dim});
    // phi(Q_i) . Z_i: [b, h, tgt, 1]
    const Tensor denominator = Sum(Mul(query_features, key_prefix), {3}, /*keepdim=*/true);
    return Div(numerator, AddScalar(denominator, kDenominatorEpsilon));
  }

  // i32 [tgt]: the last key query t may see, min(t + shift, src - 1), where shift =
  // query_offset - key_offset.
  static Tensor LastVisibleKey(int64_t tgt, int64_t src, int64_t shift) {
    ATTNLAB_CHECK(src > 0, "linear attention: causal attention over no keys");
    std::vector<int32_t> last(tgt);
    for (int64_t t = 0; t < tgt; ++t) {
      last[t] = static_cast<int32_t>(std::min(t + shift, src - 1));
    }
    return Tensor::FromInts(last, {tgt});
  }

  // phi(q_i) . phi(k_s) / sum_s' phi(q_i) . phi(k_s') over visible keys: [b, h, tgt, src].
  // Rows with no visible key are zero; so are padded and future keys, exactly.
  static Tensor ImplicitWeights(const AttentionInputs& in, const Tensor& query_features,
                                const Tensor& key_features) {
    Tensor similarity = Matmul(query_features, key_features, false, /*transpose_b=*/true);
    if (in.causal) {
      const int64_t tgt = in.query.size(2), src = in.key.size(2);
      std::vector<float> visible(tgt * src);
      for (int64_t t = 0; t < tgt; ++t) {
        for (int64_t s = 0; s < src; ++s) {
          visible[t * src + s] = s + in.key_offset <= t + in.query_offset;
        }
      }
      similarity = Mul(similarity, Tensor::FromFloats(visible, {tgt, src}));
    }
    const Tensor row_sum = Sum(similarity, {3}, /*keepdim=*/true);
    return Div(similarity, AddScalar(row_sum, kDenominatorEpsilon));
  }
};

ATTNLAB_REGISTER_ATTENTION(linear, "linear", [](const AttentionShape&, Generator&) {
  return std::make_shared<LinearAttention>();
});

}  // namespace
}  // namespace attnlab::nn
