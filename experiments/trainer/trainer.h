// The trainer: the loop, evaluation, checkpoints, logs and the end-of-run artefacts, for
// any model and task that implement an Objective (objective.h).
//
//   config.toml ─► objective (data, model) ─► batches ─► loss ─► backward ─► optimizer step
//      ─► metrics.jsonl / checkpoint_{last,best}.safetensors (with train.keep_last also
//         checkpoint_step_<N>, with train.ema_decay checkpoint_ema) / the objective's files
//         (seq2seq: samples.txt, attention.safetensors) / report.html / result.json
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>

#include "absl/status/statusor.h"
#include "experiments/config/config.h"
#include "framework/distributed/communicator.h"

namespace attnlab::experiments {

struct RunOptions {
  std::string run_dir;  // created if missing
  // Continue from run_dir/checkpoint_last.safetensors (refused if the config changes a
  // key that fixes the data, the model's shapes or the batches; a finished run is
  // returned as already_finished). Without it, a run directory that already holds a run
  // (a checkpoint_last or a metrics.jsonl) is an error (nothing is overwritten). Either
  // way the run directory is locked for the whole call (run_directory_lock.h) and stale
  // temporary files of killed processes are removed from it.
  bool resume = false;
  bool show_progress = true;
  // Profiles a window of training steps (the 11th to the 20th of this invocation; the
  // second half of a run shorter than 20 steps) and writes profile.txt and trace.json
  // into run_dir (framework/profiler/README.md explains them).
  bool profile = false;
  // Called after every optimizer step.
  std::function<void(int64_t step)> after_step;
  // If > 0: stop as a stop request would (checkpoint saved, resumable) once this step is
  // done, e.g. to fit a job into a scheduler's time slot and resume it in the next one
  // (perhaps on another number of ranks).
  int64_t stop_at_step = 0;
  // The job's ranks for data-parallel training (mpirun -np N; data_parallel.h), or null
  // for one process. Rank 0 alone locks and writes the run directory; every rank reads
  // it when resuming, so with several machines it must be on a shared file system.
  distributed::Communicator* communicator = nullptr;
  // Asked before every step and micro-batch and between evaluation batches; true stops
  // the run (saved, resumable). With several ranks it is asked once per step, and the
  // ranks stop together if any of them is asked to. The default reads the process's stop request
  // (Ctrl-C, SIGTERM, SIGHUP; framework/core/stop_request.h); tests stop at a chosen point.
  std::function<bool()> stop_requested;
};

struct TrainResult {
  std::string run_dir;
  int64_t steps = 0;
  double train_seconds = 0.0;
  // A stop request (framework/core/stop_request.h: Ctrl-C, SIGTERM, SIGHUP) ended the
  // run early: checkpoint_last holds step `steps`, the last completed one (a step cut
  // between micro-batches is dropped whole), and --resume continues bit-identically.
  bool interrupted = false;
  // RunOptions::stop_at_step ended it (interrupted is then true as well).
  bool stopped_at_step = false;
  bool already_finished = false;                // --resume of a run with a result.json
  std::map<std::string, double> valid_metrics;  // the last evaluation
  std::map<std::string, double> test_metrics;   // best checkpoint; beam metrics as beam_<name>
};

absl::StatusOr<TrainResult> Train(const Config& config, const RunOptions& options);

// The run directory a config trains into by default: <runs_dir>/<experiment>/seed-<seed>,
// where <experiment> is experiment.name or the config path below experiments/recipes/
// (or experiments/) without its extension (experiments/recipes/copy/transformer.toml ->
// copy/transformer).
std::string DefaultRunDirectory(const Config& config);

}  // namespace attnlab::experiments
