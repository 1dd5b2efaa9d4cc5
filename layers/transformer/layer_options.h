// What an EncoderLayer or DecoderLayer is built from (a subset of TransformerOptions).
#pragma once

#include <cstdint>
#include <string>

#include "layers/attention/multi_head.h"
#include "layers/feed_forward.h"
#include "layers/transformer/sublayer_connection.h"

namespace attnlab::nn {

struct TransformerLayerOptions {
  int64_t d_model = 512;
  int64_t num_heads = 8;
  int64_t head_dim = 0;  // d_k = d_v per head; 0 = d_model / num_heads
  int64_t d_ff = 2048;
  float dropout = 0.1f;            // on each sublayer's output and inside the feed-forward
  float attention_dropout = 0.1f;  // on the attention weights
  std::string self_attention = "scaled_dot";   // registered variant for self-attention
  std::string cross_attention = "scaled_dot";  // ... and for decoder-encoder attention
  bool rotary = false;  // RoPE on self-attention queries and keys (never on cross-attention)
  int64_t max_relative_position = 16;
  NormPosition norm_position = NormPosition::kPost;
  FeedForwardActivation activation = FeedForwardActivation::kRelu;
};

// The options of one attention block of a layer: `variant`, with RoPE if `rotary`.
MultiHeadAttentionOptions AttentionBlockOptions(const TransformerLayerOptions& options,
                                                const std::string& variant, bool rotary);

}  // namespace attnlab::nn
