// train.keep_last = K: besides checkpoint_last, a run keeps the checkpoints of its last K
// periodic saves as checkpoint_step_<N>.safetensors (N the step, in decimal), the inputs
// of `attnlab average` (the last-k checkpoint average of "Attention Is All You Need").
//
// After the save at step N the run directory holds the step checkpoints of the K latest
// saves up to N, and none after N (those belong to a trajectory the run no longer
// follows, e.g. written by an interrupted run just before its checkpoint_last). A resumed
// run therefore ends with the files an uninterrupted one would have.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace attnlab::experiments {

// "checkpoint_step_<step>.safetensors".
std::string StepCheckpointName(int64_t step);

// The steps of the step checkpoints in `run_dir`, ascending (other files are ignored).
absl::StatusOr<std::vector<int64_t>> StepCheckpointSteps(const std::string& run_dir);

// Removes the step checkpoints of `run_dir` other than the `keep` latest at or before
// `step`; those after `step` go too.
absl::Status PruneStepCheckpoints(const std::string& run_dir, int64_t step, int64_t keep);

}  // namespace attnlab::experiments
