// Encoder: a stack of N EncoderLayers (Vaswani et al. 2017, section 3.1). A pre-LN stack
// ends with a LayerNorm, since its residual stream is never normalized inside the layers
// (Xiong et al. 2020); a post-LN stack has none.
//
// Parameters: layers.<i>.* (see encoder_layer.h) for i in [0, N); norm.{weight, bias}
// [d_model] when pre-LN.
#pragma once

#include <memory>
#include <vector>

#include "absl/status/statusor.h"
#include "framework/random/generator.h"
#include "layers/model_options.h"
#include "layers/transformer/encoder_layer.h"
#include "layers/transformer/layer_stack.h"

namespace attnlab::nn {

class Encoder : public LayerStack<EncoderLayer> {
 public:
  static absl::StatusOr<std::shared_ptr<Encoder>> Create(const ModelOptions& options, bool rotary,
                                                         Generator& generator);

  // x: embedded source [batch, src, d_model]; src_padding_mask: f32 [batch, src], 1 at
  // padding, or undefined -> memory [batch, src, d_model]. If self_attention_weights is
  // given it receives one [batch, heads, src, src] tensor per layer.
  Tensor Forward(const Tensor& x, const Tensor& src_padding_mask,
                 std::vector<Tensor>* self_attention_weights = nullptr) const;

 private:
  Encoder() = default;
};

}  // namespace attnlab::nn
