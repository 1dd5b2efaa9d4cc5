// The [model] table of an experiment config, as the models read it: one plain struct
// whose member initialisers are the config's defaults, and ModelOptionFields() beside it
// with every key's meaning and range (the config schema and `attnlab keys` come from it).
// Transformer::Create and RnnSeq2Seq::Create take it whole; their blocks take the part
// they use (an attention block takes `attention`).
#pragma once

#include <cstdint>
#include <string>

#include "framework/core/option_fields.h"
#include "layers/attention/multi_head.h"
#include "layers/decoding/seq2seq_model.h"
#include "layers/feed_forward.h"
#include "layers/transformer/sublayer_connection.h"

namespace attnlab::nn {

struct ModelOptions {
  std::string type = "transformer";  // transformer | rnn
  // Transformer: the model width. RNN: the embedding size.
  int64_t d_model = 128;
  // Transformer: on embeddings, sublayer outputs and inside the feed-forward. RNN: on the
  // embeddings and before the generator.
  double dropout = 0.1;
  // The attention blocks (Transformer) or the decoder's attention (RNN: its variant and
  // the variant's options; one head of the decoder's hidden size).
  AttentionOptions attention;

  // ---- Transformer ----
  int64_t d_ff = 512;
  int64_t encoder_layers = 2;
  int64_t decoder_layers = 2;
  std::string positional = "sinusoidal";  // a registered positional encoding
  // Longest sequence (tokens, with bos/eos) the positional encoding supports.
  int64_t max_len = 256;
  NormPosition norm = NormPosition::kPost;
  FeedForwardActivation activation = FeedForwardActivation::kRelu;
  bool share_embeddings = false;  // one table for source and target (equal vocabularies)
  bool tie_generator = false;     // generator weight = target embedding (section 3.4)

  // ---- RNN ----
  std::string rnn_cell = "gru";              // gru | lstm
  int64_t hidden_size = 128;                 // H: each encoder direction, the decoder
  std::string attention_style = "bahdanau";  // bahdanau | luong
};

const OptionFields<ModelOptions>& ModelOptionFields();

// What the data decides about a model: its vocabularies and special tokens.
struct Vocabularies {
  int64_t source_size = 0;
  int64_t target_size = 0;
  SpecialTokens special_tokens;
};

}  // namespace attnlab::nn
