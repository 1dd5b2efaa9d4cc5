// The trainer: the loop, evaluation, checkpoints, logs and the end-of-run artefacts.
//
//   config.toml ─► task data ─► batches ─► model ─► loss ─► backward ─► optimizer step
//      ─► metrics.jsonl / checkpoint_{last,best}.safetensors / samples.txt /
//         attention.safetensors / report.html   (all in the run directory)
#pragma once

#include <functional>
#include <map>
#include <string>

#include "absl/status/statusor.h"
#include "experiments/config/config.h"

namespace attnlab::experiments {

struct TrainOptions {
  std::string run_dir;  // created if missing
  // Continue from run_dir/checkpoint_last.safetensors. Without it, a run directory that
  // already holds a run (a checkpoint_last or a metrics.jsonl) is an error (nothing is
  // overwritten).
  bool resume = false;
  bool show_progress = true;
  // Profiles a window of training steps (the 11th to the 20th of this invocation; the
  // second half of a run shorter than 20 steps) and writes profile.txt and trace.json
  // into run_dir (framework/profiler/README.md explains them).
  bool profile = false;
  // Called after every optimizer step (tests use it to interrupt a run).
  std::function<void(int64_t step)> after_step;
};

struct TrainResult {
  std::string run_dir;
  int64_t steps = 0;
  double train_seconds = 0.0;
  bool interrupted = false;                     // Ctrl-C / SIGTERM: saved and stopped early
  std::map<std::string, double> valid_metrics;  // the last evaluation
  std::map<std::string, double> test_metrics;   // best checkpoint; beam metrics as beam_<name>
};

absl::StatusOr<TrainResult> Train(const Config& config, const TrainOptions& options);

// The run directory a config trains into by default: <runs_dir>/<experiment>/seed-<seed>,
// where <experiment> is experiment.name or the config path below experiments/ without
// its extension (experiments/copy/transformer.toml -> copy/transformer).
std::string DefaultRunDirectory(const Config& config);

}  // namespace attnlab::experiments
