// The reference benchmark configurations of ../shared/DESIGN.md ("Reference benchmark
// configurations"): post-LN encoder-decoder Transformers with sinusoidal positions, a ReLU
// feed-forward, dropout 0.1 and label smoothing 0.1, trained with Adam on random tokens.
// `attnlab bench` and tools/compare_pytorch.py use exactly these shapes.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "layers/model_options.h"

namespace attnlab::experiments {

struct ReferenceConfig {
  std::string name;
  // The model, as a config's [model] table: post-LN, sinusoidal positions (512 of them),
  // ReLU, scaled_dot attention, dropout 0.1 everywhere.
  nn::ModelOptions model;
  int64_t vocab = 0;   // source and target vocabularies (separate tables)
  int64_t batch = 0;   // sentences per training step
  int64_t length = 0;  // source length = target length
};

// A reference model of these sizes (the other settings as above).
nn::ModelOptions ReferenceModel(int64_t d_model, int64_t heads, int64_t d_ff, int64_t layers);

// tiny, small, base, in that order.
const std::vector<ReferenceConfig>& ReferenceConfigs();

// The configuration called `name`; NotFound names the known ones.
absl::StatusOr<ReferenceConfig> FindReferenceConfig(const std::string& name);

}  // namespace attnlab::experiments
