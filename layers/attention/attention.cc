#include "layers/attention/attention.h"

#include <algorithm>
#include <limits>
#include <map>

#include "absl/strings/str_join.h"
#include "framework/ops/ops.h"

namespace attnlab::nn {
namespace {

std::map<std::string, AttentionVariantEntry, std::less<>>& Registry() {
  static auto* registry = new std::map<std::string, AttentionVariantEntry, std::less<>>();
  return *registry;
}

}  // namespace

void RegisterAttention(AttentionVariantEntry entry) {
  ATTNLAB_CHECK(Registry().count(entry.name) == 0, "attention variant '", entry.name,
                "' registered twice");
  const std::string name = entry.name;
  Registry().emplace(name, std::move(entry));
}

const AttentionVariantEntry* FindAttentionVariant(std::string_view name) {
  auto it = Registry().find(name);
  return it == Registry().end() ? nullptr : &it->second;
}

absl::StatusOr<std::shared_ptr<Attention>> MakeAttention(std::string_view name,
                                                         const AttentionShape& shape,
                                                         Generator& generator,
                                                         const AttentionVariantOptions& options) {
  const AttentionVariantEntry* entry = FindAttentionVariant(name);
  if (entry == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat("unknown attention variant '", std::string(name),
                     "'; known: ", absl::StrJoin(AttentionNames(), ", ")));
  }
  auto given = options.find(name);
  return entry->factory(shape, given != options.end() ? given->second : entry->default_options(),
                        generator);
}

std::vector<std::string> AttentionNames() {
  std::vector<std::string> names;
  for (const auto& [name, entry] : Registry()) names.push_back(name);
  return names;
}

Tensor BuildAttentionMask(const Tensor& key_padding_mask, bool causal, int64_t batch, int64_t tgt,
                          int64_t src, int64_t query_offset, int64_t key_offset) {
  const bool padded = key_padding_mask.defined();
  if (!padded && !causal) return Tensor();
  if (padded) {
    ATTNLAB_CHECK(key_padding_mask.shape() == (Shape{batch, src}), "attention: key padding mask ",
                  key_padding_mask.Describe(), " should be [batch, src] = [", batch, ", ", src,
                  "]");
  }
  constexpr float kNegativeInfinity = -std::numeric_limits<float>::infinity();
  const int64_t mask_batch = padded ? batch : 1, mask_tgt = causal ? tgt : 1;
  Tensor mask = Tensor::Zeros({mask_batch, 1, mask_tgt, src});
  float* out = mask.data<float>();
  const std::vector<float> padding = padded ? key_padding_mask.ToFloats() : std::vector<float>();
  for (int64_t b = 0; b < mask_batch; ++b) {
    for (int64_t t = 0; t < mask_tgt; ++t) {
      for (int64_t s = 0; s < src; ++s) {
        const bool is_padding = padded && padding[b * src + s] != 0.0f;
        const bool is_future = causal && s + key_offset > t + query_offset;
        if (is_padding || is_future) out[(b * mask_tgt + t) * src + s] = kNegativeInfinity;
      }
    }
  }
  return mask;
}

AttentionOutput ScoreAttention::Forward(const AttentionInputs& inputs) const {
  const auto profile_scope = ProfileScope("attention");
  const Tensor& query = inputs.query;
  ATTNLAB_CHECK(query.rank() == 4 && inputs.key.rank() == 4 && inputs.value.rank() == 4,
                "attention: expects [batch, heads, time, head_dim] tensors, got query ",
                query.Describe(), ", key ", inputs.key.Describe(), ", value ",
                inputs.value.Describe());
  if (!inputs.need_weights) {
    if (std::optional<Tensor> context = FusedContext(inputs)) return {*context, Tensor()};
  }
  const int64_t batch = query.size(0), tgt = query.size(2), src = inputs.key.size(2);
  const Tensor mask = BuildAttentionMask(inputs.key_padding_mask, inputs.causal, batch, tgt, src,
                                         inputs.query_offset, inputs.key_offset);
  // weights: [batch, heads, tgt, src]; rows of fully masked queries are zero.
  Tensor weights = Softmax(Scores(inputs), mask);
  AttentionOutput output;
  output.context = Context(weights, inputs);  // [batch, heads, tgt, head_dim]
  if (inputs.need_weights) output.weights = weights;
  return output;
}

Tensor ScoreAttention::Context(const Tensor& weights, const AttentionInputs& inputs) const {
  return DropoutMatmul(weights, inputs.value, inputs.dropout, is_training());
}

}  // namespace attnlab::nn
