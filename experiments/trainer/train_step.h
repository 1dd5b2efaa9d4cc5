// One training step, shared by the trainer and `attnlab profile`: the optimizer and
// learning-rate schedule a config names, and the forward + backward of an objective
// (objective.h) over the micro-batches of one optimizer step.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>

#include "absl/status/statusor.h"
#include "experiments/config/config.h"
#include "experiments/trainer/objective.h"
#include "framework/autograd/node.h"
#include "framework/optim/optimizer.h"
#include "framework/optim/schedule.h"

namespace attnlab::experiments {

// train.optimizer (sgd, adam, adamw) with its train.* settings, over `parameters`.
absl::StatusOr<std::unique_ptr<Optimizer>> MakeOptimizer(const Config& config,
                                                         const NamedTensors& parameters);
// train.schedule (inverse_sqrt, cosine, constant) for a run of `total_steps` steps. A
// cosine schedule whose warm-up does not end before the run does is a config error.
absl::StatusOr<std::unique_ptr<LearningRateSchedule>> MakeSchedule(const Config& config,
                                                                   int64_t total_steps);

// train.dtype as the matmul input precision, f32 or bf16; FailedPrecondition for bf16 on
// a CPU without native bf16 instructions. Open a MixedPrecision scope with it
// (framework/ops/mixed_precision.h) around training, evaluation and decoding.
absl::StatusOr<DType> MatmulInputDTypeOf(const Config& config);

struct StepLoss {
  double loss_sum = 0.0;  // the batches' mean losses, each times its BatchLoss::weight
  int64_t weight = 0;     // the batches' weights summed (non-pad target tokens for seq2seq)
  // False when stop_requested() ended the step between two micro-batches: the gradients
  // hold a partial sum and the step must not be taken.
  bool completed = true;
  double mean() const { return loss_sum / static_cast<double>(std::max<int64_t>(weight, 1)); }
};

// Forward and backward of the `micro_batches` batches of one optimizer step, taken from
// next_batch() in turn, or of `shard` of each of them. Gradients accumulate into the
// parameters; each micro-batch's objective.Loss() is scaled by 1/micro_batches.
// `stop_requested`, if given, is asked before each micro-batch. The backward of the last
// micro-batch calls `last_backward_hook` (if set) as each parameter's gradient becomes
// final (data-parallel training starts its all-reduce there).
StepLoss ForwardBackward(Objective& objective, int64_t micro_batches,
                         const std::function<std::vector<int64_t>()>& next_batch,
                         const StopRequestedFn& stop_requested = nullptr,
                         const BatchShard& shard = BatchShard(),
                         const autograd::GradientReadyHook& last_backward_hook = nullptr);

}  // namespace attnlab::experiments
