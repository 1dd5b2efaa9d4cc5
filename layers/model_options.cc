#include "layers/model_options.h"

#include "layers/positional/positional_encoding.h"

namespace attnlab::nn {
namespace {

// Upper bounds of the sizes that allocate memory: far beyond what CPU training can use,
// and low enough that products of them (a [max_len, d_model] table, layers x d_model x
// d_ff weights) stay well inside int64. Whether a model fits in memory is estimated when
// it is built (experiments/trainer/model_factory.cc).
constexpr double kMaxWidth = 1 << 16;        // d_model, key_size, hidden_size
constexpr double kMaxFeedForward = 1 << 20;  // d_ff
constexpr double kMaxLayers = 1024;          // encoder or decoder layers
constexpr double kMaxSequence = 1 << 20;     // max_len

}  // namespace

const OptionFields<ModelOptions>& ModelOptionFields() {
  static const auto* fields = [] {
    using M = ModelOptions;
    auto* list = new OptionFields<M>{
        StringOption("type", &M::type, "Model family.", FixedChoices({"transformer", "rnn"})),
        IntOption("d_model", &M::d_model, "Model width (Transformer) or embedding size (RNN).", 1,
                  kMaxWidth),
    };
    for (auto& field : NestedOptions(&M::attention, AttentionOptionFields())) {
      list->push_back(std::move(field));
    }
    for (auto& field : OptionFields<M>{
             IntOption("d_ff", &M::d_ff, "Feed-forward inner width.", 1, kMaxFeedForward),
             IntOption("encoder_layers", &M::encoder_layers, "Encoder layers.", 1, kMaxLayers),
             IntOption("decoder_layers", &M::decoder_layers, "Decoder layers.", 1, kMaxLayers),
             FloatOption("dropout", &M::dropout,
                         "Dropout on embeddings, sublayer outputs and feed-forward.", 0, 0.99),
             StringOption("positional", &M::positional, "Positional encoding.",
                          PositionalEncodingNames),
             IntOption("max_len", &M::max_len,
                       "Longest sequence (in tokens, with bos/eos) the positional encoding "
                       "supports; longer data is an error when it is loaded.",
                       1, kMaxSequence),
             EnumOption("norm", &M::norm,
                        {{"post", NormPosition::kPost}, {"pre", NormPosition::kPre}},
                        "Residual LayerNorm placement."),
             EnumOption(
                 "activation", &M::activation,
                 {{"relu", FeedForwardActivation::kRelu}, {"gelu", FeedForwardActivation::kGelu}},
                 "Feed-forward activation."),
             BoolOption("share_embeddings", &M::share_embeddings,
                        "One embedding table for source and target."),
             BoolOption("tie_generator", &M::tie_generator, "Generator weight = target embedding."),
             StringOption("rnn_cell", &M::rnn_cell, "RNN cell (model.type = rnn).",
                          FixedChoices({"gru", "lstm"})),
             IntOption("hidden_size", &M::hidden_size, "RNN hidden size per direction.", 1,
                       kMaxWidth),
             StringOption("attention_style", &M::attention_style,
                          "How the RNN decoder uses attention.",
                          FixedChoices({"bahdanau", "luong"})),
         }) {
      list->push_back(std::move(field));
    }
    return list;
  }();
  return *fields;
}

}  // namespace attnlab::nn
