// Adam (Kingma & Ba 2015) and AdamW (Loshchilov & Hutter 2019), computed as PyTorch's
// torch.optim.Adam / torch.optim.AdamW (amsgrad off), with t the parameter's step count:
//   AdamW:  param = param * (1 - lr * weight_decay)          (decoupled weight decay)
//   Adam:   g = grad + weight_decay * param                  (L2 penalty)
//   m = lerp(m, g, 1 - beta1)                                 (= beta1 m + (1 - beta1) g)
//   v = beta2 v + (1 - beta2) g^2
//   step_size = lr / (1 - beta1^t)
//   denom = sqrt(v) / sqrt(1 - beta2^t) + eps
//   param = param - step_size * m / denom
// The bias corrections are computed in double, as Python computes them, and applied as
// float. The Transformer (Vaswani et al. 2017, 5.3) uses betas (0.9, 0.98), eps 1e-9.
// State: optim.<name>.exp_avg, optim.<name>.exp_avg_sq and the step counts.
#pragma once

#include <vector>

#include "framework/optim/optimizer.h"

namespace attnlab {

struct AdamOptions {
  double beta1 = 0.9;
  double beta2 = 0.999;
  double epsilon = 1e-8;
  double weight_decay = 0.0;
  // false: Adam's L2 penalty added to the gradient; true: AdamW's decoupled decay.
  bool decoupled_weight_decay = false;
};

// PyTorch's AdamW defaults: weight decay 0.01, decoupled.
inline AdamOptions AdamWOptions(double weight_decay = 0.01) {
  AdamOptions options;
  options.weight_decay = weight_decay;
  options.decoupled_weight_decay = true;
  return options;
}

class Adam : public Optimizer {
 public:
  Adam(NamedTensors parameters, const AdamOptions& options = {});

 protected:
  void PrepareParameter(size_t index, int64_t step, double learning_rate) override;
  void UpdateRange(size_t index, int64_t begin, int64_t end, const float* gradient) override;

 private:
  // Per parameter, this step's scalars.
  struct Coefficients {
    float step_size;              // lr / (1 - beta1^t)
    float bias_correction2_sqrt;  // sqrt(1 - beta2^t)
    float decay_factor;           // 1 - lr * weight_decay (AdamW)
  };

  AdamOptions options_;
  std::vector<Coefficients> coefficients_;
};

}  // namespace attnlab
