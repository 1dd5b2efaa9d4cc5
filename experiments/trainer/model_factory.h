// Builds the model a config describes (model.type = transformer | rnn).
#pragma once

#include <memory>

#include "absl/status/statusor.h"
#include "experiments/config/config.h"
#include "layers/decoding/seq2seq_model.h"

namespace attnlab::experiments {

// A lower bound of what training a config's model takes, computed from the config
// alone so that absurd sizes are refused before anything is allocated.
struct TrainingMemoryEstimate {
  double parameters = 0;    // trainable floats
  double other_floats = 0;  // e.g. a sinusoidal position table
  double bytes = 0;         // parameters with gradients and Adam moments, other floats,
                            // and the activations of one batch of train.batch_tokens
                            // tokens (linear terms only: sequence lengths are not known)
};
TrainingMemoryEstimate EstimateTrainingMemory(const Config& config, int64_t source_vocab_size,
                                              int64_t target_vocab_size);

// Refuses (ResourceExhausted, naming the sizes and their origins) a model whose
// EstimateTrainingMemory() exceeds the memory this machine has available.
absl::StatusOr<std::shared_ptr<nn::Seq2SeqModel>> BuildModel(const Config& config,
                                                             int64_t source_vocab_size,
                                                             int64_t target_vocab_size);

// Attention weights of one example for plots: (name, [heads, tgt, src]) pairs, e.g.
// "decoder.layers.1.cross_attn" (Transformer; the last layer's cross-attention unless
// all_layers) or "attention" (RNN, one head). src, tgt_in: i32 [1, len].
std::vector<std::pair<std::string, Tensor>> AttentionForPlots(nn::Seq2SeqModel& model,
                                                              const Tensor& src,
                                                              const Tensor& tgt_in,
                                                              bool all_layers);

}  // namespace attnlab::experiments
