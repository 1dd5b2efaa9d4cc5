#include "layers/transformer/encoder_layer.h"

#include "framework/core/error.h"

namespace attnlab::nn {

absl::StatusOr<std::shared_ptr<EncoderLayer>> EncoderLayer::Create(const ModelOptions& options,
                                                                   bool rotary,
                                                                   Generator& generator) {
  auto layer = std::shared_ptr<EncoderLayer>(new EncoderLayer());
  ASSIGN_OR_RETURN(std::shared_ptr<MultiHeadAttention> self_attn,
                   MultiHeadAttention::Create(options.d_model, options.attention,
                                              AttentionRole::kSelf, rotary, generator));
  layer->self_attn_ = layer->RegisterModule("self_attn", std::move(self_attn));
  layer->self_attn_sublayer_ = layer->RegisterModule(
      "self_attn_sublayer",
      std::make_shared<SublayerConnection>(options.d_model, options.dropout, options.norm));
  layer->feed_forward_ = layer->RegisterModule(
      "feed_forward",
      std::make_shared<PositionwiseFeedForward>(options.d_model, options.d_ff, options.dropout,
                                                options.activation, generator));
  layer->feed_forward_sublayer_ = layer->RegisterModule(
      "feed_forward_sublayer",
      std::make_shared<SublayerConnection>(options.d_model, options.dropout, options.norm));
  return layer;
}

Tensor EncoderLayer::Forward(const Tensor& x, const Tensor& src_padding_mask,
                             Tensor* self_attention_weights) const {
  const auto profile_scope = ProfileScope("encoder_layer");
  const Tensor attended = self_attn_sublayer_->Forward(x, [&](const Tensor& normed) {
    MultiHeadAttentionCall call;
    call.query = call.key = call.value = normed;  // [batch, src, d_model]
    call.key_padding_mask = src_padding_mask;
    call.need_weights = self_attention_weights != nullptr;
    MultiHeadAttentionOutput result = self_attn_->Forward(call);
    if (self_attention_weights != nullptr) *self_attention_weights = result.weights;
    return result.output;
  });
  return feed_forward_sublayer_->Forward(
      attended, [&](const Tensor& normed) { return feed_forward_->Forward(normed); });
}

}  // namespace attnlab::nn
