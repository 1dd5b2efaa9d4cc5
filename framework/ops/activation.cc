// Elementwise activations on oneDNN eltwise: relu, gelu (erf and tanh forms), tanh,
// sigmoid, exp, log, sqrt, elu.
//
// All nine share one helper. The forward runs over the flat contiguous buffer (shape is
// irrelevant to an elementwise map); the backward is oneDNN's eltwise backward, which
// for most kinds reads the forward's output (the *_use_dst_for_bwd algorithms) and for
// gelu and log reads its input. Each op saves exactly that one tensor.
#include "framework/autograd/node.h"
#include "framework/backend/dnnl/dnnl_backend.h"
#include "framework/ops/ops.h"
#include "framework/profiler/profiler.h"

namespace attnlab {
namespace {

using dnnl_backend::EltwiseKind;

// y = f(x) for any shape; y is contiguous with x's shape. A strided x is copied once
// (not recorded: the node's input is x itself, and its gradient is contiguous, x-shaped).
// dx = f'(x) * dy, where oneDNN computes f' from the saved x or y.
Tensor EltwiseOp(OpKind op, EltwiseKind kind, float alpha, const Tensor& x) {
  profiler::OpScope profile(op, {&x});
  ATTNLAB_CHECK(x.defined(), OpName(op), ": input is undefined");
  ATTNLAB_CHECK(x.dtype() == DType::kF32, OpName(op), ": expects f32, got ", x.Describe());
  const Tensor input = Contiguous(x.detach());
  Tensor out = Tensor::Empty(x.shape());
  dnnl_backend::EltwiseForward(kind, alpha, input.data<float>(), out.data<float>(), out.numel());
  if (autograd::ShouldRecord({&x})) {
    const Tensor saved = dnnl_backend::EltwiseBackwardUsesOutput(kind) ? out.detach() : input;
    autograd::Record(
        op, out, {&x}, [kind, alpha, saved](const Tensor& grad, autograd::GradientSink& sink) {
          const Tensor grad_output = Contiguous(grad);
          Tensor grad_input = Tensor::Empty(saved.shape());
          dnnl_backend::EltwiseBackward(kind, alpha, saved.data<float>(), grad_output.data<float>(),
                                        grad_input.data<float>(), saved.numel());
          sink.Add(0, grad_input);
        });
  }
  return out;
}

}  // namespace

Tensor Relu(const Tensor& x) { return EltwiseOp(OpKind::kRelu, EltwiseKind::kRelu, 0.0f, x); }

Tensor GeluErf(const Tensor& x) {
  return EltwiseOp(OpKind::kGeluErf, EltwiseKind::kGeluErf, 0.0f, x);
}

Tensor GeluTanh(const Tensor& x) {
  return EltwiseOp(OpKind::kGeluTanh, EltwiseKind::kGeluTanh, 0.0f, x);
}

Tensor Tanh(const Tensor& x) { return EltwiseOp(OpKind::kTanh, EltwiseKind::kTanh, 0.0f, x); }

Tensor Sigmoid(const Tensor& x) {
  return EltwiseOp(OpKind::kSigmoid, EltwiseKind::kLogistic, 0.0f, x);
}

Tensor Exp(const Tensor& x) { return EltwiseOp(OpKind::kExp, EltwiseKind::kExp, 0.0f, x); }

// Non-positive inputs give NaN / -inf, as std::log does.
Tensor Log(const Tensor& x) { return EltwiseOp(OpKind::kLog, EltwiseKind::kLog, 0.0f, x); }

// The gradient at 0 is +inf (oneDNN computes it as dy / (2 sqrt(x)) from the output).
Tensor Sqrt(const Tensor& x) { return EltwiseOp(OpKind::kSqrt, EltwiseKind::kSqrt, 0.0f, x); }

// x > 0 ? x : alpha * (exp(x) - 1). The backward is computed from the output, which
// oneDNN supports only for alpha >= 0 (the output then identifies the branch).
Tensor Elu(const Tensor& x, float alpha) {
  ATTNLAB_CHECK(alpha >= 0.0f,
                "elu: alpha must be >= 0 (oneDNN computes the gradient from "
                "the output), got ",
                alpha, " for ", x.Describe());
  return EltwiseOp(OpKind::kElu, EltwiseKind::kElu, alpha, x);
}

}  // namespace attnlab
