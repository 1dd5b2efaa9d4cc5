#include "layers/rnn/rnn_seq2seq.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "framework/ops/ops.h"

namespace attnlab::nn {
namespace {

absl::Status CheckOptions(const ModelOptions& options, const Vocabularies& vocabularies) {
  auto invalid = [](auto&&... parts) {
    return absl::InvalidArgumentError(absl::StrCat("RnnSeq2Seq: ", parts...));
  };
  if (vocabularies.source_size <= 0 || vocabularies.target_size <= 0) {
    return invalid("vocabulary sizes must be positive, got ", vocabularies.source_size, " and ",
                   vocabularies.target_size);
  }
  if (options.d_model <= 0) {
    return invalid("d_model (the embedding size) must be positive, got ", options.d_model);
  }
  if (options.hidden_size <= 0) {
    return invalid("hidden_size must be positive, got ", options.hidden_size);
  }
  if (options.rnn_cell != "gru" && options.rnn_cell != "lstm") {
    return invalid("unknown rnn_cell '", options.rnn_cell, "'; known: gru, lstm");
  }
  if (options.attention_style != "bahdanau" && options.attention_style != "luong") {
    return invalid("unknown attention_style '", options.attention_style,
                   "'; known: bahdanau, luong");
  }
  if (!(options.dropout >= 0.0 && options.dropout < 1.0)) {
    return invalid("dropout must be in [0, 1), got ", options.dropout);
  }
  const SpecialTokens& tokens = vocabularies.special_tokens;
  const std::pair<const char*, int32_t> target_ids[] = {
      {"pad_id", tokens.pad_id}, {"bos_id", tokens.bos_id}, {"eos_id", tokens.eos_id}};
  for (const auto& [name, id] : target_ids) {
    if (id < 0 || id >= vocabularies.target_size) {
      return invalid(name, " ", id, " is outside the target vocabulary of ",
                     vocabularies.target_size);
    }
  }
  if (tokens.pad_id >= vocabularies.source_size) {
    return invalid("pad_id ", tokens.pad_id, " is outside the source vocabulary of ",
                   vocabularies.source_size);
  }
  return absl::OkStatus();
}

// f32 [batch, src], 1 where src == pad_id; undefined when no position is padding.
Tensor PaddingMask(const Tensor& src, int32_t pad_id) {
  const std::vector<int32_t> ids = src.ToInts();
  std::vector<float> mask(ids.size());
  bool any_padding = false;
  for (size_t i = 0; i < ids.size(); ++i) {
    mask[i] = ids[i] == pad_id ? 1.0f : 0.0f;
    any_padding = any_padding || ids[i] == pad_id;
  }
  if (!any_padding) return Tensor();
  return Tensor::FromFloats(mask, src.shape());
}

RnnDecoderState& CheckedState(DecoderState& state) {
  auto* rnn_state = dynamic_cast<RnnDecoderState*>(&state);
  ATTNLAB_CHECK(rnn_state != nullptr,
                "RnnSeq2Seq: the decoding state was not made by an RnnSeq2Seq");
  return *rnn_state;
}

}  // namespace

Tensor RnnDecoderState::AttentionMatrix() const {
  ATTNLAB_CHECK(record_attention,
                "RnnDecoderState: attention was not recorded; start decoding "
                "with StartDecoding(src, /*record_attention=*/true)");
  ATTNLAB_CHECK(!attention_weights.empty(), "RnnDecoderState: no step decoded yet");
  std::vector<Tensor> rows;
  rows.reserve(attention_weights.size());
  for (const Tensor& weights : attention_weights) {
    rows.push_back(Reshape(weights, {weights.size(0), 1, weights.size(1)}));
  }
  return Concat(rows, 1);  // [rows, steps, src]
}

absl::StatusOr<std::shared_ptr<RnnSeq2Seq>> RnnSeq2Seq::Create(const ModelOptions& options,
                                                               const Vocabularies& vocabularies,
                                                               uint64_t seed) {
  RETURN_IF_ERROR(CheckOptions(options, vocabularies));
  Generator generator(seed);
  std::shared_ptr<RnnSeq2Seq> model(new RnnSeq2Seq(options, vocabularies));
  RETURN_IF_ERROR(model->Build(generator));
  return model;
}

absl::Status RnnSeq2Seq::Build(Generator& generator) {
  const int64_t embedding_dim = options_.d_model, hidden = options_.hidden_size;
  const int32_t pad_id = vocabularies_.special_tokens.pad_id;
  source_embedding_ = RegisterModule(
      "source_embedding",
      std::make_shared<Embedding>(vocabularies_.source_size, embedding_dim, pad_id, generator));
  target_embedding_ = RegisterModule(
      "target_embedding",
      std::make_shared<Embedding>(vocabularies_.target_size, embedding_dim, pad_id, generator));
  ASSIGN_OR_RETURN(std::shared_ptr<RnnEncoder> encoder,
                   RnnEncoder::Create(options_.rnn_cell, embedding_dim, hidden, generator));
  encoder_ = RegisterModule("encoder", std::move(encoder));
  bridge_hidden_ = RegisterModule("bridge_hidden",
                                  std::make_shared<Linear>(2 * hidden, hidden, true, generator));
  if (options_.rnn_cell == "lstm") {
    bridge_cell_ = RegisterModule("bridge_cell",
                                  std::make_shared<Linear>(2 * hidden, hidden, true, generator));
  }
  key_projection_ = RegisterModule("key_projection",
                                   std::make_shared<Linear>(2 * hidden, hidden, false, generator));
  value_projection_ = RegisterModule(
      "value_projection", std::make_shared<Linear>(2 * hidden, hidden, false, generator));
  // One head as wide as the decoder state, whatever model.heads says (the decoder state
  // is the query), attending over the source: cross-attention.
  absl::StatusOr<std::shared_ptr<Attention>> attention =
      MakeAttention(options_.attention.variant, AttentionShape{1, hidden, AttentionRole::kCross},
                    generator, options_.attention.variant_options);
  if (!attention.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("RnnSeq2Seq: ", attention.status().message()));
  }
  attention_ = RegisterModule("attention", std::move(attention).value());
  // Bahdanau: the cell reads [E y_{t-1}; c_t]; Luong: [E y_{t-1}; h~_{t-1}]. Both E + H.
  ASSIGN_OR_RETURN(decoder_cell_,
                   MakeRecurrentCell(options_.rnn_cell, embedding_dim + hidden, hidden, generator));
  RegisterModule("decoder_cell", decoder_cell_);
  if (is_luong()) {
    attentional_ = RegisterModule("attentional",
                                  std::make_shared<Linear>(2 * hidden, hidden, false, generator));
  } else {
    readout_ = RegisterModule(
        "readout", std::make_shared<Linear>(2 * hidden + embedding_dim, hidden, false, generator));
  }
  generator_ = RegisterModule(
      "generator", std::make_shared<Linear>(hidden, vocabularies_.target_size, true, generator));
  return absl::OkStatus();
}

