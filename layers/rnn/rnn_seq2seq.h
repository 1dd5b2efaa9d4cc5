// RnnSeq2Seq: the recurrent encoder-decoder with attention, in the two classic styles.
//
//   encoder:  bidirectional GRU/LSTM over embedded source tokens (rnn_encoder.h); the
//             annotation of source token j is h_j = [h_fwd_j; h_bwd_j] (2H wide).
//   bridge:   the decoder's initial state s_0 = tanh(W_b [h_fwd_final; h_bwd_final] + b_b)
//             (and, for an LSTM, its cell c_0 from the final cells the same way).
//   memory:   keys K_j = W_k h_j and values V_j = W_v h_j (key_projection,
//             value_projection: [H, 2H], no bias, computed once per source). The attention
//             dim is the decoder's H, so the decoder state itself is the query: with `dot`,
//             score(s, h_j) = s^T W_k h_j is Luong's `general` form; a variant with weights
//             of its own (additive, general) applies them to s and K_j. The context
//             c_t = sum_j a_tj V_j equals W_v times the papers' sum_j a_tj h_j (a linear
//             reparametrisation of the layers that consume it). Padded source positions
//             (src == pad_id) get weight 0.
//
// attention_style = "bahdanau" (Bahdanau, Cho & Bengio 2014, section 3.1):
//   c_t = attend(query = s_{t-1})              eq. (5)-(6), e_tj = a(s_{t-1}, h_j)
//   s_t = cell([E y_{t-1}; c_t], s_{t-1})       eq. (4), s_i = f(s_{i-1}, y_{i-1}, c_i)
//   o_t = tanh(W_r [s_t; c_t; E y_{t-1}])       the readout g(y_{t-1}, s_t, c_t) of eq. (4),
//                                               tanh instead of appendix A's maxout (as in
//                                               Nematus), no bias
//   logits_t = W_o o_t + b_o                    the generator
//
// attention_style = "luong" (Luong, Pham & Manning 2015, global attention, section 3.1):
//   h_t  = cell([E y_{t-1}; h~_{t-1}], h_{t-1})  input feeding, section 3.3; h~_0 = 0
//   c_t  = attend(query = h_t)                   eq. (7)-(8)
//   h~_t = tanh(W_c [c_t; h_t])                  eq. (5), no bias
//   logits_t = W_s h~_t + b_s                    eq. (6), the generator
//
// Dropout (options.dropout, training mode only) is applied to the source and target
// embeddings and to o_t / h~_t before the generator.
//
// Parameter names (the checkpoint's; cells use PyTorch's names, see recurrent_cell.h):
//   source_embedding.weight                 [source_vocab, E]  (pad row zero, no gradient)
//   target_embedding.weight                 [target_vocab, E]
//   encoder.forward_cell.{weight_ih [G*H, E], weight_hh [G*H, H], bias_ih, bias_hh [G*H]}
//   encoder.backward_cell.{...}             (G = 3 for gru, 4 for lstm)
//   bridge_hidden.{weight [H, 2H], bias [H]}
//   bridge_cell.{weight [H, 2H], bias [H]}  (lstm only)
//   key_projection.weight [H, 2H], value_projection.weight [H, 2H]
//   attention.*                             (the variant's own parameters, if any)
//   decoder_cell.{weight_ih [G*H, E+H], weight_hh [G*H, H], bias_ih, bias_hh}
//   readout.weight [H, 2H+E]                (bahdanau)  | attentional.weight [H, 2H] (luong)
//   generator.{weight [target_vocab, H], bias [target_vocab]}
//
// Teacher forcing (Forward) and step-by-step decoding (DecodeStep) run the same step
// function, so they agree; attention weights per step are available from
// ForwardWithAttention (training/evaluation) and from a decoding state started with
// record_attention (RnnDecoderState::AttentionMatrix), for plots.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "framework/random/generator.h"
#include "layers/attention/attention.h"
#include "layers/decoding/seq2seq_model.h"
#include "layers/embedding.h"
#include "layers/linear.h"
#include "layers/model_options.h"
#include "layers/rnn/recurrent_cell.h"
#include "layers/rnn/rnn_encoder.h"

