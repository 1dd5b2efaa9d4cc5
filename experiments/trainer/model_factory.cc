#include "experiments/trainer/model_factory.h"

#include "absl/strings/str_cat.h"
#include "framework/autograd/grad_mode.h"
#include "framework/ops/ops.h"
#include "layers/rnn/rnn_seq2seq.h"
#include "layers/transformer/transformer.h"

namespace attnlab::experiments {

absl::StatusOr<std::shared_ptr<nn::Seq2SeqModel>> BuildModel(const Config& config,
                                                             int64_t source_vocab_size,
                                                             int64_t target_vocab_size) {
  const uint64_t seed = static_cast<uint64_t>(config.GetInt("experiment.seed"));
  const std::string& type = config.GetString("model.type");
  if (type == "transformer") {
    nn::TransformerOptions options;
    options.src_vocab = source_vocab_size;
    options.tgt_vocab = target_vocab_size;
    options.d_model = config.GetInt("model.d_model");
    options.num_heads = config.GetInt("model.heads");
    options.head_dim = config.GetInt("model.key_size");
    options.d_ff = config.GetInt("model.d_ff");
    options.encoder_layers = config.GetInt("model.encoder_layers");
    options.decoder_layers = config.GetInt("model.decoder_layers");
    options.dropout = static_cast<float>(config.GetFloat("model.dropout"));
    options.attention_dropout = static_cast<float>(config.GetFloat("model.attention_dropout"));
    options.attention = config.GetString("model.attention");
    options.positional = config.GetString("model.positional");
    options.max_len = config.GetInt("model.max_len");
    options.norm_position =
        config.GetString("model.norm") == "pre" ? nn::NormPosition::kPre : nn::NormPosition::kPost;
    options.activation = config.GetString("model.activation") == "gelu"
                             ? nn::FeedForwardActivation::kGelu
                             : nn::FeedForwardActivation::kRelu;
    options.share_embeddings = config.GetBool("model.share_embeddings");
    options.tie_generator = config.GetBool("model.tie_generator");
    auto model = nn::Transformer::Create(options, seed);
    if (!model.ok()) return model.status();
    return std::shared_ptr<nn::Seq2SeqModel>(*model);
  }
  nn::RnnSeq2SeqOptions options;
  options.source_vocab_size = source_vocab_size;
  options.target_vocab_size = target_vocab_size;
  options.embedding_dim = config.GetInt("model.d_model");
  options.hidden_size = config.GetInt("model.hidden_size");
  options.cell = config.GetString("model.rnn_cell");
  options.attention = config.GetString("model.attention");
  options.attention_style = config.GetString("model.attention_style");
  options.dropout = static_cast<float>(config.GetFloat("model.dropout"));
  auto model = nn::RnnSeq2Seq::Create(options, seed);
  if (!model.ok()) return model.status();
  return std::shared_ptr<nn::Seq2SeqModel>(*model);
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
