// Position-wise feed-forward network, Vaswani et al. 2017, section 3.3, eq. (2):
// FFN(x) = max(0, x W_1 + b_1) W_2 + b_2, applied to every position separately. GELU
// (Hendrycks & Gimpel 2016, the exact erf form, as BERT and PyTorch's "gelu") may replace
// the ReLU. Dropout sits between the two layers, as in the Annotated Transformer and
// PyTorch's nn.TransformerEncoderLayer.
//
// Parameters (PyTorch's nn.TransformerEncoderLayer names):
//   linear1.weight [d_ff, d_model], linear1.bias [d_ff],
//   linear2.weight [d_model, d_ff], linear2.bias [d_model].
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "framework/random/generator.h"
#include "layers/linear.h"
#include "layers/module.h"

namespace attnlab::nn {

enum class FeedForwardActivation { kRelu, kGelu };

// "relu" or "gelu" (the names configs use); anything else is an error naming both.
absl::StatusOr<FeedForwardActivation> ParseFeedForwardActivation(std::string_view name);
std::string_view FeedForwardActivationName(FeedForwardActivation activation);

class PositionwiseFeedForward : public Module {
 public:
  PositionwiseFeedForward(int64_t d_model, int64_t d_ff, float dropout,
                          FeedForwardActivation activation, Generator& generator);

  // x: [..., d_model] -> [..., d_model]
  Tensor Forward(const Tensor& x) const;

  const Linear& linear1() const { return *linear1_; }
  const Linear& linear2() const { return *linear2_; }

 private:
  std::shared_ptr<Linear> linear1_;
  std::shared_ptr<Linear> linear2_;
  float dropout_;
  FeedForwardActivation activation_;
};

}  // namespace attnlab::nn
