// Attention pooling: a learned weighted average over time, the Keras-style "attention
// layer" that turns a sequence into one vector (Raffel & Ellis 2015, "Feed-forward
// networks with attention can solve some long-term memory problems"; Yang et al. 2016's
// word attention without the context LSTM). Each time step gets a score, a softmax over
// time turns the scores into weights, and the output is the weighted sum of the steps:
//
//   additive (Bahdanau et al. 2014's scoring):  e_t = v^T tanh(W x_t + b)
//   dot (a learned query, scaled as in Vaswani et al. 2017):  e_t = q^T x_t / sqrt(dim)
//   a = softmax_t(e + mask),  pooled = sum_t a_t x_t
//
// Unlike layers/attention/ (queries attending to keys, split into heads), there is no
// query sequence here: the query is a parameter, so the layer stands alone.
//
// Parameters (in NamedParameters() order):
//   additive: score_vector [hidden], projection.weight [hidden, dim], projection.bias [hidden]
//   dot:      query [dim]
// Initialisation: Xavier-uniform W (zero b), and Xavier-uniform for v and q viewed as
// [1, hidden] / [1, dim] matrices, as layers/attention/additive.cc initialises its v.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "framework/random/generator.h"
#include "layers/linear.h"
#include "layers/module.h"

namespace attnlab::nn {

enum class PoolingScore { kAdditive, kDot };

// "additive" or "dot"; anything else is an error listing both.
absl::StatusOr<PoolingScore> ParsePoolingScore(std::string_view name);
std::string_view PoolingScoreName(PoolingScore score);

struct AttentionPoolingOutput {
  Tensor pooled;   // [batch, dim]
  Tensor weights;  // [batch, time]; each row sums to 1 (0 everywhere if fully masked)
};

class AttentionPooling : public Module {
 public:
  // `hidden_size` is the width of the additive score's tanh layer (0: dim); the dot
  // score ignores it.
  AttentionPooling(int64_t dim, PoolingScore score, Generator& generator, int64_t hidden_size = 0);

  // x: [batch, time, dim]; key_padding_mask: f32 [batch, time], 1 where the step is
  // padding (it gets weight exactly 0), or undefined. A row whose every step is padding
  // gets all-zero weights and a zero output, never NaN.
  AttentionPoolingOutput Forward(const Tensor& x, const Tensor& key_padding_mask = Tensor()) const;

  // The unmasked scores e: [batch, time].
  Tensor Scores(const Tensor& x) const;

  PoolingScore score() const { return score_; }
  int64_t dim() const { return dim_; }

 private:
  int64_t dim_;
  PoolingScore score_;
  std::shared_ptr<Linear> projection_;  // additive: W, b
  Tensor score_vector_;                 // additive: v [hidden]
  Tensor query_;                        // dot: q [dim]
};

}  // namespace attnlab::nn
