// Attention: one interface, a registry, and the machinery variants share.
//
// A variant maps per-head queries, keys and values to per-head context vectors. It sees
// tensors already split into heads, so the same variant serves single-head use (heads =
// 1) and MultiHeadAttention, which does the projections, the split and the concat.
// Masking (key padding, causal), dropout on the weights and returning the weights for
// plots are handled here, not in each variant: a variant that produces a score matrix
// derives from ScoreAttention and writes only Scores(). Adding a variant is one file
// and one ATTNLAB_REGISTER_ATTENTION line (see layers/attention/README.md).
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "framework/random/generator.h"
#include "layers/module.h"

namespace attnlab::nn {

// What a variant is built from; configs choose the variant by name.
struct AttentionConfig {
  int64_t head_dim = 64;  // d_k = d_v, per head
  int64_t num_heads = 1;
  int64_t max_relative_position = 16;  // clipping distance k of relative variants (Shaw et al.)
};

// One call. Shapes: query [batch, heads, tgt, head_dim]; key, value [batch, heads, src, head_dim].
struct AttentionInputs {
  Tensor query, key, value;
  // f32 [batch, src], 1 where the key is padding (gets weight 0), or undefined.
  Tensor key_padding_mask;
  // Query t (at absolute position t + query_offset) may attend only to keys <= its position.
  bool causal = false;
  // Absolute position of the first query: 0 normally, the cache length when decoding
  // one token at a time. Position-aware variants use it too.
  int64_t query_offset = 0;
  float dropout = 0.0f;  // on the attention weights, in training mode only
  bool need_weights = false;
};

struct AttentionOutput {
  Tensor context;  // [batch, heads, tgt, head_dim]
  Tensor weights;  // [batch, heads, tgt, src], only when need_weights
};

class Attention : public Module {
 public:
  virtual AttentionOutput Forward(const AttentionInputs& inputs) const = 0;
};

// Variants of the form softmax(score(q, k) + mask) V. Masking, softmax, dropout and the
// weighted sum are shared; a variant defines Scores().
class ScoreAttention : public Attention {
 public:
  AttentionOutput Forward(const AttentionInputs& inputs) const final;

 protected:
  // Unmasked scores [batch, heads, tgt, src].
  virtual Tensor Scores(const AttentionInputs& inputs) const = 0;
};

// The additive mask (0 where allowed, -inf where not) for padding and causality, shaped
// to broadcast against scores [batch, heads, tgt, src]: [batch or 1, 1, tgt or 1, src].
// Undefined when nothing is masked.
Tensor BuildAttentionMask(const Tensor& key_padding_mask, bool causal, int64_t batch, int64_t tgt,
                          int64_t src, int64_t query_offset);

// ---- Registry ----------------------------------------------------------------------
using AttentionFactory =
    std::function<std::shared_ptr<Attention>(const AttentionConfig& config, Generator& generator)>;

void RegisterAttention(const std::string& name, AttentionFactory factory);
// The variant registered as `name`; an unknown name is an error listing the known ones.
absl::StatusOr<std::shared_ptr<Attention>> MakeAttention(std::string_view name,
                                                         const AttentionConfig& config,
                                                         Generator& generator);
std::vector<std::string> AttentionNames();

struct AttentionRegistration {
  AttentionRegistration(const std::string& name, AttentionFactory factory) {
    RegisterAttention(name, std::move(factory));
  }
};

}  // namespace attnlab::nn

// At namespace scope in the variant's file: ATTNLAB_REGISTER_ATTENTION(dot, "dot", factory).
#define ATTNLAB_REGISTER_ATTENTION(identifier, name, factory) \
  static ::attnlab::nn::AttentionRegistration attention_registration_##identifier(name, factory)
