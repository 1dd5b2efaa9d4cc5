#include "layers/attention/multi_head.h"

#include "absl/strings/str_cat.h"
#include "framework/ops/ops.h"
#include "layers/positional/rope.h"

namespace attnlab::nn {

absl::StatusOr<std::shared_ptr<MultiHeadAttention>> MultiHeadAttention::Create(
    const MultiHeadAttentionOptions& options, Generator& generator) {
  if (options.num_heads <= 0 || options.head_dim < 0 ||
      (options.head_dim == 0 && options.d_model % options.num_heads != 0)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "d_model ", options.d_model, " is not divisible by num_heads ", options.num_heads));
  }
  const int64_t head_dim =
      options.head_dim > 0 ? options.head_dim : options.d_model / options.num_heads;
  if (options.rotary && head_dim % 2 != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("rotary positions need an even head dimension, got ", head_dim));
  }
  AttentionConfig config;
  config.head_dim = head_dim;
  config.num_heads = options.num_heads;
  config.max_relative_position = options.max_relative_position;
  // Projections are created before the variant so that their initial values do not
  // depend on which variant is chosen.
  auto module =
      std::shared_ptr<MultiHeadAttention>(new MultiHeadAttention(options, generator, nullptr));
  auto variant = MakeAttention(options.variant, config, generator);
  if (!variant.ok()) return variant.status();
  module->variant_ = module->RegisterModule("attention", *variant);
  return module;
}

MultiHeadAttention::MultiHeadAttention(const MultiHeadAttentionOptions& options,
                                       Generator& generator, std::shared_ptr<Attention> variant)
    : options_(options),
      head_dim_(options.head_dim > 0 ? options.head_dim : options.d_model / options.num_heads) {
  const int64_t d = options.d_model;
  const int64_t inner = options.num_heads * head_dim_;  // = d_model unless head_dim is set
  q_proj_ = RegisterModule("q_proj", std::make_shared<Linear>(d, inner, options.bias, generator));
  k_proj_ = RegisterModule("k_proj", std::make_shared<Linear>(d, inner, options.bias, generator));
  v_proj_ = RegisterModule("v_proj", std::make_shared<Linear>(d, inner, options.bias, generator));
  out_proj_ =
      RegisterModule("out_proj", std::make_shared<Linear>(inner, d, options.bias, generator));
}

Tensor MultiHeadAttention::SplitHeads(const Tensor& x) const {
  const int64_t batch = x.size(0), time = x.size(1);
  return Permute(Reshape(x, {batch, time, options_.num_heads, head_dim_}), {0, 2, 1, 3});
}

Tensor MultiHeadAttention::MergeHeads(const Tensor& x) const {
  const int64_t batch = x.size(0), time = x.size(2);
  return Reshape(Permute(x, {0, 2, 1, 3}), {batch, time, options_.num_heads * head_dim_});
}

MultiHeadAttentionOutput MultiHeadAttention::Forward(const MultiHeadAttentionCall& call) const {
  const auto profile_scope = ProfileScope("multi_head_attention");
  ATTNLAB_CHECK(call.query.rank() == 3 && call.query.size(2) == options_.d_model,
                "multi-head attention: query ", call.query.Describe(), " should be [batch, tgt, ",
                options_.d_model, "]");
  KeyValueCache* cache = call.cache;
  // Position of the first query: the number of keys already cached in self-attention,
  // the number of queries already attended with this cache in cross-attention.
  int64_t query_offset = 0;
  if (cache != nullptr) {
    query_offset =
        call.static_keys ? cache->query_length : (cache->filled() ? cache->key.size(2) : 0);
    cache->query_length = query_offset + call.query.size(1);
  }

  Tensor query = SplitHeads(q_proj_->Forward(call.query));  // [b, h, tgt, d_head]
  Tensor key, value;                                        // [b, h, src, d_head]
  if (cache != nullptr && call.static_keys && cache->filled()) {
    key = cache->key;
    value = cache->value;
  } else {
    key = SplitHeads(k_proj_->Forward(call.key));
    value = SplitHeads(v_proj_->Forward(call.value));
    if (options_.rotary) key = ApplyRotaryEmbedding(key, query_offset);
    if (cache != nullptr) {
      if (!call.static_keys && cache->filled()) {
        key = Concat({cache->key, key}, 2);
        value = Concat({cache->value, value}, 2);
      }
      cache->key = key;
      cache->value = value;
    }
  }
  if (options_.rotary) query = ApplyRotaryEmbedding(query, query_offset);

  AttentionInputs inputs;
  inputs.query = query;
  inputs.key = key;
  inputs.value = value;
  inputs.key_padding_mask = call.key_padding_mask;
  inputs.causal = call.causal;
  inputs.query_offset = query_offset;
  inputs.dropout = options_.dropout;
  inputs.need_weights = call.need_weights;
  AttentionOutput attended = variant_->Forward(inputs);

  MultiHeadAttentionOutput output;
  output.output = out_proj_->Forward(MergeHeads(attended.context));
  output.weights = attended.weights;
  return output;
}

}  // namespace attnlab::nn
