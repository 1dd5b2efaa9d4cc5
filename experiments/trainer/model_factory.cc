#include "experiments/trainer/model_factory.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "framework/autograd/grad_mode.h"
#include "framework/core/error.h"
#include "framework/ops/ops.h"
#include "framework/tensor/allocator.h"
#include "layers/rnn/rnn_seq2seq.h"
#include "layers/transformer/transformer.h"

namespace attnlab::experiments {

TrainingMemoryEstimate EstimateTrainingMemory(const Config& config, int64_t source_vocab_size,
                                              int64_t target_vocab_size) {
  // Doubles throughout: the point is to refuse absurd sizes, whose int64 products wrap.
  const double source_vocab = static_cast<double>(source_vocab_size);
  const double target_vocab = static_cast<double>(target_vocab_size);
  const double d_model = static_cast<double>(config.model().d_model);
  const double batch_tokens = static_cast<double>(config.train().batch_tokens);
  TrainingMemoryEstimate estimate;
  double activations_per_token = 0;  // floats every training batch keeps for backward
  if (config.model().type == "transformer") {
    const double heads = static_cast<double>(config.model().attention.heads);
    const double key_size = static_cast<double>(config.model().attention.key_size);
    const double attention_width = key_size > 0 ? heads * key_size : d_model;
    const double d_ff = static_cast<double>(config.model().d_ff);
    const double encoder_layers = static_cast<double>(config.model().encoder_layers);
    const double decoder_layers = static_cast<double>(config.model().decoder_layers);
    // q, k, v and output projections with biases; two linear maps of the feed-forward;
    // a LayerNorm (gain and bias) per sublayer.
    const double attention = 4 * (d_model * attention_width + attention_width);
    const double feed_forward = 2 * d_model * d_ff + d_ff + d_model;
    const double embeddings = config.model().share_embeddings
                                  ? source_vocab * d_model
                                  : (source_vocab + target_vocab) * d_model;
    const double generator =
        config.model().tie_generator ? target_vocab : (d_model + 1) * target_vocab;
    estimate.parameters = embeddings + generator +
                          encoder_layers * (attention + feed_forward + 4 * d_model) +
                          decoder_layers * (2 * attention + feed_forward + 6 * d_model);
    // Sinusoidal and learned encodings are [max_len, d_model] tables.
    estimate.other_floats = static_cast<double>(config.model().max_len) * d_model;
    // Sublayer inputs and outputs of width d_model, the feed-forward's hidden layer.
    activations_per_token = (encoder_layers + decoder_layers) * (4 * d_model + d_ff);
  } else {
    const double hidden = static_cast<double>(config.model().hidden_size);
    const double gates = config.model().rnn_cell == "lstm" ? 4 : 3;
    // Bidirectional encoder cells, a decoder cell reading embedding and context, attention
    // and output layers of a few H x H maps.
    estimate.parameters = (source_vocab + target_vocab) * d_model +
                          2 * gates * hidden * (d_model + hidden + 2) +
                          gates * hidden * (d_model + 3 * hidden + 2) + 8 * hidden * hidden +
                          (hidden + 1) * target_vocab;
    activations_per_token = (gates + 4) * hidden + d_model;
  }
  // Logits and their softmax for every target token.
  activations_per_token += 2 * target_vocab;
  // Weights, gradients and Adam's two moments: 4 floats per parameter.
  estimate.bytes = sizeof(float) * (4 * estimate.parameters + estimate.other_floats +
                                    activations_per_token * batch_tokens);
  return estimate;
}

absl::StatusOr<std::shared_ptr<nn::Seq2SeqModel>> BuildModel(const Config& config,
                                                             int64_t source_vocab_size,
                                                             int64_t target_vocab_size) {
  const TrainingMemoryEstimate estimate =
      EstimateTrainingMemory(config, source_vocab_size, target_vocab_size);
  // Name the sizes the user chose (those are what to lower), or the width if all are defaults.
  std::vector<std::string> chosen_sizes;
  for (const char* key :
       {"model.d_model", "model.heads", "model.key_size", "model.d_ff", "model.encoder_layers",
        "model.decoder_layers", "model.max_len", "model.hidden_size", "train.batch_tokens"}) {
    if (config.Origin(key) != "default") chosen_sizes.push_back(config.Describe(key));
  }
  if (chosen_sizes.empty()) chosen_sizes.push_back(config.Describe("model.d_model"));
  RETURN_IF_ERROR(CheckMemoryAvailable(
      estimate.bytes, absl::StrFormat("%s: the model would have %.3g parameters, and training it",
                                      absl::StrJoin(chosen_sizes, ", "), estimate.parameters)));
  const uint64_t seed = static_cast<uint64_t>(config.experiment().seed);
  const nn::Vocabularies vocabularies{source_vocab_size, target_vocab_size, nn::SpecialTokens()};
  if (config.model().type == "transformer") {
    ASSIGN_OR_RETURN(std::shared_ptr<nn::Transformer> model,
                     nn::Transformer::Create(config.model(), vocabularies, seed));
    return std::shared_ptr<nn::Seq2SeqModel>(std::move(model));
  }
  ASSIGN_OR_RETURN(std::shared_ptr<nn::RnnSeq2Seq> model,
                   nn::RnnSeq2Seq::Create(config.model(), vocabularies, seed));
  return std::shared_ptr<nn::Seq2SeqModel>(std::move(model));
}

std::vector<std::pair<std::string, Tensor>> AttentionForPlots(nn::Seq2SeqModel& model,
                                                              const Tensor& src,
                                                              const Tensor& tgt_in,
                                                              bool all_layers) {
  NoGradGuard no_grad;
  const bool was_training = model.is_training();
  model.Eval();
  std::vector<std::pair<std::string, Tensor>> plots;
  // Drops the batch dim: [1, heads, tgt, src] -> [heads, tgt, src].
  auto squeeze = [](const Tensor& weights) {
    Shape shape(weights.shape().begin() + 1, weights.shape().end());
    return Reshape(weights, shape);
  };
  if (auto* transformer = dynamic_cast<nn::Transformer*>(&model)) {
    const nn::TransformerOutput output = transformer->ForwardWithAttention(src, tgt_in);
    const auto& attention = output.attention;
    const size_t layers = attention.cross_attn.size();
    for (size_t i = 0; i < layers; ++i) {
      if (all_layers || i + 1 == layers) {
        plots.emplace_back(absl::StrCat("decoder.layers.", i, ".cross_attn"),
                           squeeze(attention.cross_attn[i]));
      }
    }
    if (all_layers) {
      for (size_t i = 0; i < attention.encoder_self_attn.size(); ++i) {
        plots.emplace_back(absl::StrCat("encoder.layers.", i, ".self_attn"),
                           squeeze(attention.encoder_self_attn[i]));
      }
      for (size_t i = 0; i < attention.decoder_self_attn.size(); ++i) {
        plots.emplace_back(absl::StrCat("decoder.layers.", i, ".self_attn"),
                           squeeze(attention.decoder_self_attn[i]));
      }
    }
  } else if (auto* rnn = dynamic_cast<nn::RnnSeq2Seq*>(&model)) {
    const nn::RnnSeq2SeqOutput output = rnn->ForwardWithAttention(src, tgt_in);
    plots.emplace_back("attention", output.attention_weights);  // [1, tgt, src] = one head
  }
  model.Train(was_training);
  return plots;
}

}  // namespace attnlab::experiments
