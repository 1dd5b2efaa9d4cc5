// SublayerConnection: the "Add & Norm" box of Vaswani et al. 2017 (Figure 1), a residual
// connection around a sublayer with layer normalization, in one of two placements:
//   post-LN (the paper, section 3.1 and 5.4):  LN(x + Dropout(Sublayer(x)))
//   pre-LN  (Xiong et al. 2020; the Annotated Transformer, tensor2tensor v2):
//                                              x + Dropout(Sublayer(LN(x)))
// Pre-LN trains without warmup but leaves the residual stream unnormalized, so a pre-LN
// Encoder/Decoder ends with one more LayerNorm.
//
// Parameters: norm.weight [d_model], norm.bias [d_model].
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "absl/functional/function_ref.h"
#include "absl/status/statusor.h"
#include "layers/layer_norm.h"
#include "layers/module.h"

namespace attnlab::nn {

enum class NormPosition { kPost, kPre };

// "post" or "pre" (the names configs use); anything else is an error naming both.
absl::StatusOr<NormPosition> ParseNormPosition(std::string_view name);
std::string_view NormPositionName(NormPosition position);

class SublayerConnection : public Module {
 public:
  SublayerConnection(int64_t d_model, float dropout, NormPosition norm_position);

  // x: [batch, time, d_model]; sublayer maps [batch, time, d_model] to the same shape.
  // -> [batch, time, d_model]
  Tensor Forward(const Tensor& x, absl::FunctionRef<Tensor(const Tensor&)> sublayer) const;

  NormPosition norm_position() const { return norm_position_; }
  const LayerNorm& norm() const { return *norm_; }

 private:
  std::shared_ptr<LayerNorm> norm_;
  float dropout_;
  NormPosition norm_position_;
};

}  // namespace attnlab::nn
