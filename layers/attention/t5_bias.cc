// T5's relative attention bias, Raffel et al. 2020, section 2.1: no position embeddings;
// instead a learned scalar per head and per relative-position bucket is added to the
// attention logits,
//   e_ij = q_i . k_j / sqrt(d_k) + b_h[bucket(p_j - p_i)],
// with query i at position p_i = i + query_offset and key j at p_j = j + key_offset, and
// the log-spaced buckets of T5RelativePositionBucket (t5_bias.h): bidirectional for
// non-causal self-attention (the encoder), unidirectional for causal self-attention (the
// decoder), as in T5. Cross-attention (a block built with AttentionRole::kCross) gets no
// bias and no table, as in T5, and is then exactly scaled_dot.
//
// Differences from T5: the dot products are scaled by 1/sqrt(d_k) (T5 folds that scale
// into its initialisation; here the projections are the Transformer's), and every
// attention block owns its table (T5 shares one table across the layers of a stack).
//
// Parameter: relative_attention_bias [num_buckets, heads] (the layout of T5's
// relative_attention_bias embedding), drawn from N(0, 1/(heads d_k)), i.e. d_model^-1/2
// at the default key size, the scale of the Hugging Face port of T5, so that heads start
// from different distance preferences.
#include "layers/attention/t5_bias.h"

#include <algorithm>
#include <cmath>
#include <memory>
#include <vector>

#include "framework/ops/ops.h"
#include "layers/attention/attention.h"
#include "layers/init.h"

namespace attnlab::nn {

int64_t T5RelativePositionBucket(int64_t relative_position, bool bidirectional, int64_t num_buckets,
                                 int64_t max_distance) {
  int64_t bucket = 0;
  int64_t behind = -relative_position;  // n: how far the key lies behind the query
  if (bidirectional) {
    num_buckets /= 2;
    if (behind < 0) bucket += num_buckets;
    behind = std::abs(behind);
  } else {
    behind = std::max<int64_t>(behind, 0);
  }
  const int64_t max_exact = num_buckets / 2;
  if (behind < max_exact) return bucket + behind;
  if (behind >= max_distance) return bucket + num_buckets - 1;
  // max_exact <= behind < max_distance, so both logarithms are positive.
  const double log_scale = std::log(static_cast<double>(behind) / max_exact) /
                           std::log(static_cast<double>(max_distance) / max_exact);
  const auto large = max_exact + static_cast<int64_t>(log_scale * (num_buckets - max_exact));
  return bucket + std::min(large, num_buckets - 1);
}

namespace {

struct T5BiasOptions {
  int64_t num_buckets = 32;
  int64_t max_distance = 128;
};

const OptionFields<T5BiasOptions>& T5BiasOptionFields() {
  static const auto* fields = new OptionFields<T5BiasOptions>{
      IntOption("num_buckets", &T5BiasOptions::num_buckets,
                "Relative-position buckets per head (half per direction in the encoder): "
                "exact for short distances, log-spaced up to max_distance.",
                4, 1024),
      IntOption("max_distance", &T5BiasOptions::max_distance,
                "Distances from this on share the last bucket.", 1, 1 << 20),
  };
  return *fields;
}

class T5BiasAttention : public ScoreAttention {
 public:
  T5BiasAttention(const AttentionShape& shape, const T5BiasOptions& options, Generator& generator)
      : scale_(1.0f / std::sqrt(static_cast<float>(shape.head_dim))),
        heads_(shape.heads),
        num_buckets_(options.num_buckets),
        max_distance_(options.max_distance) {
    if (shape.role != AttentionRole::kSelf) return;
    Tensor table = Tensor::Empty({num_buckets_, heads_});
    init::Normal(table, 0.0f, 1.0f / std::sqrt(static_cast<float>(heads_ * shape.head_dim)),
                 generator);
    bias_table_ = RegisterParameter("relative_attention_bias", table);
  }

 protected:
  // q k^T / sqrt(d_k) + bias: [b, h, tgt, src] + [1, h, tgt, src]
  Tensor Scores(const AttentionInputs& in) const override {
    const Tensor scores = MulScalar(Matmul(in.query, in.key, false, true), scale_);
    if (!bias_table_.defined()) return scores;  // cross-attention
    ATTNLAB_CHECK(in.query.size(1) == heads_, "t5_bias attention: built for ", heads_,
                  " heads, called with query ", in.query.Describe());
    return Add(scores, PositionBias(in));
  }

 private:
  // b_h[bucket(p_j - p_i)]: the table's rows picked by bucket, [tgt, src, heads], moved
  // to [1, heads, tgt, src].
  Tensor PositionBias(const AttentionInputs& in) const {
    const int64_t tgt = in.query.size(2), src = in.key.size(2);
    std::vector<int32_t> buckets(tgt * src);
    for (int64_t i = 0; i < tgt; ++i) {
      for (int64_t j = 0; j < src; ++j) {
        const int64_t relative_position = (j + in.key_offset) - (i + in.query_offset);
        buckets[i * src + j] = static_cast<int32_t>(T5RelativePositionBucket(
            relative_position, /*bidirectional=*/!in.causal, num_buckets_, max_distance_));
      }
    }
    const Tensor bias = Embedding(bias_table_, Tensor::FromInts(buckets, {tgt, src}));
    return Reshape(Permute(bias, {2, 0, 1}), {1, heads_, tgt, src});
  }

  float scale_;
  int64_t heads_, num_buckets_, max_distance_;
  Tensor bias_table_;  // [num_buckets, heads]; undefined in cross-attention
};

ATTNLAB_REGISTER_ATTENTION(t5_bias, "t5_bias", T5BiasOptionFields(),
                           [](const AttentionShape& shape, const T5BiasOptions& options,
                              Generator& generator) {
                             return std::make_shared<T5BiasAttention>(shape, options, generator);
                           });

}  // namespace
}  // namespace attnlab::nn
