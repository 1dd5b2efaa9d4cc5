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
#include "layers/positional/positional_encoding.h"
#include "layers/transformer/decoder.h"
#include "layers/transformer/encoder.h"
#include "layers/transformer/output_projection.h"
#include "layers/transformer/sublayer_connection.h"

namespace attnlab::nn {

struct TransformerOptions {
  int64_t src_vocab = 0;
  int64_t tgt_vocab = 0;
  int64_t d_model = 512;
  int64_t num_heads = 8;
  // d_k = d_v per head; 0 = d_model / num_heads (the paper). Otherwise every attention
  // block projects d_model to num_heads x head_dim and back (Table 3, row B).
  int64_t head_dim = 0;
  int64_t d_ff = 2048;
  int64_t encoder_layers = 6;
  int64_t decoder_layers = 6;
  float dropout = 0.1f;            // embeddings, sublayer outputs, inside the feed-forward
  float attention_dropout = 0.1f;  // attention weights
  // Registered attention variant of all three attention blocks; cross_attention, if not
  // empty, overrides it for decoder-encoder attention.
  std::string attention = "scaled_dot";
  std::string cross_attention;
  // Registered positional encoding; a rotary one (RoPE) rotates self-attention queries
  // and keys instead of adding to the embeddings.
  std::string positional = "sinusoidal";
  int64_t max_len = 512;               // longest source or target the positional encoding supports
  int64_t max_relative_position = 16;  // for relative-position attention variants
  NormPosition norm_position = NormPosition::kPost;
  FeedForwardActivation activation = FeedForwardActivation::kRelu;
  // One embedding table for source and target (requires src_vocab == tgt_vocab).
  bool share_embeddings = false;
  // The generator's weight is the target embedding table (section 3.4).
  bool tie_generator = false;
  SpecialTokens special_tokens;
};

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
  // Builds the model with weights drawn from `seed`. Invalid options are
  // InvalidArgument errors that name the option.
  static absl::StatusOr<std::shared_ptr<Transformer>> Create(const TransformerOptions& options,
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

  const SpecialTokens& special_tokens() const override { return options_.special_tokens; }
  int64_t target_vocab_size() const override { return options_.tgt_vocab; }
  int64_t max_decode_positions() const override { return options_.max_len; }
  const TransformerOptions& options() const { return options_; }

  const Embedding& src_embed() const { return *src_embed_; }
  const Embedding& tgt_embed() const { return *tgt_embed_; }
  const Encoder& encoder() const { return *encoder_; }
  const Decoder& decoder() const { return *decoder_; }
  const OutputProjection& generator() const { return *generator_; }

 private:
  explicit Transformer(const TransformerOptions& options) : options_(options) {}

  // ids: i32 [batch, time] at positions offset.. -> [batch, time, d_model]
  Tensor EmbedSource(const Tensor& ids) const;
  Tensor EmbedTarget(const Tensor& ids, int64_t position_offset) const;
  Tensor EmbedTokens(const Embedding& embed, const PositionalEncoding& positional,
                     const Tensor& ids, int64_t position_offset) const;

  TransformerOptions options_;
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