std::unique_ptr<RnnDecoderState> RnnSeq2Seq::Encode(const Tensor& src) {
  ATTNLAB_CHECK(src.rank() == 2 && src.dtype() == DType::kI32 && src.size(1) > 0,
                "RnnSeq2Seq: src ", src.Describe(), " should be i32 [batch, src_len > 0]");
  const int64_t batch = src.size(0), src_len = src.size(1), hidden = options_.hidden_size;
  auto state = std::make_unique<RnnDecoderState>();
  state->key_padding_mask = PaddingMask(src, vocabularies_.special_tokens.pad_id);
  const Tensor embedded =
      Dropout(source_embedding_->Forward(src), options_.dropout, is_training());  // [B, S, E]
  const RnnEncoderOutput encoded = encoder_->Forward(embedded, state->key_padding_mask);
  // Memory: annotations [B, S, 2H] projected to keys and values [B, 1, S, H] (one head).
  state->keys = Reshape(key_projection_->Forward(encoded.outputs), {batch, 1, src_len, hidden});
  state->values = Reshape(value_projection_->Forward(encoded.outputs), {batch, 1, src_len, hidden});
  // s_0 = tanh(W_b [h_fwd_final; h_bwd_final] + b_b), and likewise c_0 for an LSTM.
  state->recurrent.hidden = Tanh(bridge_hidden_->Forward(
      Concat({encoded.forward_final.hidden, encoded.backward_final.hidden}, 1)));
  if (bridge_cell_ != nullptr) {
    state->recurrent.cell = Tanh(bridge_cell_->Forward(
        Concat({encoded.forward_final.cell, encoded.backward_final.cell}, 1)));
  }
  if (is_luong()) state->attentional_hidden = Tensor::Zeros({batch, hidden});  // h~_0
  return state;
}

Tensor RnnSeq2Seq::Attend(const Tensor& query, const RnnDecoderState& state,
                          Tensor* weights) const {
  const int64_t rows = query.size(0), hidden = options_.hidden_size;
  AttentionInputs inputs;
  inputs.query = Reshape(query, {rows, 1, 1, hidden});  // [rows, heads = 1, tgt = 1, H]
  inputs.key = state.keys;
  inputs.value = state.values;
  inputs.key_padding_mask = state.key_padding_mask;
  inputs.need_weights = weights != nullptr;
  const AttentionOutput output = attention_->Forward(inputs);
  if (weights != nullptr) *weights = Reshape(output.weights, {rows, output.weights.size(-1)});
  return Reshape(output.context, {rows, hidden});
}

