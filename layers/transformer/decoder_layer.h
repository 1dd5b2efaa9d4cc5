// DecoderLayer: one of the N identical decoder blocks of Vaswani et al. 2017, section 3.1:
// masked (causal) multi-head self-attention, multi-head attention over the encoder output
// ("cross-attention"), and the position-wise feed-forward network, each wrapped in a
// SublayerConnection (residual + LayerNorm, post- or pre-LN).
//
// Parameters:
//   self_attn.{q,k,v,out}_proj.{weight [d_model, d_model], bias [d_model]}
//   self_attn_sublayer.norm.{weight, bias} [d_model]
//   cross_attn.{q,k,v,out}_proj.{weight [d_model, d_model], bias [d_model]}
//   cross_attn_sublayer.norm.{weight, bias} [d_model]
//   feed_forward.linear1.{weight [d_ff, d_model], bias [d_ff]}
//   feed_forward.linear2.{weight [d_model, d_ff], bias [d_model]}
//   feed_forward_sublayer.norm.{weight, bias} [d_model]
// (plus self_attn.attention.* / cross_attn.attention.* for variants with parameters).
#pragma once

#include <memory>

#include "absl/status/statusor.h"
#include "framework/random/generator.h"
#include "layers/attention/multi_head.h"
#include "layers/feed_forward.h"
#include "layers/model_options.h"
#include "layers/module.h"
#include "layers/transformer/sublayer_connection.h"

namespace attnlab::nn {

// Incremental decoding state of one decoder layer: self-attention keys/values grow by one
// step per call (up to the variant's CacheWindow(), if it has one: local attention keeps
// only its window); cross-attention keys/values are projected from the memory once.
struct DecoderLayerCache {
  KeyValueCache self_attn;
  KeyValueCache cross_attn;
};

// Attention weights of one decoder layer, for plots.
struct DecoderLayerAttentionWeights {
  Tensor self_attn;   // [batch, heads, tgt, tgt (or the keys in the cache)]
  Tensor cross_attn;  // [batch, heads, tgt, src]
};

class DecoderLayer : public Module {
 public:
  // Fails if an attention variant is unknown or d_model does not split into heads.
  static absl::StatusOr<std::shared_ptr<DecoderLayer>> Create(const ModelOptions& options,
                                                              bool rotary, Generator& generator);

  // x: [batch, tgt, d_model]; memory (the encoder output): [batch, src, d_model];
  // src_padding_mask: f32 [batch, src], 1 at padding, or undefined -> [batch, tgt, d_model].
  // Query t attends to target positions <= t only. With a cache, x holds the next
  // positions after those already cached, and memory is read only while the cache's
  // cross-attention part is empty. If weights is given it receives the attention weights.
  Tensor Forward(const Tensor& x, const Tensor& memory, const Tensor& src_padding_mask,
                 DecoderLayerCache* cache = nullptr,
                 DecoderLayerAttentionWeights* weights = nullptr) const;

  const MultiHeadAttention& self_attn() const { return *self_attn_; }
  const MultiHeadAttention& cross_attn() const { return *cross_attn_; }

 private:
  DecoderLayer() = default;

  std::shared_ptr<MultiHeadAttention> self_attn_;
  std::shared_ptr<SublayerConnection> self_attn_sublayer_;
  std::shared_ptr<MultiHeadAttention> cross_attn_;
  std::shared_ptr<SublayerConnection> cross_attn_sublayer_;
  std::shared_ptr<PositionwiseFeedForward> feed_forward_;
  std::shared_ptr<SublayerConnection> feed_forward_sublayer_;
};

}  // namespace attnlab::nn
