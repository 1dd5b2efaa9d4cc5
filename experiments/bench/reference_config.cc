#include "experiments/bench/reference_config.h"

#include "absl/strings/str_cat.h"

namespace attnlab::experiments {

const std::vector<ReferenceConfig>& ReferenceConfigs() {
  // name, d_model, heads, d_ff, encoder + decoder layers, vocab, batch, length
  static const std::vector<ReferenceConfig>* configs = new std::vector<ReferenceConfig>{
      {"tiny", 128, 4, 512, 2, 2, 32, 64, 24},
      {"small", 256, 4, 1024, 3, 3, 64, 64, 32},
      {"base", 512, 8, 2048, 6, 6, 8000, 32, 64},
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
