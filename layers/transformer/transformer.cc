#include "layers/transformer/transformer.h"

#include <algorithm>
#include <cmath>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/string_view.h"
#include "framework/core/error.h"
#include "framework/ops/ops.h"
#include "layers/attention/attention.h"

namespace attnlab::nn {
namespace {

absl::Status OptionError(absl::string_view option, absl::string_view problem) {
  return absl::InvalidArgumentError(absl::StrCat("Transformer: ", option, ": ", problem));
}

absl::Status CheckPositive(absl::string_view option, int64_t value) {
  if (value > 0) return absl::OkStatus();
  return OptionError(option, absl::StrCat("must be positive, got ", value));
}

absl::Status CheckProbability(absl::string_view option, double value) {
  if (value >= 0.0 && value < 1.0) return absl::OkStatus();
  return OptionError(option, absl::StrCat("must be in [0, 1), got ", value));
}

absl::Status CheckToken(absl::string_view option, int32_t id, int64_t vocab,
                        absl::string_view vocab_option) {
  if (id >= 0 && id < vocab) return absl::OkStatus();
  return OptionError(option, absl::StrCat("id ", id, " is outside [0, ", vocab, ") (", vocab_option,
                                          " = ", vocab, ")"));
}

// Everything that can be checked before building anything. The ranges of single keys are
// the config's (ModelOptionFields); these are what code that builds a model directly
// can still get wrong, and the rules that involve the vocabularies.
absl::Status ValidateOptions(const ModelOptions& options, const Vocabularies& vocabularies) {
  RETURN_IF_ERROR(CheckPositive("source_size", vocabularies.source_size));
  RETURN_IF_ERROR(CheckPositive("target_size", vocabularies.target_size));
  RETURN_IF_ERROR(CheckPositive("d_model", options.d_model));
  RETURN_IF_ERROR(CheckPositive("d_ff", options.d_ff));
  RETURN_IF_ERROR(CheckPositive("encoder_layers", options.encoder_layers));
  RETURN_IF_ERROR(CheckPositive("decoder_layers", options.decoder_layers));
  RETURN_IF_ERROR(CheckPositive("max_len", options.max_len));
  RETURN_IF_ERROR(CheckProbability("dropout", options.dropout));
  RETURN_IF_ERROR(CheckProbability("attention_dropout", options.attention.dropout));
  if (options.share_embeddings && vocabularies.source_size != vocabularies.target_size) {
    return OptionError("share_embeddings",
                       absl::StrCat("needs equal source and target vocabularies, got ",
                                    vocabularies.source_size, " and ", vocabularies.target_size));
  }
  const SpecialTokens& tokens = vocabularies.special_tokens;
  RETURN_IF_ERROR(CheckToken("pad_id", tokens.pad_id, vocabularies.source_size, "source_size"));
  RETURN_IF_ERROR(CheckToken("pad_id", tokens.pad_id, vocabularies.target_size, "target_size"));
  RETURN_IF_ERROR(CheckToken("bos_id", tokens.bos_id, vocabularies.target_size, "target_size"));
  RETURN_IF_ERROR(CheckToken("eos_id", tokens.eos_id, vocabularies.target_size, "target_size"));
  return absl::OkStatus();
}

absl::StatusOr<std::shared_ptr<PositionalEncoding>> MakePositional(const ModelOptions& options,
                                                                   Generator& generator) {
  auto positional =
      MakePositionalEncoding(options.positional, options.d_model, options.max_len, generator);
  if (!positional.ok()) {
    return OptionError("positional", positional.status().message());
  }
  return *std::move(positional);
}

TransformerDecoderState& AsTransformerState(DecoderState& state) {
  auto* transformer_state = dynamic_cast<TransformerDecoderState*>(&state);
  ATTNLAB_CHECK(transformer_state != nullptr,
                "Transformer: decoder state was not made by Transformer::StartDecoding");
  return *transformer_state;
}

void CheckTokenMatrix(const char* name, const Tensor& ids) {
  ATTNLAB_CHECK(ids.defined() && ids.dtype() == DType::kI32 && ids.rank() == 2,
                "Transformer: ", name, " should be i32 [batch, time], got ",
                ids.defined() ? ids.Describe() : std::string("undefined"));
}

// The inputs of teacher forcing: i32 token matrices with one batch.
void CheckSourceAndTarget(const Tensor& src, const Tensor& tgt_in) {
  CheckTokenMatrix("src", src);
  CheckTokenMatrix("tgt_in", tgt_in);
  ATTNLAB_CHECK(src.size(0) == tgt_in.size(0), "Transformer: src ", src.Describe(), " and tgt_in ",
                tgt_in.Describe(), " have different batch sizes");
}

}  // namespace

absl::StatusOr<std::shared_ptr<Transformer>> Transformer::Create(const ModelOptions& options,
                                                                 const Vocabularies& vocabularies,
                                                                 uint64_t seed) {
  RETURN_IF_ERROR(ValidateOptions(options, vocabularies));
  Generator generator(seed);
  auto model = std::shared_ptr<Transformer>(new Transformer(options, vocabularies));
  model->embedding_scale_ = std::sqrt(static_cast<float>(options.d_model));
  const int64_t pad_id = vocabularies.special_tokens.pad_id;

  model->src_embed_ = model->RegisterModule(
      "src_embed",
      std::make_shared<Embedding>(vocabularies.source_size, options.d_model, pad_id, generator));
  model->tgt_embed_ =
      options.share_embeddings
          ? model->src_embed_
          : model->RegisterModule(
                "tgt_embed", std::make_shared<Embedding>(vocabularies.target_size, options.d_model,
                                                         pad_id, generator));
  ASSIGN_OR_RETURN(std::shared_ptr<PositionalEncoding> src_pos_encoding,
                   MakePositional(options, generator));
  ASSIGN_OR_RETURN(std::shared_ptr<PositionalEncoding> tgt_pos_encoding,
                   MakePositional(options, generator));
  model->src_pos_encoding_ = model->RegisterModule("src_pos_encoding", src_pos_encoding);
  model->tgt_pos_encoding_ = model->RegisterModule("tgt_pos_encoding", tgt_pos_encoding);

  // A rotary encoding (RoPE) acts inside self-attention instead of on the embeddings.
  const bool rotary = src_pos_encoding->rotary();
  if (rotary && options.attention.HeadDim(options.d_model) % 2 != 0) {
    return OptionError("positional", absl::StrCat("'", options.positional,
                                                  "' rotates pairs of channels and needs an even "
                                                  "head dimension (key_size, or d_model / "
                                                  "heads), got ",
                                                  options.attention.HeadDim(options.d_model)));
  }
  auto encoder = Encoder::Create(options, rotary, generator);
  if (!encoder.ok()) return OptionError("attention", encoder.status().message());
  model->encoder_ = model->RegisterModule("encoder", *std::move(encoder));
  auto decoder = Decoder::Create(options, rotary, generator);
  if (!decoder.ok()) return OptionError("attention", decoder.status().message());
  model->decoder_ = model->RegisterModule("decoder", *std::move(decoder));

  model->generator_ = model->RegisterModule(
      "generator", options.tie_generator
                       ? std::make_shared<OutputProjection>(model->tgt_embed_->weight())
                       : std::make_shared<OutputProjection>(options.d_model,
                                                            vocabularies.target_size, generator));
  return model;
}

Tensor Transformer::SourcePaddingMask(const Tensor& src) const {
  CheckTokenMatrix("src", src);
  const std::vector<int32_t> ids = src.ToInts();
  std::vector<float> is_padding(ids.size());
  for (size_t i = 0; i < ids.size(); ++i) {
    is_padding[i] = ids[i] == vocabularies_.special_tokens.pad_id ? 1.0f : 0.0f;
  }
  return Tensor::FromFloats(is_padding, src.shape());
}

Tensor Transformer::EmbedTokens(const Embedding& embed, const PositionalEncoding& positional,
                                const Tensor& ids, int64_t position_offset) const {
  const Tensor scaled = MulScalar(embed.Forward(ids), embedding_scale_);  // [b, t, d_model]
  return Dropout(positional.Forward(scaled, position_offset), options_.dropout, is_training());
}

Tensor Transformer::EmbedSource(const Tensor& ids) const {
  return EmbedTokens(*src_embed_, *src_pos_encoding_, ids, 0);
}

Tensor Transformer::EmbedTarget(const Tensor& ids, int64_t position_offset) const {
  return EmbedTokens(*tgt_embed_, *tgt_pos_encoding_, ids, position_offset);
}

Tensor Transformer::Encode(const Tensor& src, const Tensor& src_padding_mask,
                           std::vector<Tensor>* self_attention_weights) const {
  CheckTokenMatrix("src", src);
  return encoder_->Forward(EmbedSource(src), src_padding_mask, self_attention_weights);
}

Tensor Transformer::Forward(const Tensor& src, const Tensor& tgt_in) {
  const auto profile_scope = ProfileScope("transformer");
  CheckSourceAndTarget(src, tgt_in);
  const Tensor src_padding_mask = SourcePaddingMask(src);
  const Tensor memory = Encode(src, src_padding_mask);  // [batch, src, d_model]
  const Tensor hidden = decoder_->Forward(EmbedTarget(tgt_in, 0), memory, src_padding_mask);
  return generator_->Forward(hidden);  // [batch, tgt, tgt_vocab]
}

TransformerOutput Transformer::ForwardWithAttention(const Tensor& src, const Tensor& tgt_in) {
  const auto profile_scope = ProfileScope("transformer");
  CheckSourceAndTarget(src, tgt_in);
  TransformerOutput output;
  const Tensor src_padding_mask = SourcePaddingMask(src);
  const Tensor memory = Encode(src, src_padding_mask, &output.attention.encoder_self_attn);
  std::vector<DecoderLayerAttentionWeights> decoder_weights;
  const Tensor hidden = decoder_->Forward(EmbedTarget(tgt_in, 0), memory, src_padding_mask,
                                          /*caches=*/nullptr, &decoder_weights);
  for (DecoderLayerAttentionWeights& layer_weights : decoder_weights) {
    output.attention.decoder_self_attn.push_back(std::move(layer_weights.self_attn));
    output.attention.cross_attn.push_back(std::move(layer_weights.cross_attn));
  }
  output.logits = generator_->Forward(hidden);  // [batch, tgt, tgt_vocab]
  return output;
}

std::unique_ptr<DecoderState> Transformer::StartDecoding(const Tensor& src) {
  auto state = std::make_unique<TransformerDecoderState>();
  state->src_padding_mask = SourcePaddingMask(src);
  state->memory = Encode(src, state->src_padding_mask);
  state->use_cache = decoding_cache_;
  if (state->use_cache) state->caches.resize(decoder_->num_layers());
  return state;
}

Tensor Transformer::DecodeStep(DecoderState& state, const Tensor& last_tokens) {
  TransformerDecoderState& decoding = AsTransformerState(state);
  const int64_t rows = decoding.memory.size(0);
  ATTNLAB_CHECK(last_tokens.dtype() == DType::kI32 && last_tokens.shape() == (Shape{rows}),
                "Transformer::DecodeStep: last_tokens ", last_tokens.Describe(), " should be i32 [",
                rows, "]");
  const Tensor step_tokens = Reshape(last_tokens, {rows, 1});
  Tensor hidden;  // [rows, 1, d_model]
  if (decoding.use_cache) {
    hidden = decoder_->Forward(EmbedTarget(step_tokens, decoding.steps), decoding.memory,
                               decoding.src_padding_mask, &decoding.caches);
  } else {
    decoding.prefix =
        decoding.steps == 0 ? Contiguous(step_tokens) : Concat({decoding.prefix, step_tokens}, 1);
    const Tensor all_hidden = decoder_->Forward(EmbedTarget(decoding.prefix, 0), decoding.memory,
                                                decoding.src_padding_mask);  // [rows, steps+1, d]
    hidden = Narrow(all_hidden, 1, decoding.steps, 1);
  }
  ++decoding.steps;
  const Tensor logits = Reshape(generator_->Forward(hidden), {rows, vocabularies_.target_size});
  return LogSoftmax(logits);  // [rows, tgt_vocab]
}

void Transformer::ReorderState(DecoderState& state, const Tensor& indices) {
  TransformerDecoderState& decoding = AsTransformerState(state);
  ReorderRows(decoding.memory, indices);
  ReorderRows(decoding.src_padding_mask, indices);
  ReorderRows(decoding.prefix, indices);
  for (DecoderLayerCache& cache : decoding.caches) {
    ReorderCache(cache.self_attn, indices);
    ReorderCache(cache.cross_attn, indices);
  }
}

}  // namespace attnlab::nn
