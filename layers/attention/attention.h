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

#include <any>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "framework/core/option_fields.h"
#include "framework/random/generator.h"
#include "layers/module.h"

namespace attnlab::nn {

// What a block attends over. Self-attention: keys and values are the queries' own
// sequence (encoder and decoder self-attention), so query and key positions lie on one
// axis. Cross-attention: keys from another sequence (the encoder output, the RNN
// decoder's source annotations), whose positions are not the queries'; the variants
// built on query-key distances (relative, t5_bias, local) then have no distance to use,
// and are built as plain scaled_dot, without position parameters.
enum class AttentionRole { kSelf, kCross };

// The shape of the heads a variant serves, and the role of its block. Its own
// hyper-parameters, if it has any, come in its own options struct (see the registry
// below).
struct AttentionShape {
  int64_t heads = 1;
  int64_t head_dim = 64;                       // d_k = d_v, per head
  AttentionRole role = AttentionRole::kCross;  // the default assumes nothing of positions
};

// One call. Shapes: query [batch, heads, tgt, head_dim]; key, value [batch, heads, src, head_dim].
struct AttentionInputs {
  Tensor query, key, value;
  // f32 [batch, src], 1 where the key is padding (gets weight 0), or undefined.
  Tensor key_padding_mask;
  // Query t (at absolute position t + query_offset) may attend only to keys at positions
  // <= its own.
  bool causal = false;
  // Absolute position of the first query: 0 normally, the number of tokens already fed
  // when decoding one token at a time. Position-aware variants use it too.
  int64_t query_offset = 0;
  // Absolute position of the first key: 0 normally, more than 0 when a decoding cache
  // has dropped keys no query can see again (Attention::CacheWindow()). Key s is at
  // position s + key_offset.
  int64_t key_offset = 0;
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

  // How far back a causal query can ever look: the query at position p gives weight 0 to
  // every key before p - CacheWindow(). A decoding cache (MultiHeadAttention's
  // KeyValueCache) then keeps only the last CacheWindow() keys and values between steps
  // (the next query brings its own), and passes the position of the first kept key as
  // AttentionInputs::key_offset. nullopt, the default: every earlier key stays visible
  // and the cache keeps them all.
  virtual std::optional<int64_t> CacheWindow() const { return std::nullopt; }
};

// Variants of the form softmax(score(q, k) + mask) V. Masking, softmax, dropout and the
// weighted sum are shared; a variant defines Scores(), and may add to the weighted sum.
class ScoreAttention : public Attention {
 public:
  AttentionOutput Forward(const AttentionInputs& inputs) const final;

 protected:
  // Unmasked scores [batch, heads, tgt, src]. A variant may itself put -inf where a key
  // is out of reach (local attention's window); such keys get weight exactly 0.
  virtual Tensor Scores(const AttentionInputs& inputs) const = 0;
  // The context [batch, heads, tgt, head_dim] from the weights [batch, heads, tgt, src]:
  // Dropout(weights, inputs.dropout) x value (one fused op, which keeps no dropped copy
  // of the weights for backward), unless a variant adds to the values (Shaw et al.'s
  // relative value embeddings); an override applies the dropout itself.
  virtual Tensor Context(const Tensor& weights, const AttentionInputs& inputs) const;
  // The whole masked softmax, dropout and weighted sum in one fused op, when a variant
  // has one and it pays for these inputs; nullopt (the default) takes the composite
  // path. Asked only when the weights are not needed. It must equal the composite path
  // to rounding and draw the same dropout mask.
  virtual std::optional<Tensor> FusedContext(const AttentionInputs& inputs) const {
    return std::nullopt;
  }
};

// The additive mask (0 where allowed, -inf where not) for padding and causality, shaped
// to broadcast against scores [batch, heads, tgt, src]: [batch or 1, 1, tgt or 1, src].
// Query t is at position t + query_offset, key s at s + key_offset. Undefined when
// nothing is masked.
Tensor BuildAttentionMask(const Tensor& key_padding_mask, bool causal, int64_t batch, int64_t tgt,
                          int64_t src, int64_t query_offset, int64_t key_offset);

// ---- Registry ----------------------------------------------------------------------
// A variant is registered with a factory and, if it has hyper-parameters, with the
// fields of its options struct (framework/core/option_fields.h). Configs learn those
// fields from here: variant `local` with option `window` is the key `attention.local.window`
// (a `[attention.local]` table), listed by `attnlab keys` and checked when a config loads.

// The options of every variant that has them, by variant name, each a std::any holding
// that variant's options struct; a variant missing here gets its defaults.
using AttentionVariantOptions = std::map<std::string, std::any, std::less<>>;

struct AttentionVariantEntry {
  std::string name;
  OptionFields<std::any> option_fields;  // empty for variants without options
  std::function<std::any()> default_options;
  std::function<std::shared_ptr<Attention>(const AttentionShape& shape, const std::any& options,
                                           Generator& generator)>
      factory;
};

void RegisterAttention(AttentionVariantEntry entry);
// The variant registered as `name`, built with its options from `options` (defaults when
// absent); an unknown name is an error listing the known ones.
absl::StatusOr<std::shared_ptr<Attention>> MakeAttention(
    std::string_view name, const AttentionShape& shape, Generator& generator,
    const AttentionVariantOptions& options = {});
std::vector<std::string> AttentionNames();
// The registered entry called `name`, or nullptr.
const AttentionVariantEntry* FindAttentionVariant(std::string_view name);

struct AttentionRegistration {
  // A variant without options: factory(const AttentionShape&, Generator&).
  template <class Factory>
  AttentionRegistration(const std::string& name, Factory factory) {
    RegisterAttention({name,
                       {},
                       [] { return std::any(); },
                       [factory](const AttentionShape& shape, const std::any&,
                                 Generator& generator) { return factory(shape, generator); }});
  }
  // A variant with an options struct: factory(const AttentionShape&, const Options&,
  // Generator&), and the fields of Options.
  template <class Options, class Factory>
  AttentionRegistration(const std::string& name, const OptionFields<Options>& fields,
                        Factory factory) {
    RegisterAttention(
        {name, ErasedOptions(fields), [] { return std::any(Options()); },
         [factory](const AttentionShape& shape, const std::any& options, Generator& generator) {
           return factory(shape, std::any_cast<const Options&>(options), generator);
         }});
  }
};

}  // namespace attnlab::nn

// At namespace scope in the variant's file:
//   ATTNLAB_REGISTER_ATTENTION(dot, "dot", factory)
//   ATTNLAB_REGISTER_ATTENTION(local, "local", LocalOptionFields(), factory)  // with options
#define ATTNLAB_REGISTER_ATTENTION(identifier, name, ...) \
  static ::attnlab::nn::AttentionRegistration attention_registration_##identifier(name, __VA_ARGS__)
