#include "layers/feed_forward.h"

#include "absl/strings/str_cat.h"
#include "framework/ops/ops.h"

namespace attnlab::nn {

absl::StatusOr<FeedForwardActivation> ParseFeedForwardActivation(std::string_view name) {
  if (name == "relu") return FeedForwardActivation::kRelu;
  if (name == "gelu") return FeedForwardActivation::kGelu;
  return absl::InvalidArgumentError(
      absl::StrCat("unknown feed-forward activation '", std::string(name), "'; known: relu, gelu"));
}

std::string_view FeedForwardActivationName(FeedForwardActivation activation) {
  return activation == FeedForwardActivation::kRelu ? "relu" : "gelu";
}

PositionwiseFeedForward::PositionwiseFeedForward(int64_t d_model, int64_t d_ff, float dropout,
                                                 FeedForwardActivation activation,
                                                 Generator& generator)
    : dropout_(dropout), activation_(activation) {
  linear1_ = RegisterModule("linear1", std::make_shared<Linear>(d_model, d_ff, true, generator));
  linear2_ = RegisterModule("linear2", std::make_shared<Linear>(d_ff, d_model, true, generator));
}

Tensor PositionwiseFeedForward::Forward(const Tensor& x) const {
  const auto profile_scope = ProfileScope("feed_forward");
  const Tensor hidden = linear1_->Forward(x);  // [..., d_ff]
  const Tensor dropped = activation_ == FeedForwardActivation::kRelu
                             ? ReluDropout(hidden, dropout_, is_training())  // one pass
                             : Dropout(GeluErf(hidden), dropout_, is_training());
  return linear2_->Forward(dropped);  // [..., d_model]
}

}  // namespace attnlab::nn
