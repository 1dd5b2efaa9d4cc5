// Checkpoints: one safetensors file holding the model's parameters (dotted names), the
// optimizer's state (`optim.*`), the exponential moving average of the parameters when
// train.ema_decay is on (`ema.<parameter name>`), and in its metadata the format version,
// the resolved config, the vocabularies, the training progress and the dropout stream's
// state.
// Written atomically (framework/io/safetensors.h): an interrupted write leaves the
// previous checkpoint intact. A model with a NaN or infinite parameter is never written,
// so every checkpoint on disk is one to go back to. Loading is strict and lists every
// problem.
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "framework/io/safetensors.h"
#include "framework/optim/optimizer.h"
#include "framework/random/generator.h"
#include "layers/module.h"

namespace attnlab::experiments {

inline constexpr const char* kCheckpointFormatVersion = "1";

// Name prefixes of the training state beside the model's own tensors: the optimizer's
// (framework/optim/optimizer.h) and the weights' moving average (train.ema_decay).
inline constexpr char kOptimizerStatePrefix[] = "optim.";
inline constexpr char kEmaPrefix[] = "ema.";
// Whether a checkpoint tensor is training state (optimizer, EMA) rather than the model's.
bool IsTrainingState(const std::string& tensor_name);

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
  // train.ema_decay: updates of the moving average so far (its bias correction uses them).
  int64_t ema_updates = 0;
};

struct CheckpointContents {
  std::string config_toml;
  std::vector<std::string> source_vocabulary, target_vocabulary;
  TrainingProgress progress;
  GeneratorState generator_state;
  // The moving average of the parameters (train.ema_decay), named as the parameters;
  // stored as `ema.<name>`. Empty when the run keeps none.
  NamedTensors ema_weights;
  // Set when the parameters are derived from trained ones rather than being a training
  // state, e.g. "the average of 3 checkpoints: ..." (attnlab average) or the EMA weights
  // of checkpoint_ema: such a file has no optimizer state and --resume refuses it.
  std::string derived_from;
};

// DataLoss (and nothing written) if a parameter of `model` is not finite.
absl::Status SaveCheckpoint(const std::string& path, const nn::Module& model, Optimizer* optimizer,
                            const CheckpointContents& contents);

// "" if every f32 parameter and buffer of `model` is finite, else what is not, e.g.
// "12 non-finite weights (NaN or inf) in 2 of 16 tensors: encoder.layers.0.fc1.weight
// (11 of 4096), generator.bias (1 of 32)" (the first three tensors named).
std::string DescribeNonFiniteParameters(const nn::Module& model);

// Writes `tensors` as they are, with `contents`' metadata (its ema_weights are not
// written): a checkpoint that is no module's state, e.g. an average of checkpoints.
absl::Status WriteCheckpointFile(const std::string& path, const NamedTensors& tensors,
                                 const CheckpointContents& contents);

// Reads the metadata (config, vocabularies, progress) without touching a model.
absl::StatusOr<CheckpointContents> ReadCheckpointMetadata(const std::string& path);
// The same for a file already read (`path` names it in errors).
absl::StatusOr<CheckpointContents> CheckpointMetadataOf(const SafetensorsContents& file,
                                                        const std::string& path);

// Loads parameters (and, if `optimizer` is given, its state) strictly into `model`; the
// EMA weights, if the file has them, are returned in ema_weights.
absl::StatusOr<CheckpointContents> LoadCheckpoint(const std::string& path, nn::Module& model,
                                                  Optimizer* optimizer);

}  // namespace attnlab::experiments
