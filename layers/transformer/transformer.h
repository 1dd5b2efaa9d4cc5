// Transformer: the encoder-decoder model of Vaswani et al. 2017 (Figure 1), as the
// Annotated Transformer's EncoderDecoder: token embeddings scaled by sqrt(d_model)
// (section 3.4) plus a positional encoding, then dropout (section 5.4); an Encoder and a
// Decoder of N layers; and the generator, a linear map to target-vocabulary logits.
//
// Checkpoint names and shapes: layers/transformer/README.md.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "layers/decoding/seq2seq_model.h"
#include "layers/embedding.h"
#include "layers/feed_forward.h"
#include "layers/model_options.h"
#include "layers/positional/positional_encoding.h"
#include "layers/transformer/decoder.h"
#include "layers/transformer/encoder.h"
#include "layers/transformer/output_projection.h"
#include "layers/transformer/sublayer_connection.h"

namespace attnlab::nn {

// Attention weights of every layer, for plots.
struct TransformerAttentionWeights {
  std::vector<Tensor> encoder_self_attn;  // per encoder layer: [batch, heads, src, src]
  std::vector<Tensor> decoder_self_attn;  // per decoder layer: [batch, heads, tgt, tgt]
  std::vector<Tensor> cross_attn;         // per decoder layer: [batch, heads, tgt, src]
};

struct TransformerOutput {
  Tensor logits;  // [batch, tgt, tgt_vocab]
  TransformerAttentionWeights attention;
};

// Decoding state for `rows` rows (sources, or sources x beams). With the key/value cache
// (the default) each step runs the decoder on the new token only; without it each step
// re-runs the decoder over every token fed so far (`prefix`), the baseline the cache is
// measured against (`attnlab bench`).
struct TransformerDecoderState : DecoderState {
  Tensor memory;                          // encoder output [rows, src, d_model]
  Tensor src_padding_mask;                // f32 [rows, src], 1 at padding
  bool use_cache = true;                  // Transformer::decoding_cache() at StartDecoding
  std::vector<DecoderLayerCache> caches;  // one per decoder layer (use_cache only)
  Tensor prefix;                          // i32 [rows, steps], tokens fed so far (no cache only)
  int64_t steps = 0;                      // tokens fed so far = position of the next one
};

class Transformer : public Seq2SeqModel {
 public:
  // Builds the model `options` describe (its Transformer and attention keys) for
  // `vocabularies`, with weights drawn from `seed`. Invalid options are InvalidArgument
  // errors that name the option.
  static absl::StatusOr<std::shared_ptr<Transformer>> Create(const ModelOptions& options,
                                                             const Vocabularies& vocabularies,
                                                             uint64_t seed);

  // src: i32 [batch, src_len], tgt_in: i32 [batch, tgt_len] -> logits [batch, tgt_len, tgt_vocab]
  Tensor Forward(const Tensor& src, const Tensor& tgt_in) override;
  // The same, with the attention weights of every layer.
  TransformerOutput ForwardWithAttention(const Tensor& src, const Tensor& tgt_in);

  // src: i32 [batch, src_len] -> f32 [batch, src_len], 1 where src == pad_id.
  Tensor SourcePaddingMask(const Tensor& src) const;
  // src: i32 [batch, src_len] -> memory [batch, src_len, d_model].
  Tensor Encode(const Tensor& src, const Tensor& src_padding_mask,
                std::vector<Tensor>* self_attention_weights = nullptr) const;

  std::unique_ptr<DecoderState> StartDecoding(const Tensor& src) override;
  // last_tokens: i32 [rows] -> log-probabilities [rows, tgt_vocab].
  Tensor DecodeStep(DecoderState& state, const Tensor& last_tokens) override;
  void ReorderState(DecoderState& state, const Tensor& indices) override;

  // Whether decoding states started from now on keep the key/value cache (default true).
  // Off, every DecodeStep recomputes the decoder over the whole prefix: the same
  // log-probabilities, at quadratic cost in the target length.
  void set_decoding_cache(bool enabled) { decoding_cache_ = enabled; }
  bool decoding_cache() const { return decoding_cache_; }

  const SpecialTokens& special_tokens() const override { return vocabularies_.special_tokens; }
  int64_t target_vocab_size() const override { return vocabularies_.target_size; }
  int64_t max_decode_positions() const override { return options_.max_len; }
  const ModelOptions& options() const { return options_; }
  const Vocabularies& vocabularies() const { return vocabularies_; }

  const Embedding& src_embed() const { return *src_embed_; }
  const Embedding& tgt_embed() const { return *tgt_embed_; }
  const Encoder& encoder() const { return *encoder_; }
  const Decoder& decoder() const { return *decoder_; }
  const OutputProjection& generator() const { return *generator_; }

 private:
  Transformer(const ModelOptions& options, const Vocabularies& vocabularies)
      : options_(options), vocabularies_(vocabularies) {}

  // ids: i32 [batch, time] at positions offset.. -> [batch, time, d_model]
  Tensor EmbedSource(const Tensor& ids) const;
  Tensor EmbedTarget(const Tensor& ids, int64_t position_offset) const;
  Tensor EmbedTokens(const Embedding& embed, const PositionalEncoding& positional,
                     const Tensor& ids, int64_t position_offset) const;

  ModelOptions options_;
  Vocabularies vocabularies_;
  float embedding_scale_ = 1.0f;  // sqrt(d_model)
  bool decoding_cache_ = true;
  std::shared_ptr<Embedding> src_embed_;
  std::shared_ptr<Embedding> tgt_embed_;  // == src_embed_ when shared
  std::shared_ptr<PositionalEncoding> src_pos_encoding_;
  std::shared_ptr<PositionalEncoding> tgt_pos_encoding_;
  std::shared_ptr<Encoder> encoder_;
  std::shared_ptr<Decoder> decoder_;
  std::shared_ptr<OutputProjection> generator_;
};

}  // namespace attnlab::nn
