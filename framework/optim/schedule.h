// Learning-rate schedules: the rate for optimizer step `step`, counted from 1 (the
// first Step() uses Rate(1)), as the Transformer paper counts step_num.
#pragma once

#include <cstdint>

namespace attnlab {

class LearningRateSchedule {
 public:
  virtual ~LearningRateSchedule() = default;
  // The learning rate of step `step` >= 1.
  virtual double Rate(int64_t step) const = 0;
};

// Vaswani et al. 2017, eq. 3 (section 5.3):
//   rate = factor * d_model^-0.5 * min(step^-0.5, step * warmup_steps^-1.5)
// linear warmup to the peak at step == warmup_steps, then decay as 1/sqrt(step). The
// paper uses factor 1, warmup 4000; the Annotated Transformer's copy task factor 1,
// warmup 400.
class InverseSqrtWarmup : public LearningRateSchedule {
 public:
  InverseSqrtWarmup(int64_t d_model, int64_t warmup_steps, double factor = 1.0);
  double Rate(int64_t step) const override;

 private:
  int64_t d_model_;
  int64_t warmup_steps_;
  double factor_;
};

// Linear warmup from peak / warmup_steps (step 1) to `peak` (step warmup_steps), then a
// half cosine from `peak` down to `min_rate` at step total_steps, and `min_rate` after.
//   step <= warmup:          peak * step / warmup
//   warmup < step <= total:  min + (peak - min) * (1 + cos(pi * (step - warmup) /
//                                                         (total - warmup))) / 2
// warmup_steps may be 0 (no warmup); total_steps must exceed warmup_steps.
class LinearWarmupCosine : public LearningRateSchedule {
 public:
  LinearWarmupCosine(double peak, int64_t warmup_steps, int64_t total_steps, double min_rate = 0.0);
  double Rate(int64_t step) const override;

 private:
  double peak_;
  int64_t warmup_steps_;
  int64_t total_steps_;
  double min_rate_;
};

// The same rate at every step.
class Constant : public LearningRateSchedule {
 public:
  explicit Constant(double rate);
  double Rate(int64_t step) const override;

 private:
  double rate_;
};

}  // namespace attnlab
