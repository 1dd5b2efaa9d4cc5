#include "layers/attention/multi_head.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "framework/autograd/node.h"
#include "framework/core/error.h"
#include "framework/ops/ops.h"
#include "layers/positional/rope.h"

namespace attnlab::nn {

const OptionFields<AttentionOptions>& AttentionOptionFields() {
  static const auto* fields = new OptionFields<AttentionOptions>{
      StringOption("attention", &AttentionOptions::variant,
                   "Attention variant of every attention block (layers/attention/README.md).",
                   AttentionNames),
      IntOption("heads", &AttentionOptions::heads,
                "Attention heads (d_model must be divisible by heads unless model.key_size is "
                "set).",
                1, 1024),
      IntOption("key_size", &AttentionOptions::key_size,
                "Per-head query/key/value size d_k = d_v; 0 = d_model / heads (the paper). "
                "Otherwise attention projects d_model to heads x key_size and back.",
                0, 1 << 16),
      FloatOption("attention_dropout", &AttentionOptions::dropout, "Dropout on attention weights.",
                  0, 0.99),
  };
  return *fields;
}

absl::StatusOr<std::shared_ptr<MultiHeadAttention>> MultiHeadAttention::Create(
    int64_t d_model, const AttentionOptions& options, AttentionRole role, bool rotary,
    Generator& generator) {
  if (options.heads <= 0 || options.key_size < 0 ||
      (options.key_size == 0 && d_model % options.heads != 0)) {
    return absl::InvalidArgumentError(
        absl::StrCat("d_model ", d_model, " is not divisible by heads ", options.heads));
  }
  if (rotary && options.HeadDim(d_model) % 2 != 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "rotary positions need an even head dimension, got ", options.HeadDim(d_model)));
  }
  // Projections are created before the variant so that their initial values do not
  // depend on which variant is chosen.
  auto module = std::shared_ptr<MultiHeadAttention>(
      new MultiHeadAttention(d_model, options, rotary, generator));
  const AttentionShape shape{options.heads, module->head_dim_, role};
  ASSIGN_OR_RETURN(std::shared_ptr<Attention> variant,
                   MakeAttention(options.variant, shape, generator, options.variant_options));
  module->variant_ = module->RegisterModule("attention", std::move(variant));
  return module;
}

MultiHeadAttention::MultiHeadAttention(int64_t d_model, const AttentionOptions& options,
                                       bool rotary, Generator& generator)
    : options_(options), d_model_(d_model), head_dim_(options.HeadDim(d_model)), rotary_(rotary) {
  const int64_t inner = options.heads * head_dim_;  // = d_model unless key_size is set
  q_proj_ = RegisterModule("q_proj", std::make_shared<Linear>(d_model, inner, true, generator));
  k_proj_ = RegisterModule("k_proj", std::make_shared<Linear>(d_model, inner, true, generator));
  v_proj_ = RegisterModule("v_proj", std::make_shared<Linear>(d_model, inner, true, generator));
  out_proj_ = RegisterModule("out_proj", std::make_shared<Linear>(inner, d_model, true, generator));
}

Tensor MultiHeadAttention::SplitHeads(const Tensor& x) const {
  const int64_t batch = x.size(0), time = x.size(1);
  return Permute(Reshape(x, {batch, time, options_.heads, head_dim_}), {0, 2, 1, 3});
}

Tensor MultiHeadAttention::MergeHeads(const Tensor& x) const {
  const int64_t batch = x.size(0), time = x.size(2);
  return Reshape(Permute(x, {0, 2, 1, 3}), {batch, time, options_.heads * head_dim_});
}

namespace {

// Whether `view` lies in `buffer`'s storage (then it starts at position ViewStart()).
bool InBuffer(const Tensor& view, const Tensor& buffer) {
  return view.defined() && buffer.defined() && view.impl()->storage == buffer.impl()->storage;
}

// The buffer position (dim 2) of a cached view's first key.
int64_t ViewStart(const Tensor& view, const Tensor& buffer) {
  return (view.impl()->offset - buffer.impl()->offset) / buffer.strides()[2];
}

}  // namespace

