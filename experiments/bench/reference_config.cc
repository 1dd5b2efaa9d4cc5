#include "experiments/bench/reference_config.h"

#include "absl/strings/str_cat.h"

namespace attnlab::experiments {

nn::ModelOptions ReferenceModel(int64_t d_model, int64_t heads, int64_t d_ff, int64_t layers) {
  nn::ModelOptions model;
  model.type = "transformer";
  model.d_model = d_model;
  model.attention.variant = "scaled_dot";
  model.attention.heads = heads;
  model.attention.dropout = 0.1;
  model.d_ff = d_ff;
  model.encoder_layers = layers;
  model.decoder_layers = layers;
  model.dropout = 0.1;
  model.positional = "sinusoidal";
  model.max_len = 512;
  model.norm = nn::NormPosition::kPost;
  model.activation = nn::FeedForwardActivation::kRelu;
  return model;
}

const std::vector<ReferenceConfig>& ReferenceConfigs() {
  // name, model (d_model, heads, d_ff, encoder = decoder layers), vocab, batch, length
  static const std::vector<ReferenceConfig>* configs = new std::vector<ReferenceConfig>{
      {"tiny", ReferenceModel(128, 4, 512, 2), 32, 64, 24},
      {"small", ReferenceModel(256, 4, 1024, 3), 64, 64, 32},
      {"base", ReferenceModel(512, 8, 2048, 6), 8000, 32, 64},
  };
  return *configs;
}

absl::StatusOr<ReferenceConfig> FindReferenceConfig(const std::string& name) {
  for (const ReferenceConfig& config : ReferenceConfigs()) {
    if (config.name == name) return config;
  }
  return absl::NotFoundError(absl::StrCat("unknown model '", name,
                                          "'; the reference configurations are tiny, small, base"));
}

}  // namespace attnlab::experiments
