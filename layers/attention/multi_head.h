// Multi-head attention (Vaswani et al. 2017, section 3.2.2) around any registered
// variant: project queries, keys and values, split d_model into heads, run the variant
// on every head at once, concatenate, project out.
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "layers/attention/attention.h"
#include "layers/linear.h"

namespace attnlab::nn {

// The attention keys of a config's [model] table, as attention blocks read them; the
// defaults here are the config's defaults.
struct AttentionOptions {
  std::string variant = "scaled_dot";  // model.attention: a registered variant
  int64_t heads = 4;                   // model.heads
  // model.key_size: d_k = d_v per head; 0 = d_model / heads (the paper). Otherwise the
  // projections map d_model to heads x key_size and back (Table 3, row B, varies it).
  int64_t key_size = 0;
  double dropout = 0.0;  // model.attention_dropout: on the attention weights
  // The variants' own hyper-parameters ([attention.<variant>] tables); the chosen
  // variant's entry, or its defaults, is what it is built with.
  AttentionVariantOptions variant_options;

  // d_k: key_size, or d_model / heads.
  int64_t HeadDim(int64_t d_model) const { return key_size > 0 ? key_size : d_model / heads; }
};
// Keys, meanings and ranges of AttentionOptions' fields (variant_options excepted: each
// variant registers its own).
const OptionFields<AttentionOptions>& AttentionOptionFields();

// Projected keys and values kept between decoding steps. Self-attention appends one
// step at a time; cross-attention fills it once from the encoder output.
//
// Outside the graph (decoding under no_grad, the usual case) self-attention appends in
// place: key and value are then views of [batch, heads, capacity, head_dim] buffers that
// double when full, so a step copies only its own keys and values (amortised), where
// Concat would copy the whole cache every step. With a gradient it concatenates.
struct KeyValueCache {
  Tensor key;                       // [batch, heads, cached_len, head_dim]
  Tensor value;                     // [batch, heads, cached_len, head_dim]
  Tensor key_buffer, value_buffer;  // what key and value view, when appended in place
  // Queries already run through this cache: the position of the next query. In
  // self-attention it is key_offset + cached_len; cross-attention needs it for
  // position-aware variants (ALiBi, rotary), whose keys do not grow with the decoded length.
  int64_t query_length = 0;
  // Position of the first cached key: 0, unless the variant has a CacheWindow() and
  // causal self-attention dropped the keys no later query can see (then cached_len stays
  // at most that window).
  int64_t key_offset = 0;
  bool filled() const { return key.defined(); }
  void Clear() { *this = KeyValueCache(); }
};

// Appends `key` and `value` ([batch, heads, new_len, head_dim], no gradient) to the
// cache in place, growing its buffers when they are full.
void AppendToCache(KeyValueCache& cache, const Tensor& key, const Tensor& value);
// Picks the cache's rows (batch entries) by `indices`, as beam search reorders its
// hypotheses: i32 [new_batch].
void ReorderCache(KeyValueCache& cache, const Tensor& indices);

struct MultiHeadAttentionCall {
  Tensor query;  // [batch, tgt, d_model]
  Tensor key;    // [batch, src, d_model] (ignored for cross-attention with a filled cache)
  Tensor value;  // [batch, src, d_model]
  Tensor key_padding_mask;  // f32 [batch, src], 1 at padding, or undefined
  bool causal = false;
  bool need_weights = false;
  // Incremental decoding: with a cache, self-attention appends this step's keys/values
  // and attends over all of them (then, when causal and the variant has a CacheWindow(),
  // keeps only that many of the latest); `static_keys` (cross-attention) projects
  // key/value only on the first call.
  KeyValueCache* cache = nullptr;
  bool static_keys = false;
};

struct MultiHeadAttentionOutput {
  Tensor output;   // [batch, tgt, d_model]
  Tensor weights;  // [batch, heads, tgt, src], when need_weights
};

class MultiHeadAttention : public Module {
 public:
  // Attention over width d_model in the given role (self- or cross-attention, which
  // position-aware variants need to know); `rotary` applies RoPE to queries and keys.
  // Fails if the variant is unknown, or key_size is 0 and d_model is not divisible by
  // heads.
  static absl::StatusOr<std::shared_ptr<MultiHeadAttention>> Create(int64_t d_model,
                                                                    const AttentionOptions& options,
                                                                    AttentionRole role, bool rotary,
                                                                    Generator& generator);

  MultiHeadAttentionOutput Forward(const MultiHeadAttentionCall& call) const;

  const AttentionOptions& options() const { return options_; }
  int64_t d_model() const { return d_model_; }
  const Attention& variant() const { return *variant_; }

  // [batch, time, heads * head_dim] -> [batch, heads, time, head_dim] and back.
  Tensor SplitHeads(const Tensor& x) const;
  Tensor MergeHeads(const Tensor& x) const;

 private:
  MultiHeadAttention(int64_t d_model, const AttentionOptions& options, bool rotary,
                     Generator& generator);
  // Drops the cached keys and values that lie beyond the variant's CacheWindow() (none
  // when it has no window), advancing cache.key_offset past them.
  void KeepCacheWindow(KeyValueCache& cache) const;

  AttentionOptions options_;
  int64_t d_model_;
  int64_t head_dim_;
  bool rotary_;
  std::shared_ptr<Linear> q_proj_, k_proj_, v_proj_, out_proj_;
  std::shared_ptr<Attention> variant_;
};

}  // namespace attnlab::nn
