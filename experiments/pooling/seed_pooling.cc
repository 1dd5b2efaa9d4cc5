#include "experiments/pooling/seed_pooling.h"

#include <cmath>
#include <numeric>
#include <span>
#include <utility>

#include "absl/strings/str_cat.h"
#include "experiments/tasks/generation.h"
#include "framework/autograd/grad_mode.h"
#include "framework/ops/ops.h"
#include "framework/optim/adam.h"
#include "framework/random/generator.h"
#include "layers/attention_pooling.h"

namespace attnlab::experiments {
namespace {

absl::Status CheckOptions(const PoolingOptions& options) {
  auto positive = [](int64_t value, const char* name) -> absl::Status {
    if (value > 0) return absl::OkStatus();
    return absl::InvalidArgumentError(
        absl::StrCat("seed pooling: ", name, " = ", value, " must be positive"));
  };
  RETURN_IF_ERROR(positive(options.time_steps, "time_steps"));
  RETURN_IF_ERROR(positive(options.dim, "dim"));
  RETURN_IF_ERROR(positive(options.train_size, "train_size"));
  RETURN_IF_ERROR(positive(options.test_size, "test_size"));
  RETURN_IF_ERROR(positive(options.batch_size, "batch_size"));
  if (options.steps < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("seed pooling: steps = ", options.steps, " must not be negative"));
  }
  if (options.batch_size > options.train_size) {
    return absl::InvalidArgumentError(absl::StrCat("seed pooling: batch_size ", options.batch_size,
                                                   " exceeds train_size ", options.train_size));
  }
  if (!(options.learning_rate > 0) || !std::isfinite(options.learning_rate)) {
    return absl::InvalidArgumentError(
        absl::StrCat("seed pooling: learning_rate = ", options.learning_rate, " must be positive"));
  }
  if (!(options.teacher_sharpness > 0) || !std::isfinite(options.teacher_sharpness)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "seed pooling: teacher_sharpness = ", options.teacher_sharpness, " must be positive"));
  }
  return absl::OkStatus();
}

// Scales the teacher's last score parameter (v or q) in place; its scores scale with it.
void Sharpen(nn::AttentionPooling& teacher, float factor) {
  NoGradGuard no_grad;
  for (auto& [name, parameter] : teacher.NamedParameters()) {
    if (name != "score_vector" && name != "query") continue;
    float* data = parameter.data<float>();
    for (int64_t i = 0; i < parameter.numel(); ++i) data[i] *= factor;
  }
}

double Mse(const nn::AttentionPooling& model, const Tensor& inputs, const Tensor& targets) {
  NoGradGuard no_grad;
  return MseLoss(model.Forward(inputs).pooled, targets).item();
}

double MeanWeightDifference(const nn::AttentionPooling& student,
                            const nn::AttentionPooling& teacher, const Tensor& inputs) {
  NoGradGuard no_grad;
  const std::vector<float> student_weights = student.Forward(inputs).weights.ToFloats();
  const std::vector<float> teacher_weights = teacher.Forward(inputs).weights.ToFloats();
  double total = 0.0;
  for (size_t i = 0; i < student_weights.size(); ++i) {
    total += std::abs(static_cast<double>(student_weights[i]) - teacher_weights[i]);
  }
  return total / static_cast<double>(student_weights.size());
}

}  // namespace

absl::StatusOr<PoolingResult> RunSeedPooling(const PoolingOptions& options) {
  RETURN_IF_ERROR(CheckOptions(options));
  ASSIGN_OR_RETURN(const nn::PoolingScore student_score,
                   nn::ParsePoolingScore(options.student_score));
  ASSIGN_OR_RETURN(const nn::PoolingScore teacher_score,
                   nn::ParsePoolingScore(options.teacher_score));

  // Inputs [N, time, dim] ~ N(0, 1), the test inputs drawn after the training inputs
  // from the same stream: both are fixed by data_seed and the sizes.
  Generator data_generator(options.data_seed);
  const Tensor train_inputs = RandomNormal({options.train_size, options.time_steps, options.dim},
                                           0.0f, 1.0f, data_generator);
  const Tensor test_inputs = RandomNormal({options.test_size, options.time_steps, options.dim},
                                          0.0f, 1.0f, data_generator);

  Generator teacher_generator(options.teacher_seed);
  nn::AttentionPooling teacher(options.dim, teacher_score, teacher_generator);
  Sharpen(teacher, static_cast<float>(options.teacher_sharpness));
  teacher.Eval();
  Tensor train_targets, test_targets;  // [N, dim]
  {
    NoGradGuard no_grad;
    train_targets = teacher.Forward(train_inputs).pooled;
    test_targets = teacher.Forward(test_inputs).pooled;
  }

  Generator student_generator(options.student_seed);
  nn::AttentionPooling student(options.dim, student_score, student_generator);
  AdamOptions adam_options;  // PyTorch's defaults: betas (0.9, 0.999), eps 1e-8
  Adam optimizer(student.NamedParameters(), adam_options);

  PoolingResult result;
  result.initial_train_loss = Mse(student, train_inputs, train_targets);
  result.initial_test_loss = Mse(student, test_inputs, test_targets);
  result.initial_weight_difference = MeanWeightDifference(student, teacher, test_inputs);

  // Minibatches without replacement: walk a permutation, reshuffled (Fisher-Yates, from
  // the data seed) whenever the rest of it cannot fill a batch.
  TaskRandom order_random(options.data_seed);
  std::vector<int32_t> order(options.train_size);
  std::iota(order.begin(), order.end(), 0);
  int64_t position = options.train_size;  // forces a shuffle before the first batch
  result.step_losses.reserve(options.steps);
  for (int64_t step = 1; step <= options.steps; ++step) {
    if (position + options.batch_size > options.train_size) {
      for (int64_t i = options.train_size - 1; i > 0; --i) {
        std::swap(order[i], order[order_random.Uniform(0, i)]);
      }
      position = 0;
    }
    const Tensor batch_indices =
        Tensor::FromInts(std::span<const int32_t>(order.data() + position, options.batch_size),
                         {options.batch_size});
    position += options.batch_size;
    const Tensor batch_inputs = IndexSelect(train_inputs, 0, batch_indices);
    const Tensor batch_targets = IndexSelect(train_targets, 0, batch_indices);

    optimizer.ZeroGrad();
    const Tensor loss = MseLoss(student.Forward(batch_inputs).pooled, batch_targets);
    const double loss_value = loss.item();
    if (!std::isfinite(loss_value)) {
      return absl::FailedPreconditionError(
          absl::StrCat("seed pooling: the loss is ", loss_value, " at step ", step,
                       "; lower learning_rate (", options.learning_rate, ")"));
    }
    result.step_losses.push_back(loss_value);
    loss.backward();
    optimizer.Step(options.learning_rate);
  }

  result.final_train_loss = Mse(student, train_inputs, train_targets);
  result.final_test_loss = Mse(student, test_inputs, test_targets);
  result.final_weight_difference = MeanWeightDifference(student, teacher, test_inputs);
  return result;
}

}  // namespace attnlab::experiments