Tensor RnnSeq2Seq::Step(const Tensor& previous_embedding, RnnDecoderState& state,
                        Tensor* weights) const {
  if (is_luong()) {
    // h_t = cell([E y_{t-1}; h~_{t-1}], h_{t-1}); c_t = attend(h_t); h~_t = tanh(W_c [c_t; h_t]).
    state.recurrent = decoder_cell_->Forward(
        Concat({previous_embedding, state.attentional_hidden}, 1), state.recurrent);
    const Tensor context = Attend(state.recurrent.hidden, state, weights);
    state.attentional_hidden =
        Tanh(attentional_->Forward(Concat({context, state.recurrent.hidden}, 1)));
    return state.attentional_hidden;
  }
  // c_t = attend(s_{t-1}); s_t = cell([E y_{t-1}; c_t], s_{t-1}); o_t = tanh(W_r [s_t; c_t; E
  // y_{t-1}]).
  const Tensor context = Attend(state.recurrent.hidden, state, weights);
  state.recurrent =
      decoder_cell_->Forward(Concat({previous_embedding, context}, 1), state.recurrent);
  return Tanh(readout_->Forward(Concat({state.recurrent.hidden, context, previous_embedding}, 1)));
}

Tensor RnnSeq2Seq::Generate(const Tensor& features) const {
  return generator_->Forward(Dropout(features, options_.dropout, is_training()));
}

RnnSeq2SeqOutput RnnSeq2Seq::ForwardWithAttention(const Tensor& src, const Tensor& tgt_in) {
  const auto profile_scope = ProfileScope("rnn_seq2seq");
  ATTNLAB_CHECK(tgt_in.rank() == 2 && tgt_in.dtype() == DType::kI32 && src.rank() == 2 &&
                    tgt_in.size(0) == src.size(0) && tgt_in.size(1) > 0,
                "RnnSeq2Seq: tgt_in ", tgt_in.Describe(), " should be i32 [batch, tgt_len > 0] ",
                "with the batch of src ", src.Describe());
  const int64_t batch = tgt_in.size(0), tgt_len = tgt_in.size(1);
  const int64_t embedding_dim = options_.d_model, hidden = options_.hidden_size;
  std::unique_ptr<RnnDecoderState> state = Encode(src);
  // E y_{t-1} for every step, time-major so that a step's slice is contiguous: [T, B, E].
  // Dropout comes before the permute, on [B, T, E]: a DropoutBatchShard keys masks by
  // batch row, so dim 0 must be the batch.
  const Tensor embedded = Permute(
      Dropout(target_embedding_->Forward(tgt_in), options_.dropout, is_training()), {1, 0, 2});
  std::vector<Tensor> features(tgt_len), weights(tgt_len);
  for (int64_t t = 0; t < tgt_len; ++t) {
    const Tensor previous_embedding = Reshape(Narrow(embedded, 0, t, 1), {batch, embedding_dim});
    features[t] = Reshape(Step(previous_embedding, *state, &weights[t]), {batch, 1, hidden});
    weights[t] = Reshape(weights[t], {batch, 1, weights[t].size(1)});
  }
  RnnSeq2SeqOutput output;
  // One generator matmul for every step: [B, T, H] -> [B, T, V].
  output.logits = Generate(Concat(features, 1));
  output.attention_weights = Concat(weights, 1);  // [B, T, S]
  return output;
}

Tensor RnnSeq2Seq::Forward(const Tensor& src, const Tensor& tgt_in) {
  return ForwardWithAttention(src, tgt_in).logits;
}

std::unique_ptr<DecoderState> RnnSeq2Seq::StartDecoding(const Tensor& src) {
  return StartDecoding(src, /*record_attention=*/false);
}

std::unique_ptr<RnnDecoderState> RnnSeq2Seq::StartDecoding(const Tensor& src,
                                                           bool record_attention) {
  std::unique_ptr<RnnDecoderState> state = Encode(src);
  state->record_attention = record_attention;
  return state;
}

Tensor RnnSeq2Seq::DecodeStep(DecoderState& state, const Tensor& last_tokens) {
  RnnDecoderState& rnn_state = CheckedState(state);
  const int64_t rows = rnn_state.recurrent.hidden.size(0);
  ATTNLAB_CHECK(
      last_tokens.rank() == 1 && last_tokens.dtype() == DType::kI32 && last_tokens.size(0) == rows,
      "RnnSeq2Seq::DecodeStep: last_tokens ", last_tokens.Describe(), " should be i32 [", rows,
      "]");
  const Tensor previous_embedding =
      Dropout(target_embedding_->Forward(last_tokens), options_.dropout, is_training());
  Tensor weights;
  const Tensor features =
      Step(previous_embedding, rnn_state, rnn_state.record_attention ? &weights : nullptr);
  if (rnn_state.record_attention) rnn_state.attention_weights.push_back(weights);
  ++rnn_state.steps;
  return LogSoftmax(Generate(features));  // [rows, V]
}

void RnnSeq2Seq::ReorderState(DecoderState& state, const Tensor& indices) {
  RnnDecoderState& rnn_state = CheckedState(state);
  ReorderRows(rnn_state.keys, indices);
  ReorderRows(rnn_state.values, indices);
  ReorderRows(rnn_state.key_padding_mask, indices);
  ReorderRows(rnn_state.recurrent.hidden, indices);
  ReorderRows(rnn_state.recurrent.cell, indices);
  ReorderRows(rnn_state.attentional_hidden, indices);
  for (Tensor& weights : rnn_state.attention_weights) ReorderRows(weights, indices);
}

}  // namespace attnlab::nn
