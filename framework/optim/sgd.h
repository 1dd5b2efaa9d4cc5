// Stochastic gradient descent with momentum, as PyTorch's torch.optim.SGD:
//   g = grad + weight_decay * param                       (L2 penalty, if weight_decay)
//   buf = g                                               on the parameter's first step
//   buf = momentum * buf + (1 - dampening) * g            afterwards
//   g = nesterov ? g + momentum * buf : buf               (if momentum != 0)
//   param = param - lr * g
// State: optim.<name>.momentum_buffer (when momentum != 0) and the step counts.
#pragma once

#include <vector>

#include "framework/optim/optimizer.h"

namespace attnlab {

struct SgdOptions {
  double momentum = 0.0;
  double dampening = 0.0;
  double weight_decay = 0.0;
  bool nesterov = false;  // needs momentum > 0 and dampening == 0, as in PyTorch
};

class Sgd : public Optimizer {
 public:
  Sgd(NamedTensors parameters, const SgdOptions& options = {});

 protected:
  void PrepareParameter(size_t index, int64_t step, double learning_rate) override;
  void UpdateRange(size_t index, int64_t begin, int64_t end, const float* gradient) override;

 private:
  SgdOptions options_;
  float learning_rate_ = 0.0f;    // this step's, as the float the update multiplies by
  std::vector<char> first_step_;  // per parameter: this is its first update
};

}  // namespace attnlab
