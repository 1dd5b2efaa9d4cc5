// Multi-head attention (Vaswani et al. 2017, section 3.2.2) around any registered
// variant: project queries, keys and values, split d_model into heads, run the variant
// on every head at once, concatenate, project out.
#pragma once

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "layers/attention/attention.h"
#include "layers/linear.h"

namespace attnlab::nn {

struct MultiHeadAttentionOptions {
  int64_t d_model = 512;
  int64_t num_heads = 8;
  // d_k = d_v per head; 0 = d_model / num_heads (the paper). Otherwise the projections
  // map d_model to num_heads x head_dim and back (Table 3, row B, varies it).
  int64_t head_dim = 0;
  std::string variant = "scaled_dot";
  float dropout = 0.0f;  // on attention weights
  bool bias = true;      // in the four projections
  bool rotary = false;   // apply RoPE to queries and keys
  int64_t max_relative_position = 16;
};

// Projected keys and values kept between decoding steps. Self-attention appends one
// step at a time; cross-attention fills it once from the encoder output.
struct KeyValueCache {
  Tensor key;    // [batch, heads, cached_len, head_dim]
  Tensor value;  // [batch, heads, cached_len, head_dim]
  // Queries already run through this cache: the position of the next query. Equals
  // cached_len in self-attention; cross-attention needs it for position-aware variants
  // (ALiBi, rotary), whose keys do not grow with the decoded length.
  int64_t query_length = 0;
  bool filled() const { return key.defined(); }
  void Clear() {
    key = Tensor();
    value = Tensor();
    query_length = 0;
  }
};

struct MultiHeadAttentionCall {
  Tensor query;  // [batch, tgt, d_model]
  Tensor key;    // [batch, src, d_model] (ignored for cross-attention with a filled cache)
  Tensor value;  // [batch, src, d_model]
  Tensor key_padding_mask;  // f32 [batch, src], 1 at padding, or undefined
  bool causal = false;
  bool need_weights = false;
  // Incremental decoding: with a cache, self-attention appends this step's keys/values
  // and attends over all of them; `static_keys` (cross-attention) projects key/value
  // only on the first call.
  KeyValueCache* cache = nullptr;
  bool static_keys = false;
};

struct MultiHeadAttentionOutput {
  Tensor output;   // [batch, tgt, d_model]
  Tensor weights;  // [batch, heads, tgt, src], when need_weights
};

class MultiHeadAttention : public Module {
 public:
  // Fails if the variant is unknown, or head_dim is 0 and d_model is not divisible by
  // num_heads.
  static absl::StatusOr<std::shared_ptr<MultiHeadAttention>> Create(
      const MultiHeadAttentionOptions& options, Generator& generator);

  MultiHeadAttentionOutput Forward(const MultiHeadAttentionCall& call) const;

  const MultiHeadAttentionOptions& options() const { return options_; }
  const Attention& variant() const { return *variant_; }

  // [batch, time, heads * head_dim] -> [batch, heads, time, head_dim] and back.
  Tensor SplitHeads(const Tensor& x) const;
  Tensor MergeHeads(const Tensor& x) const;

 private:
  MultiHeadAttention(const MultiHeadAttentionOptions& options, Generator& generator,
                     std::shared_ptr<Attention> variant);

  MultiHeadAttentionOptions options_;
  int64_t head_dim_;
  std::shared_ptr<Linear> q_proj_, k_proj_, v_proj_, out_proj_;
  std::shared_ptr<Attention> variant_;
};

}  // namespace attnlab::nn
