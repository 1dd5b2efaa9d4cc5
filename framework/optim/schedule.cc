#include "framework/optim/schedule.h"

#include <algorithm>
#include <cmath>
#include <numbers>

#include "framework/core/error.h"

namespace attnlab {
namespace {

void CheckStep(int64_t step, const char* schedule) {
  ATTNLAB_CHECK(step >= 1, schedule, "::Rate: steps count from 1, got ", step);
}

}  // namespace

InverseSqrtWarmup::InverseSqrtWarmup(int64_t d_model, int64_t warmup_steps, double factor)
    : d_model_(d_model), warmup_steps_(warmup_steps), factor_(factor) {
  ATTNLAB_CHECK(d_model > 0, "InverseSqrtWarmup: d_model must be positive, got ", d_model);
  ATTNLAB_CHECK(warmup_steps > 0, "InverseSqrtWarmup: warmup_steps must be positive, got ",
                warmup_steps);
  ATTNLAB_CHECK(factor >= 0.0, "InverseSqrtWarmup: factor must be non-negative, got ", factor);
}

double InverseSqrtWarmup::Rate(int64_t step) const {
  CheckStep(step, "InverseSqrtWarmup");
  const double s = static_cast<double>(step);
  const double warmup = static_cast<double>(warmup_steps_);
  return factor_ / std::sqrt(static_cast<double>(d_model_)) *
         std::min(1.0 / std::sqrt(s), s / (warmup * std::sqrt(warmup)));
}

LinearWarmupCosine::LinearWarmupCosine(double peak, int64_t warmup_steps, int64_t total_steps,
                                       double min_rate)
    : peak_(peak), warmup_steps_(warmup_steps), total_steps_(total_steps), min_rate_(min_rate) {
  ATTNLAB_CHECK(peak >= 0.0, "LinearWarmupCosine: peak must be non-negative, got ", peak);
  ATTNLAB_CHECK(min_rate >= 0.0 && min_rate <= peak, "LinearWarmupCosine: min_rate ", min_rate,
                " must be in [0, peak = ", peak, "]");
  ATTNLAB_CHECK(warmup_steps >= 0, "LinearWarmupCosine: negative warmup_steps ", warmup_steps);
  ATTNLAB_CHECK(total_steps > warmup_steps, "LinearWarmupCosine: total_steps ", total_steps,
                " must exceed warmup_steps ", warmup_steps);
}

double LinearWarmupCosine::Rate(int64_t step) const {
  CheckStep(step, "LinearWarmupCosine");
  if (step <= warmup_steps_) {
    return peak_ * static_cast<double>(step) / static_cast<double>(warmup_steps_);
  }
  if (step >= total_steps_) return min_rate_;
  const double progress =
      static_cast<double>(step - warmup_steps_) / static_cast<double>(total_steps_ - warmup_steps_);
  return min_rate_ + (peak_ - min_rate_) * 0.5 * (1.0 + std::cos(std::numbers::pi * progress));
}

Constant::Constant(double rate) : rate_(rate) {
  ATTNLAB_CHECK(rate >= 0.0, "Constant: rate must be non-negative, got ", rate);
}

double Constant::Rate(int64_t step) const {
  CheckStep(step, "Constant");
  return rate_;
}

}  // namespace attnlab