namespace attnlab::nn {

// The decoding state of N rows (sources, or sources x beams).
struct RnnDecoderState : DecoderState {
  Tensor keys;                // [rows, 1, src, H]
  Tensor values;              // [rows, 1, src, H]
  Tensor key_padding_mask;    // f32 [rows, src], 1 at padding; undefined if none
  RecurrentState recurrent;   // s_{t-1} (bahdanau) / h_{t-1} (luong), [rows, H]
  Tensor attentional_hidden;  // luong's h~_{t-1} [rows, H] (input feeding); else undefined
  int64_t steps = 0;          // decoded so far
  bool record_attention = false;
  std::vector<Tensor> attention_weights;  // when recording: one [rows, src] per step

  // The recorded weights as one tensor [rows, steps, src] (requires record_attention).
  Tensor AttentionMatrix() const;
};

struct RnnSeq2SeqOutput {
  Tensor logits;             // [batch, tgt, target_vocab]
  Tensor attention_weights;  // [batch, tgt, src]: a_tj for target step t over source j
};

class RnnSeq2Seq : public Seq2SeqModel {
 public:
  // Builds the model with parameters drawn from `seed`. Fails (InvalidArgument, naming
  // the option) on non-positive sizes, an unknown cell, style or attention variant,
  // dropout outside [0, 1), or special tokens outside the vocabularies.
  // It reads options.d_model (the embedding size E), hidden_size, rnn_cell,
  // attention_style, dropout, attention.variant and that variant's options.
  static absl::StatusOr<std::shared_ptr<RnnSeq2Seq>> Create(const ModelOptions& options,
                                                            const Vocabularies& vocabularies,
                                                            uint64_t seed);

  // src i32 [batch, src_len], tgt_in i32 [batch, tgt_len] -> logits [batch, tgt_len, V].
  Tensor Forward(const Tensor& src, const Tensor& tgt_in) override;
  // The same, plus the attention weights of every step.
  RnnSeq2SeqOutput ForwardWithAttention(const Tensor& src, const Tensor& tgt_in);

  std::unique_ptr<DecoderState> StartDecoding(const Tensor& src) override;
  // With record_attention, every DecodeStep appends its weights to the state.
  std::unique_ptr<RnnDecoderState> StartDecoding(const Tensor& src, bool record_attention);
  // last_tokens i32 [rows] -> log-probabilities [rows, V].
  Tensor DecodeStep(DecoderState& state, const Tensor& last_tokens) override;
  // IndexSelect along rows on every state tensor (memory, recurrence, input feed, history).
  void ReorderState(DecoderState& state, const Tensor& indices) override;

  const SpecialTokens& special_tokens() const override { return vocabularies_.special_tokens; }
  int64_t target_vocab_size() const override { return vocabularies_.target_size; }
  const ModelOptions& options() const { return options_; }
  const RnnEncoder& encoder() const { return *encoder_; }

 private:
  RnnSeq2Seq(const ModelOptions& options, const Vocabularies& vocabularies)
      : options_(options), vocabularies_(vocabularies) {}
  // Creates and registers the submodules in data-flow order.
  absl::Status Build(Generator& generator);

  bool is_luong() const { return options_.attention_style == "luong"; }
  // Encodes the source and sets up the decoder's memory and initial state.
  std::unique_ptr<RnnDecoderState> Encode(const Tensor& src);
  // query [rows, H] -> context [rows, H]; the weights [rows, src] into *weights if asked.
  Tensor Attend(const Tensor& query, const RnnDecoderState& state, Tensor* weights) const;
  // One decoder step from E y_{t-1} [rows, E]: advances the state and returns the
  // generator's input (o_t or h~_t, before dropout) [rows, H].
  Tensor Step(const Tensor& previous_embedding, RnnDecoderState& state, Tensor* weights) const;
  // features [..., H] -> logits [..., V] (dropout, then the generator).
  Tensor Generate(const Tensor& features) const;

  ModelOptions options_;
  Vocabularies vocabularies_;
  std::shared_ptr<Embedding> source_embedding_;
  std::shared_ptr<Embedding> target_embedding_;
  std::shared_ptr<RnnEncoder> encoder_;
  std::shared_ptr<Linear> bridge_hidden_;
  std::shared_ptr<Linear> bridge_cell_;  // lstm only
  std::shared_ptr<Linear> key_projection_;
  std::shared_ptr<Linear> value_projection_;
  std::shared_ptr<Attention> attention_;
  std::shared_ptr<RecurrentCell> decoder_cell_;
  std::shared_ptr<Linear> readout_;      // bahdanau
  std::shared_ptr<Linear> attentional_;  // luong
  std::shared_ptr<Linear> generator_;
};

}  // namespace attnlab::nn
