// Checkpoint averaging: the element-wise mean of the parameters of k checkpoints of one
// model, e.g. the last k of a run (Vaswani et al. 2017, Sec. 6.1: "averaging the last 5
// checkpoints"; train.keep_last keeps them). `attnlab average` is this, on the command
// line.
//
// Strict: every checkpoint must have the same model — the same [model] and
// [attention.*] keys, task name and source and target vocabularies in its saved config —
// and the same tensor names, dtypes and shapes; the first difference is one error naming
// the file and the key or tensor. Training progress may differ (that is the point).
//
// The mean is accumulated in double and rounded to f32 once. A double holds the sum of a
// few f32 values exactly unless their magnitudes differ by more than about 2^29, so the
// result is the f32 rounding of the exact mean, whatever the order of the files; it costs
// 8 bytes per parameter, as Kahan summation in f32 would (sum and compensation), with
// less code and more accuracy.
// Integer tensors (none in today's models) cannot be averaged: they must be equal in every
// file and are copied.
//
// The result is a plain model checkpoint that evaluate, decode and dump load: the model's
// tensors only (optimizer state `optim.*` and EMA weights `ema.*` are dropped; they
// describe a training trajectory, not the averaged weights), with the metadata (config,
// vocabularies, progress) of the latest checkpoint — the highest step, the last given
// of equal ones, so that the order of a shell glob does not matter — and `derived_from`
// naming the inputs and their steps, which makes `train --resume` refuse it.
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "experiments/trainer/checkpoint.h"

namespace attnlab::experiments {

struct CheckpointAverage {
  NamedTensors tensors;         // the model's tensors, in the first file's order
  CheckpointContents contents;  // the latest file's metadata, derived_from set
};

// The average of the checkpoints at `paths` (at least one, each given once). A
// non-finite value in any input is an error naming the file and tensor (its average
// would not be finite).
absl::StatusOr<CheckpointAverage> AverageCheckpoints(const std::vector<std::string>& paths);

// AverageCheckpoints, written atomically to `out`, which must not be one of `paths`.
absl::StatusOr<CheckpointAverage> WriteCheckpointAverage(const std::vector<std::string>& paths,
                                                         const std::string& out);

}  // namespace attnlab::experiments
