// Shared by the Transformer and decoding tests: the tiny model configuration and token
// batches (a parameter by name: tests/support/named_parameter.h).
#pragma once

#include <string>
#include <vector>

#include "framework/core/error.h"
#include "framework/ops/ops.h"
#include "layers/module.h"
#include "layers/transformer/transformer.h"
#include "tests/layers/tiny_attention_options.h"

namespace attnlab::nn::testing {

// Token ids of the tiny vocabulary: 0 pad, 1 bos, 2 eos, 3..6 symbols.
inline constexpr int64_t kTinyVocab = 7;

// d_model 8, 2 heads, d_ff 16, 1 + 1 layers, vocabulary 7, no dropout. GELU rather than
// ReLU, so that finite differences never straddle a kink. Attention variants with
// options of their own get them scaled to tiny sequences (tiny_attention_options.h).
inline ModelOptions TinyTransformerOptions(const std::string& positional = "sinusoidal",
                                           const std::string& attention = "scaled_dot") {
  ModelOptions options;
  options.d_model = 8;
  options.attention.heads = 2;
  options.d_ff = 16;
  options.encoder_layers = 1;
  options.decoder_layers = 1;
  options.dropout = 0.0;
  options.attention.dropout = 0.0;
  options.attention.variant = attention;
  options.attention.variant_options = TinyAttentionVariantOptions();
  options.positional = positional;
  options.max_len = 16;
  options.activation = FeedForwardActivation::kGelu;
  return options;
}

// Source and target vocabularies of kTinyVocab tokens, special tokens 0, 1, 2.
inline Vocabularies TinyVocabularies() { return {kTinyVocab, kTinyVocab, SpecialTokens()}; }

inline std::shared_ptr<Transformer> MakeTransformer(const ModelOptions& options,
                                                    uint64_t seed = 7) {
  absl::StatusOr<std::shared_ptr<Transformer>> model =
      Transformer::Create(options, TinyVocabularies(), seed);
  ATTNLAB_CHECK(model.ok(), "Transformer::Create: ", model.status().ToString());
  return *model;
}

inline Tensor Ints(const std::vector<int32_t>& values, const Shape& shape) {
  return Tensor::FromInts(values, shape);
}

// Two sources, the second padded: i32 [2, 5].
inline Tensor TinySource() { return Ints({3, 4, 5, 6, 3, 5, 3, 6, 0, 0}, {2, 5}); }
// Decoder inputs (bos + target) and the targets they predict: i32 [2, 4].
inline Tensor TinyTargetInput() { return Ints({1, 4, 3, 6, 1, 5, 5, 2}, {2, 4}); }
inline Tensor TinyTargetOutput() { return Ints({4, 3, 6, 2, 5, 5, 2, 0}, {2, 4}); }

// Mean cross-entropy of logits [batch, tgt, vocab] against targets i32 [batch, tgt],
// padding ignored.
inline Tensor SequenceLoss(const Tensor& logits, const Tensor& targets, int32_t pad_id = 0) {
  const int64_t vocab = logits.size(-1);
  return CrossEntropy(Reshape(logits, {-1, vocab}), Reshape(targets, {-1}), 0.0f, pad_id);
}

}  // namespace attnlab::nn::testing
