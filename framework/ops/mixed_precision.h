// Mixed precision for matrix products, as torch.autocast('cpu', torch.bfloat16) does it:
// inside a MixedPrecision scope, Matmul and Linear round their inputs to bf16 and let
// oneDNN multiply them on the CPU's bf16 dot-product instructions, accumulating and
// returning f32. Everything else stays f32: parameters and their gradients (the "master
// weights"), the optimizer, softmax, layer norm, losses, and every activation between
// ops. Backward follows the forward's precision: a product done in bf16 has its two
// gradient products done in bf16 too, from the bf16 copies saved by the forward.
//
// The scope is per thread (like autocast) and nests; the trainer opens one for the
// whole run when train.dtype = "bf16", `attnlab bench --dtype bf16` for its steps.
#pragma once

#include "absl/status/status.h"
#include "framework/tensor/tensor.h"

namespace attnlab {

// The precision of Matmul/Linear inputs on this thread: kF32 (the default) or kBF16.
DType MatmulInputDType();

// Whether `matmul_inputs` can be used here: InvalidArgument unless f32 or bf16, and
// FailedPrecondition for bf16 on a CPU without native bf16 instructions (oneDNN would
// emulate them, slower than f32). The one check behind the scope, the config key
// train.dtype and `attnlab bench --dtype`.
absl::Status CheckMatmulInputDType(DType matmul_inputs);

// Sets the matmul input precision for this thread until destroyed, then restores the
// previous one. Throws attnlab::Error where CheckMatmulInputDType fails.
class MixedPrecision {
 public:
  explicit MixedPrecision(DType matmul_inputs);
  ~MixedPrecision();
  MixedPrecision(const MixedPrecision&) = delete;
  MixedPrecision& operator=(const MixedPrecision&) = delete;

 private:
  DType previous_;
};

// A contiguous copy of `x` (any strides) in `dtype`, f32 or bf16 (f32 -> bf16 rounds to
// nearest even); `x` itself when it already has that dtype and is contiguous. Not
// recorded by autograd: the ops that use it differentiate through their f32 inputs.
Tensor ContiguousAs(const Tensor& x, DType dtype);

// `x` (contiguous f32 [rows, cols]) rounded to bf16 bit for bit as ContiguousAs(x, kBF16)
// rounds it on these CPUs (vcvtneps2bf16: nearest even, denormals to zero, NaN quieted),
// and, when `column_sums` is given, x's f32 column sums [cols] from the same read: sums
// over fixed chunks of 32 rows whose partials are added in chunk order, the same on any
// thread count. A bf16 Linear's backward rounds its incoming gradient and takes the
// bias gradient from one pass instead of two.
Tensor RoundToBf16WithColumnSums(const Tensor& x, Tensor* column_sums);

}  // namespace attnlab
