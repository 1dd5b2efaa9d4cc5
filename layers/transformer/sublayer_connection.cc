#include "layers/transformer/sublayer_connection.h"

#include "absl/strings/str_cat.h"
#include "framework/ops/ops.h"

namespace attnlab::nn {

absl::StatusOr<NormPosition> ParseNormPosition(std::string_view name) {
  if (name == "post") return NormPosition::kPost;
  if (name == "pre") return NormPosition::kPre;
  return absl::InvalidArgumentError(
      absl::StrCat("unknown norm position '", std::string(name), "'; known: post, pre"));
}

std::string_view NormPositionName(NormPosition position) {
  return position == NormPosition::kPost ? "post" : "pre";
}

SublayerConnection::SublayerConnection(int64_t d_model, float dropout, NormPosition norm_position)
    : dropout_(dropout), norm_position_(norm_position) {
  norm_ = RegisterModule("norm", std::make_shared<LayerNorm>(d_model));
}

Tensor SublayerConnection::Forward(const Tensor& x,
                                   absl::FunctionRef<Tensor(const Tensor&)> sublayer) const {
  const auto profile_scope = ProfileScope("sublayer_connection");
  if (norm_position_ == NormPosition::kPre) {
    return AddDropout(x, sublayer(norm_->Forward(x)), dropout_, is_training());  // x + Dropout(...)
  }
  return norm_->Forward(AddDropout(x, sublayer(x), dropout_, is_training()));
}

}  // namespace attnlab::nn
