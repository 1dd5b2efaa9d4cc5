#include "experiments/trainer/train_step.h"

#include "absl/strings/str_cat.h"
#include "framework/ops/mixed_precision.h"
#include "framework/ops/ops.h"
#include "framework/optim/adam.h"
#include "framework/optim/sgd.h"
#include "framework/profiler/profiler.h"

namespace attnlab::experiments {

absl::StatusOr<std::unique_ptr<Optimizer>> MakeOptimizer(const Config& config,
                                                         const NamedTensors& parameters) {
  const std::string& name = config.train().optimizer;
  if (name == "sgd") {
    SgdOptions options;
    options.momentum = config.train().momentum;
    options.weight_decay = config.train().weight_decay;
    return std::unique_ptr<Optimizer>(new Sgd(parameters, options));
  }
  AdamOptions options;
  options.beta1 = config.train().beta1;
  options.beta2 = config.train().beta2;
  options.epsilon = config.train().eps;
  options.weight_decay = config.train().weight_decay;
  options.decoupled_weight_decay = name == "adamw";
  return std::unique_ptr<Optimizer>(new Adam(parameters, options));
}

absl::StatusOr<std::unique_ptr<LearningRateSchedule>> MakeSchedule(const Config& config,
                                                                   int64_t total_steps) {
  const std::string& name = config.train().schedule;
  const double lr = config.train().lr;
  const int64_t warmup = config.train().warmup_steps;
  if (name == "inverse_sqrt") {
    return std::make_unique<InverseSqrtWarmup>(config.model().d_model, std::max<int64_t>(warmup, 1),
                                               lr);
  }
  if (name == "cosine") {
    if (warmup >= total_steps) {
      return absl::InvalidArgumentError(absl::StrCat(
          "train.warmup_steps (", warmup, ") must be less than the run's ", total_steps,
          " steps (train.max_steps, or train.epochs x batches) for the cosine schedule"));
    }
    return std::make_unique<LinearWarmupCosine>(lr, warmup, total_steps, config.train().min_lr);
  }
  return std::make_unique<Constant>(lr);
}

absl::StatusOr<DType> MatmulInputDTypeOf(const Config& config) {
  const DType dtype = config.train().dtype == "bf16" ? DType::kBF16 : DType::kF32;
  if (const absl::Status usable = CheckMatmulInputDType(dtype); !usable.ok()) {
    return absl::Status(usable.code(), absl::StrCat("train.dtype: ", usable.message()));
  }
  return dtype;
}

StepLoss ForwardBackward(Objective& objective, int64_t micro_batches,
                         const std::function<std::vector<int64_t>()>& next_batch,
                         const StopRequestedFn& stop_requested, const BatchShard& shard,
                         const autograd::GradientReadyHook& last_backward_hook) {
  StepLoss step;
  for (int64_t micro = 0; micro < micro_batches; ++micro) {
    if (stop_requested && stop_requested()) {
      step.completed = false;
      return step;
    }
    BatchLoss batch;
    {
      profiler::MarkerScope profile("forward");
      batch = objective.Loss(next_batch(), shard);
    }
    step.loss_sum += static_cast<double>(batch.loss.item()) * static_cast<double>(batch.weight);
    step.weight += batch.weight;
    if (!batch.loss.requires_grad()) continue;  // a shard with no rows
    const Tensor loss = micro_batches > 1
                            ? MulScalar(batch.loss, 1.0f / static_cast<float>(micro_batches))
                            : batch.loss;
    if (micro + 1 == micro_batches && last_backward_hook) {
      autograd::RunBackward(loss, Tensor::Scalar(1.0f), last_backward_hook);
    } else {
      loss.backward();
    }
  }
  return step;
}

}  // namespace attnlab::experiments
