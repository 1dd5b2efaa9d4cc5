// EncoderLayer: one of the N identical encoder blocks of Vaswani et al. 2017, section 3.1:
// multi-head self-attention, then the position-wise feed-forward network, each wrapped
// in a SublayerConnection (residual + LayerNorm, post- or pre-LN).
//
// Parameters:
//   self_attn.{q,k,v,out}_proj.{weight [d_model, d_model], bias [d_model]}
//   self_attn.attention.*              (only variants with parameters)
//   self_attn_sublayer.norm.{weight, bias} [d_model]
//   feed_forward.linear1.{weight [d_ff, d_model], bias [d_ff]}
//   feed_forward.linear2.{weight [d_model, d_ff], bias [d_model]}
//   feed_forward_sublayer.norm.{weight, bias} [d_model]
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

class EncoderLayer : public Module {
 public:
  // Fails if the attention variant is unknown or d_model does not split into heads.
  static absl::StatusOr<std::shared_ptr<EncoderLayer>> Create(const ModelOptions& options,
                                                              bool rotary, Generator& generator);

  // x: [batch, src, d_model]; src_padding_mask: f32 [batch, src], 1 at padding, or
  // undefined -> [batch, src, d_model]. If self_attention_weights is given, it receives
  // the weights [batch, heads, src, src].
  Tensor Forward(const Tensor& x, const Tensor& src_padding_mask,
                 Tensor* self_attention_weights = nullptr) const;

  const MultiHeadAttention& self_attn() const { return *self_attn_; }

 private:
  EncoderLayer() = default;

  std::shared_ptr<MultiHeadAttention> self_attn_;
  std::shared_ptr<SublayerConnection> self_attn_sublayer_;
  std::shared_ptr<PositionwiseFeedForward> feed_forward_;
  std::shared_ptr<SublayerConnection> feed_forward_sublayer_;
};

}  // namespace attnlab::nn
