// Checkpoints: one safetensors file holding the model's parameters (dotted names), the
// optimizer's state (`optim.*`), and in its metadata the format version, the resolved
// config, the vocabularies, the training progress and the dropout stream's state.
// Written atomically (framework/io/safetensors.h): an interrupted write leaves the
// previous checkpoint intact. A model with a NaN or infinite parameter is never written,
// so every checkpoint on disk is one to go back to. Loading is strict and lists every
// problem.
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "framework/optim/optimizer.h"
#include "framework/random/generator.h"
#include "layers/module.h"

namespace attnlab::experiments {

inline constexpr const char* kCheckpointFormatVersion = "1";

// Where a run is, so that --resume continues exactly where it stopped.
struct TrainingProgress {
  int64_t step = 0;            // optimizer steps done
  int64_t epoch = 0;           // epochs started (the current epoch's index)
  int64_t batch_in_epoch = 0;  // batches of the current epoch consumed
  double best_metric = 0.0;
  int64_t best_step = -1;  // -1: no evaluation yet
  int64_t evaluations_without_improvement = 0;
  double elapsed_seconds = 0.0;  // training wall time so far
  // The current log window (the steps since the last `train` record): target-token-
  // weighted loss sum, tokens, and elapsed_seconds at its start. Kept so that a run
  // resumed between two log steps writes the record the uninterrupted run would have.
  double window_loss = 0.0;
  int64_t window_tokens = 0;
  double window_start_seconds = 0.0;
  // The step's validation was interrupted (Ctrl-C): a resumed run does it first.
  bool evaluation_pending = false;
  int64_t consecutive_skipped_steps = 0;  // train.nan_policy = "skip"
};

struct CheckpointContents {
  std::string config_toml;
  std::vector<std::string> source_vocabulary, target_vocabulary;
  TrainingProgress progress;
  GeneratorState generator_state;
};

// DataLoss (and nothing written) if a parameter of `model` is not finite.
absl::Status SaveCheckpoint(const std::string& path, const nn::Module& model, Optimizer* optimizer,
                            const CheckpointContents& contents);

// "" if every f32 parameter and buffer of `model` is finite, else what is not, e.g.
// "12 non-finite weights (NaN or inf) in 2 of 16 tensors: encoder.layers.0.fc1.weight
// (11 of 4096), generator.bias (1 of 32)" (the first three tensors named).
std::string DescribeNonFiniteParameters(const nn::Module& model);

// Reads the metadata (config, vocabularies, progress) without touching a model.
absl::StatusOr<CheckpointContents> ReadCheckpointMetadata(const std::string& path);

// Loads parameters (and, if `optimizer` is given, its state) strictly into `model`.
absl::StatusOr<CheckpointContents> LoadCheckpoint(const std::string& path, nn::Module& model,
                                                  Optimizer* optimizer);

}  // namespace attnlab::experiments
