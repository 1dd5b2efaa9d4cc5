#include "framework/optim/adam.h"

#include <cmath>
#include <utility>

namespace attnlab {
namespace {

// PyTorch's CPU lerp: start + weight * (end - start), rearranged for weights >= 0.5 so
// that weight 1 gives exactly `end`.
inline float Lerp(float start, float end, float weight) {
  return std::abs(weight) < 0.5f ? start + weight * (end - start)
                                 : end - (end - start) * (1.0f - weight);
}

}  // namespace

Adam::Adam(NamedTensors parameters, const AdamOptions& options)
    : Optimizer(std::move(parameters), {"exp_avg", "exp_avg_sq"}), options_(options) {
  ATTNLAB_CHECK(options.beta1 >= 0.0 && options.beta1 < 1.0, "Adam: invalid beta1 ", options.beta1,
                " (need 0 <= beta1 < 1)");
  ATTNLAB_CHECK(options.beta2 >= 0.0 && options.beta2 < 1.0, "Adam: invalid beta2 ", options.beta2,
                " (need 0 <= beta2 < 1)");
  ATTNLAB_CHECK(options.epsilon >= 0.0, "Adam: invalid epsilon ", options.epsilon);
  ATTNLAB_CHECK(options.weight_decay >= 0.0 && std::isfinite(options.weight_decay),
                "Adam: invalid weight_decay ", options.weight_decay);
  coefficients_.assign(parameter_count(), Coefficients{});
}

void Adam::PrepareParameter(size_t index, int64_t step, double learning_rate) {
  // As torch.optim.adam._single_tensor_adam: Python floats (double), then float kernels.
  const double bias_correction1 = 1.0 - std::pow(options_.beta1, static_cast<double>(step));
  const double bias_correction2 = 1.0 - std::pow(options_.beta2, static_cast<double>(step));
  Coefficients& c = coefficients_[index];
  c.step_size = static_cast<float>(learning_rate / bias_correction1);
  c.bias_correction2_sqrt = static_cast<float>(std::sqrt(bias_correction2));
  c.decay_factor = static_cast<float>(1.0 - learning_rate * options_.weight_decay);
}

void Adam::UpdateRange(size_t index, int64_t begin, int64_t end, const float* gradient) {
  // Restrict: the four arrays never overlap, and saying so lets GCC vectorise the loop.
  float* __restrict param = parameter_data(index);
  float* __restrict exp_avg = moment(0, index);
  float* __restrict exp_avg_sq = moment(1, index);
  const float* __restrict grad = gradient;
  const Coefficients c = coefficients_[index];
  const float beta1_complement = static_cast<float>(1.0 - options_.beta1);
  const float beta2 = static_cast<float>(options_.beta2);
  const float beta2_complement = static_cast<float>(1.0 - options_.beta2);
  const float epsilon = static_cast<float>(options_.epsilon);
  const float weight_decay = static_cast<float>(options_.weight_decay);
  const bool decoupled = options_.decoupled_weight_decay && options_.weight_decay != 0.0;
  const bool l2 = !options_.decoupled_weight_decay && options_.weight_decay != 0.0;
  for (int64_t i = begin; i < end; ++i) {
    if (decoupled) param[i] *= c.decay_factor;
    const float g = l2 ? grad[i] + weight_decay * param[i] : grad[i];
    exp_avg[i] = Lerp(exp_avg[i], g, beta1_complement);
    exp_avg_sq[i] = exp_avg_sq[i] * beta2 + beta2_complement * (g * g);
    const float denom = std::sqrt(exp_avg_sq[i]) / c.bias_correction2_sqrt + epsilon;
    param[i] = param[i] + (-c.step_size) * (exp_avg[i] / denom);
  }
}

}  // namespace attnlab
