// The seed-pooling experiment (task.name = "seed_pooling"): can an attention-pooling
// layer recover a hidden teacher's attention from its outputs alone?
//
// A fixed teacher AttentionPooling (layers/attention_pooling.h; seeded by task.seed + 1,
// its scores multiplied by task.teacher_sharpness, scoring task.teacher_score) maps
// random inputs x [N, 10, 10] (standard normal, from task.seed) to targets
// teacher(x).pooled [N, 10]. A student AttentionPooling scoring model.attention
// ("additive" or "dot"; seeded by experiment.seed) is trained on the mean squared error
// to those targets with Adam (PyTorch's defaults: betas 0.9 and 0.999, epsilon 1e-8, no
// weight decay) at the constant rate train.lr, on minibatches of train.max_batch_size
// drawn without replacement (reshuffled each epoch).
//
// It trains through the trainer (experiments/trainer/trainer.h) like every model, so it
// has checkpoints, --resume, Ctrl-C, metrics.jsonl, the report and result.json. Metrics
// (validation and test): mse, and weight_difference, the mean over inputs and time steps
// of |student weight - teacher weight|; the test record adds both before training
// (initial_mse, initial_weight_difference). The train, test and validation inputs are
// drawn in that order from one stream, so task.valid_size does not change the others.
//
// The student sees only pooled outputs, never the weights, so a low output loss with a
// high weight difference means it found another weighting that pools to the same
// vectors; a student with the teacher's scoring can match it exactly, one with the
// other scoring only approximately.
#pragma once

#include <memory>

#include "absl/status/statusor.h"
#include "experiments/config/config.h"
#include "experiments/trainer/checkpoint.h"
#include "experiments/trainer/objective.h"

namespace attnlab::experiments {

// Registered for task.name = "seed_pooling" (objective.h). A model.attention other than
// "additive" or "dot", or a train.max_batch_size above task.train_size, is an
// InvalidArgument naming the key and where it was set.
absl::StatusOr<std::unique_ptr<Objective>> MakeSeedPoolingObjective(
    const Config& config, const CheckpointContents* resumed);

}  // namespace attnlab::experiments
