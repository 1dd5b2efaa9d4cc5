#include "layers/attention_pooling.h"

#include <cmath>

#include "absl/strings/str_cat.h"
#include "framework/ops/ops.h"
#include "layers/attention/attention.h"
#include "layers/init.h"

namespace attnlab::nn {

absl::StatusOr<PoolingScore> ParsePoolingScore(std::string_view name) {
  if (name == "additive") return PoolingScore::kAdditive;
  if (name == "dot") return PoolingScore::kDot;
  return absl::InvalidArgumentError(absl::StrCat("unknown attention pooling score '",
                                                 std::string(name), "'; known: additive, dot"));
}

std::string_view PoolingScoreName(PoolingScore score) {
  return score == PoolingScore::kAdditive ? "additive" : "dot";
}

AttentionPooling::AttentionPooling(int64_t dim, PoolingScore score, Generator& generator,
                                   int64_t hidden_size)
    : dim_(dim), score_(score) {
  ATTNLAB_CHECK(dim > 0 && hidden_size >= 0, "AttentionPooling: dim ", dim, " and hidden_size ",
                hidden_size, " must be positive (hidden_size 0 = dim)");
  if (score == PoolingScore::kAdditive) {
    const int64_t hidden = hidden_size > 0 ? hidden_size : dim;
    projection_ =
        RegisterModule("projection", std::make_shared<Linear>(dim, hidden, true, generator));
    Tensor score_vector = Tensor::Empty({1, hidden});  // v^T, so Xavier sees fan_in = hidden
    init::XavierUniform(score_vector, generator);
    score_vector_ = RegisterParameter("score_vector", score_vector.reshape({hidden}));
  } else {
    Tensor query = Tensor::Empty({1, dim});
    init::XavierUniform(query, generator);
    query_ = RegisterParameter("query", query.reshape({dim}));
  }
}

Tensor AttentionPooling::Scores(const Tensor& x) const {
  ATTNLAB_CHECK(x.rank() == 3 && x.size(2) == dim_, "AttentionPooling: expects x [batch, time, ",
                dim_, "], got ", x.Describe());
  const int64_t batch = x.size(0), time = x.size(1);
  Tensor scores;  // [batch, time, 1]
  if (score_ == PoolingScore::kAdditive) {
    const Tensor hidden = Tanh(projection_->Forward(x));  // [batch, time, hidden]
    scores = attnlab::Linear(hidden, Reshape(score_vector_, {1, score_vector_.size(0)}), Tensor());
  } else {
    // 1/sqrt(dim) keeps the scores' spread independent of the width, as in scaled dot
    // attention, so the softmax does not saturate for wide inputs.
    scores = attnlab::Linear(x, Reshape(query_, {1, dim_}), Tensor()) *
             (1.0f / std::sqrt(static_cast<float>(dim_)));
  }
  return Reshape(scores, {batch, time});
}

AttentionPoolingOutput AttentionPooling::Forward(const Tensor& x,
                                                 const Tensor& key_padding_mask) const {
  const auto profile_scope = ProfileScope("attention_pooling");
  const Tensor scores = Scores(x);  // [batch, time]
  const int64_t batch = x.size(0), time = x.size(1);
  // The attention interface's mask builder: -inf at padding, [batch, 1, 1, time].
  const Tensor mask = BuildAttentionMask(key_padding_mask, /*causal=*/false, batch, /*tgt=*/1, time,
                                         /*query_offset=*/0, /*key_offset=*/0);
  AttentionPoolingOutput output;
  output.weights = Softmax(scores, mask.defined() ? Reshape(mask, {batch, time}) : Tensor());
  // sum_t a_t x_t as a batched [1, time] x [time, dim] product.
  const Tensor pooled = Matmul(Reshape(output.weights, {batch, 1, time}), x);  // [batch, 1, dim]
  output.pooled = Reshape(pooled, {batch, dim_});
  return output;
}

}  // namespace attnlab::nn