void AppendToCache(KeyValueCache& cache, const Tensor& key, const Tensor& value) {
  const int64_t cached = cache.filled() ? cache.key.size(2) : 0;
  const int64_t added = key.size(2), length = cached + added;
  const bool in_buffer = cache.filled() ? InBuffer(cache.key, cache.key_buffer) &&
                                              InBuffer(cache.value, cache.value_buffer)
                                        : cache.key_buffer.defined();
  int64_t start = cache.filled() && in_buffer ? ViewStart(cache.key, cache.key_buffer) : 0;
  if (!in_buffer || start + length > cache.key_buffer.size(2) ||
      cache.key_buffer.size(0) != key.size(0)) {
    // A new buffer with room for as many keys again: doubling keeps the copying of a
    // whole decode linear in its length. Zeroed, so that a reorder reads no garbage.
    Shape shape = key.shape();
    shape[2] = std::max<int64_t>(2 * length, 16);
    Tensor key_buffer = Tensor::Zeros(shape), value_buffer = Tensor::Zeros(shape);
    if (cached > 0) {
      CopyInto(Narrow(key_buffer, 2, 0, cached), cache.key);
      CopyInto(Narrow(value_buffer, 2, 0, cached), cache.value);
    }
    cache.key_buffer = std::move(key_buffer);
    cache.value_buffer = std::move(value_buffer);
    start = 0;
  }
  CopyInto(Narrow(cache.key_buffer, 2, start + cached, added), key);
  CopyInto(Narrow(cache.value_buffer, 2, start + cached, added), value);
  cache.key = Narrow(cache.key_buffer, 2, start, length);
  cache.value = Narrow(cache.value_buffer, 2, start, length);
}

void ReorderCache(KeyValueCache& cache, const Tensor& indices) {
  if (!cache.filled()) return;
  if (InBuffer(cache.key, cache.key_buffer) && InBuffer(cache.value, cache.value_buffer)) {
    // The buffers' rows, so that the next steps still append in place.
    const int64_t start = ViewStart(cache.key, cache.key_buffer), length = cache.key.size(2);
    cache.key_buffer = IndexSelect(cache.key_buffer, 0, indices);
    cache.value_buffer = IndexSelect(cache.value_buffer, 0, indices);
    cache.key = Narrow(cache.key_buffer, 2, start, length);
    cache.value = Narrow(cache.value_buffer, 2, start, length);
    return;
  }
  cache.key = IndexSelect(cache.key, 0, indices);
  cache.value = IndexSelect(cache.value, 0, indices);
}

void MultiHeadAttention::KeepCacheWindow(KeyValueCache& cache) const {
  const std::optional<int64_t> window = variant_->CacheWindow();
  const int64_t cached = cache.key.size(2);
  if (!window.has_value() || cached <= *window) return;
  // Narrow views: the next step's Concat copies only the kept keys, and then the
  // storage of the dropped ones is released.
  const int64_t dropped = cached - *window;
  cache.key = Narrow(cache.key, 2, dropped, *window);
  cache.value = Narrow(cache.value, 2, dropped, *window);
  cache.key_offset += dropped;
}

MultiHeadAttentionOutput MultiHeadAttention::Forward(const MultiHeadAttentionCall& call) const {
  const auto profile_scope = ProfileScope("multi_head_attention");
  ATTNLAB_CHECK(call.query.rank() == 3 && call.query.size(2) == d_model_,
                "multi-head attention: query ", call.query.Describe(), " should be [batch, tgt, ",
                d_model_, "]");
  KeyValueCache* cache = call.cache;
  // Positions of the first query and the first key: the queries already run through the
  // cache, and the first key it still holds (both 0 without a cache).
  int64_t query_offset = 0, key_offset = 0;
  if (cache != nullptr) {
    query_offset = cache->query_length;
    key_offset = call.static_keys ? 0 : cache->key_offset;
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
    if (rotary_) key = ApplyRotaryEmbedding(key, query_offset);
    if (cache != nullptr) {
      if (!call.static_keys && !autograd::ShouldRecord({&key, &value})) {
        AppendToCache(*cache, key, value);
        key = cache->key;
        value = cache->value;
      } else {
        if (!call.static_keys && cache->filled()) {
          key = Concat({cache->key, key}, 2);
          value = Concat({cache->value, value}, 2);
        }
        cache->key = key;
        cache->value = value;
      }
      if (!call.static_keys && call.causal) KeepCacheWindow(*cache);
    }
  }
  if (rotary_) query = ApplyRotaryEmbedding(query, query_offset);

  AttentionInputs inputs;
  inputs.query = query;
  inputs.key = key;
  inputs.value = value;
  inputs.key_padding_mask = call.key_padding_mask;
  inputs.causal = call.causal;
  inputs.query_offset = query_offset;
  inputs.key_offset = key_offset;
  inputs.dropout = static_cast<float>(options_.dropout);
  inputs.need_weights = call.need_weights;
  AttentionOutput attended = variant_->Forward(inputs);

  MultiHeadAttentionOutput output;
  output.output = out_proj_->Forward(MergeHeads(attended.context));
  output.weights = attended.weights;
  return output;
}

}  // namespace attnlab::nn
