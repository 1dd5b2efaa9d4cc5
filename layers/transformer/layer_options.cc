#include "layers/transformer/layer_options.h"

namespace attnlab::nn {

MultiHeadAttentionOptions AttentionBlockOptions(const TransformerLayerOptions& options,
                                                const std::string& variant, bool rotary) {
  MultiHeadAttentionOptions attention;
  attention.d_model = options.d_model;
  attention.num_heads = options.num_heads;
  attention.head_dim = options.head_dim;
  attention.variant = variant;
  attention.dropout = options.attention_dropout;
  attention.rotary = rotary;
  attention.max_relative_position = options.max_relative_position;
  return attention;
}

}  // namespace attnlab::nn
