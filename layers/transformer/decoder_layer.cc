#include "layers/transformer/decoder_layer.h"

#include "framework/core/error.h"

namespace attnlab::nn {

absl::StatusOr<std::shared_ptr<DecoderLayer>> DecoderLayer::Create(const ModelOptions& options,
                                                                   bool rotary,
                                                                   Generator& generator) {
  auto layer = std::shared_ptr<DecoderLayer>(new DecoderLayer());
  auto make_sublayer = [&options] {
    return std::make_shared<SublayerConnection>(options.d_model, options.dropout, options.norm);
  };
  ASSIGN_OR_RETURN(std::shared_ptr<MultiHeadAttention> self_attn,
                   MultiHeadAttention::Create(options.d_model, options.attention,
                                              AttentionRole::kSelf, rotary, generator));
  layer->self_attn_ = layer->RegisterModule("self_attn", std::move(self_attn));
  layer->self_attn_sublayer_ = layer->RegisterModule("self_attn_sublayer", make_sublayer());
  // Source and target positions are different sequences, so cross-attention never rotates.
  ASSIGN_OR_RETURN(
      std::shared_ptr<MultiHeadAttention> cross_attn,
      MultiHeadAttention::Create(options.d_model, options.attention, AttentionRole::kCross,
                                 /*rotary=*/false, generator));
  layer->cross_attn_ = layer->RegisterModule("cross_attn", std::move(cross_attn));
  layer->cross_attn_sublayer_ = layer->RegisterModule("cross_attn_sublayer", make_sublayer());
  layer->feed_forward_ = layer->RegisterModule(
      "feed_forward",
      std::make_shared<PositionwiseFeedForward>(options.d_model, options.d_ff, options.dropout,
                                                options.activation, generator));
  layer->feed_forward_sublayer_ = layer->RegisterModule("feed_forward_sublayer", make_sublayer());
  return layer;
}

Tensor DecoderLayer::Forward(const Tensor& x, const Tensor& memory, const Tensor& src_padding_mask,
                             DecoderLayerCache* cache,
                             DecoderLayerAttentionWeights* weights) const {
  const auto profile_scope = ProfileScope("decoder_layer");
  const bool need_weights = weights != nullptr;
  const Tensor self_attended = self_attn_sublayer_->Forward(x, [&](const Tensor& normed) {
    MultiHeadAttentionCall call;
    call.query = call.key = call.value = normed;  // [batch, tgt, d_model]
    call.causal = true;
    call.need_weights = need_weights;
    call.cache = cache != nullptr ? &cache->self_attn : nullptr;
    MultiHeadAttentionOutput result = self_attn_->Forward(call);
    if (need_weights) weights->self_attn = result.weights;
    return result.output;
  });
  const Tensor cross_attended =
      cross_attn_sublayer_->Forward(self_attended, [&](const Tensor& normed) {
        MultiHeadAttentionCall call;
        call.query = normed;             // [batch, tgt, d_model]
        call.key = call.value = memory;  // [batch, src, d_model]
        call.key_padding_mask = src_padding_mask;
        call.need_weights = need_weights;
        call.cache = cache != nullptr ? &cache->cross_attn : nullptr;
        call.static_keys = true;
        MultiHeadAttentionOutput result = cross_attn_->Forward(call);
        if (need_weights) weights->cross_attn = result.weights;
        return result.output;
      });
  return feed_forward_sublayer_->Forward(
      cross_attended, [&](const Tensor& normed) { return feed_forward_->Forward(normed); });
}

}  // namespace attnlab::nn
