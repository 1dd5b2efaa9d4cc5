// Gradient clipping by global norm, as PyTorch's torch.nn.utils.clip_grad_norm_
// (norm_type 2): the L2 norm of all gradients taken together, and if it exceeds
// max_norm every gradient is scaled by max_norm / (total_norm + 1e-6).
#pragma once

#include "framework/tensor/tensor.h"

namespace attnlab {

// Returns the total norm before clipping (0 when no parameter has a gradient; NaN or
// inf propagate, as in PyTorch with error_if_nonfinite=false). Parameters without a
// gradient are skipped. The sum of squares is accumulated in double over fixed-size
// chunks combined in a fixed order, so the result does not depend on the thread count.
float ClipGradNorm(const NamedTensors& parameters, double max_norm);

}  // namespace attnlab
