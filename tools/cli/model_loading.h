// Shared by the commands that use a trained checkpoint: rebuilds the config, the task
// data (with the checkpoint's vocabularies) and the model, and loads the weights.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "experiments/config/config.h"
#include "experiments/trainer/experiment_data.h"
#include "experiments/trainer/objective.h"
#include "layers/decoding/seq2seq_model.h"

namespace attnlab::cli {

struct LoadedModel {
  experiments::Config config;
  experiments::ExperimentData data;
  std::shared_ptr<nn::Seq2SeqModel> model;
};

// `overrides` apply on top of the checkpoint's saved config (e.g. data paths). A
// checkpoint with non-finite weights is an error naming the tensors that hold them; one of
// a task with an objective of its own (not a sequence-to-sequence model) is a
// FailedPrecondition.
absl::StatusOr<LoadedModel> LoadTrainedModel(const std::string& checkpoint_path,
                                             const std::vector<std::string>& overrides);

// Any checkpoint, as the trainer's objective (experiments/trainer/objective.h) with the
// checkpoint's weights, in evaluation mode.
struct LoadedObjective {
  experiments::Config config;
  std::unique_ptr<experiments::Objective> objective;
};
absl::StatusOr<LoadedObjective> LoadTrainedObjective(const std::string& checkpoint_path,
                                                     const std::vector<std::string>& overrides);

}  // namespace attnlab::cli
