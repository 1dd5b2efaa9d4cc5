#include "layers/transformer/encoder.h"

#include "absl/strings/str_cat.h"
#include "framework/core/error.h"

namespace attnlab::nn {

absl::StatusOr<std::shared_ptr<Encoder>> Encoder::Create(const ModelOptions& options, bool rotary,
                                                         Generator& generator) {
  auto encoder = std::shared_ptr<Encoder>(new Encoder());
  for (int64_t index = 0; index < options.encoder_layers; ++index) {
    ASSIGN_OR_RETURN(std::shared_ptr<EncoderLayer> layer,
                     EncoderLayer::Create(options, rotary, generator));
    // The child's name holds the dot, so parameters read `layers.0.self_attn...` as in PyTorch.
    encoder->layers_.push_back(encoder->RegisterModule(absl::StrCat("layers.", index), layer));
  }
  if (options.norm == NormPosition::kPre) {
    encoder->norm_ = encoder->RegisterModule("norm", std::make_shared<LayerNorm>(options.d_model));
  }
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
  return norm_ != nullptr ? norm_->Forward(hidden) : hidden;
}

}  // namespace attnlab::nn
