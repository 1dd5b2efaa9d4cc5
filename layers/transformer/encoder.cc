#include "layers/transformer/encoder.h"

#include "framework/core/error.h"

namespace attnlab::nn {

absl::StatusOr<std::shared_ptr<Encoder>> Encoder::Create(const ModelOptions& options, bool rotary,
                                                         Generator& generator) {
  auto encoder = std::shared_ptr<Encoder>(new Encoder());
  RETURN_IF_ERROR(encoder->BuildLayers(options, options.encoder_layers, rotary, generator));
  return encoder;
}

Tensor Encoder::Forward(const Tensor& x, const Tensor& src_padding_mask,
                        std::vector<Tensor>* self_attention_weights) const {
  const auto profile_scope = ProfileScope("encoder");
  if (self_attention_weights != nullptr) self_attention_weights->assign(layers_.size(), Tensor());
  Tensor hidden = x;  // [batch, src, d_model]
  for (size_t index = 0; index < layers_.size(); ++index) {
    hidden = layers_[index]->Forward(
        hidden, src_padding_mask,
        self_attention_weights != nullptr ? &(*self_attention_weights)[index] : nullptr);
  }
  return FinalNorm(hidden);
}

}  // namespace attnlab::nn
