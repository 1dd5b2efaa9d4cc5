// The product behind Matmul, for ops that fuse an elementwise step into a product
// (DropoutMatmul in dropout.cc): the same oneDNN call Matmul makes in f32, so a fused
// op gives bit for bit what the composite gives. And the view of a tensor that every
// product hands to the backend (also FrozenWeights' packing, frozen_weights.cc).
#pragma once

#include "framework/backend/dnnl/dnnl_backend.h"
#include "framework/tensor/tensor.h"

namespace attnlab {

// op(a) @ op(b) for f32 a [..., M, K] (or [..., K, M] transposed) and b [..., K, N] (or
// [..., N, K]) with equal batch dims; operands of any strides, copied only where oneDNN
// cannot take them. Neither recorded by autograd nor profiled: the calling op does both.
Tensor MatmulProduct(const Tensor& a, const Tensor& b, bool transpose_a, bool transpose_b);

// t's last two dims as the backend's matrix operand (transposed through strides if asked),
// the dims before them as its batch; no copy.
dnnl_backend::MatrixOperand AsOperand(const Tensor& t, bool transpose);

}  // namespace attnlab
