// Binary elementwise ops with NumPy broadcasting, and their scalar forms.
//
// Our own OpenMP kernels rather than oneDNN binary: a tiny add must cost about a
// microsecond (the engine's per-op budget), and broadcasting backward is a reduction
// we want deterministic, which reduce.cc provides.
#include <cmath>

#include "framework/autograd/node.h"
#include "framework/ops/ops.h"
#include "framework/parallel/parallel_for.h"
#include "framework/profiler/profiler.h"

namespace attnlab {
namespace {

constexpr int64_t kElementwiseGrain = 1 << 15;

enum class BinaryKind { kAdd, kSub, kMul, kDiv };

template <BinaryKind kind>
inline float Apply(float a, float b) {
  if constexpr (kind == BinaryKind::kAdd) return a + b;
  if constexpr (kind == BinaryKind::kSub) return a - b;
  if constexpr (kind == BinaryKind::kMul) return a * b;
  if constexpr (kind == BinaryKind::kDiv) return a / b;
}

// Strides of `t` seen through the broadcast shape `out_shape` (0 on broadcast dims).
Strides BroadcastStrides(const Tensor& t, const Shape& out_shape) {
  const int64_t rank = static_cast<int64_t>(out_shape.size());
  const int64_t shift = rank - t.rank();
  Strides strides(rank, 0);
  for (int64_t d = 0; d < t.rank(); ++d) {
    strides[d + shift] = t.shape()[d] == 1 ? 0 : t.strides()[d];
  }
  return strides;
}

// out = a (op) b over the broadcast shape. out is contiguous.
template <BinaryKind kind>
void BinaryKernel(const Tensor& a, const Tensor& b, Tensor& out) {
  const float* a_data = a.data<float>();
  const float* b_data = b.data<float>();
  float* out_data = out.data<float>();
  const int64_t count = out.numel();
  if (a.shape() == b.shape() && a.is_contiguous() && b.is_contiguous()) {
    ParallelFor(count, kElementwiseGrain, [&](int64_t begin, int64_t end) {
      for (int64_t i = begin; i < end; ++i) out_data[i] = Apply<kind>(a_data[i], b_data[i]);
    });
    return;
  }
  if (count == 0) return;
  const Shape& shape = out.shape();
  const int64_t rank = static_cast<int64_t>(shape.size());
  const Strides a_strides = BroadcastStrides(a, shape);
  const Strides b_strides = BroadcastStrides(b, shape);
  // Walk rows of the last dim; each row is a strided 1-D loop.
  const int64_t inner = rank == 0 ? 1 : shape[rank - 1];
  const int64_t a_inner = rank == 0 ? 0 : a_strides[rank - 1];
  const int64_t b_inner = rank == 0 ? 0 : b_strides[rank - 1];
  const int64_t rows = count / inner;
  ParallelFor(rows, std::max<int64_t>(1, kElementwiseGrain / inner),
              [&](int64_t begin, int64_t end) {
                for (int64_t row = begin; row < end; ++row) {
                  int64_t a_offset = 0, b_offset = 0, rest = row;
                  for (int64_t d = rank - 2; d >= 0; --d) {
                    const int64_t index = rest % shape[d];
                    rest /= shape[d];
                    a_offset += index * a_strides[d];
                    b_offset += index * b_strides[d];
                  }
                  float* out_row = out_data + row * inner;
                  const float* a_row = a_data + a_offset;
                  const float* b_row = b_data + b_offset;
                  if (a_inner == 1 && b_inner == 1) {
                    for (int64_t i = 0; i < inner; ++i)
                      out_row[i] = Apply<kind>(a_row[i], b_row[i]);
                  } else if (a_inner == 1 && b_inner == 0) {
                    const float b_value = b_row[0];
                    for (int64_t i = 0; i < inner; ++i) out_row[i] = Apply<kind>(a_row[i], b_value);
                  } else {
                    for (int64_t i = 0; i < inner; ++i) {
                      out_row[i] = Apply<kind>(a_row[i * a_inner], b_row[i * b_inner]);
                    }
                  }
                }
              });
}

template <BinaryKind kind>
Tensor BinaryForward(const Tensor& a, const Tensor& b, const char* op_name) {
  ATTNLAB_CHECK(a.dtype() == DType::kF32 && b.dtype() == DType::kF32, op_name,
                ": expects f32 tensors, got ", a.Describe(), " and ", b.Describe());
  const Shape out_shape =
      a.shape() == b.shape() ? a.shape() : BroadcastShapes(a.shape(), b.shape(), op_name);
  Tensor out = Tensor::Empty(out_shape);
  BinaryKernel<kind>(a, b, out);
  return out;
}

// Unary map over a (possibly strided) f32 tensor into a new contiguous tensor.
template <typename Map>
Tensor MapElements(const Tensor& x, Map map) {
  const Tensor input = x.is_contiguous() ? x : x.Clone();
  Tensor out = Tensor::Empty(x.shape());
  const float* in = input.data<float>();
  float* out_data = out.data<float>();
  ParallelFor(out.numel(), kElementwiseGrain, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) out_data[i] = map(in[i]);
  });
  return out;
}

}  // namespace

Tensor Add(const Tensor& a, const Tensor& b) {
  profiler::OpScope profile(OpKind::kAdd, {&a, &b});
  Tensor out = BinaryForward<BinaryKind::kAdd>(a, b, "add");
  if (autograd::ShouldRecord({&a, &b})) {
    autograd::Record(OpKind::kAdd, out, {&a, &b},
                     [a_shape = a.shape(), b_shape = b.shape()](const Tensor& grad,
                                                                autograd::GradientSink& sink) {
                       if (sink.NeedsGrad(0)) sink.Add(0, SumToShape(grad, a_shape));
                       if (sink.NeedsGrad(1)) sink.Add(1, SumToShape(grad, b_shape));
                     });
  }
  return out;
}

Tensor Sub(const Tensor& a, const Tensor& b) {
  profiler::OpScope profile(OpKind::kSub, {&a, &b});
  Tensor out = BinaryForward<BinaryKind::kSub>(a, b, "sub");
  if (autograd::ShouldRecord({&a, &b})) {
    autograd::Record(OpKind::kSub, out, {&a, &b},
                     [a_shape = a.shape(), b_shape = b.shape()](const Tensor& grad,
                                                                autograd::GradientSink& sink) {
                       if (sink.NeedsGrad(0)) sink.Add(0, SumToShape(grad, a_shape));
                       if (sink.NeedsGrad(1))
                         sink.Add(1, SumToShape(MulScalar(grad, -1.0f), b_shape));
                     });
  }
  return out;
}

Tensor Mul(const Tensor& a, const Tensor& b) {
  profiler::OpScope profile(OpKind::kMul, {&a, &b});
  Tensor out = BinaryForward<BinaryKind::kMul>(a, b, "mul");
  if (autograd::ShouldRecord({&a, &b})) {
    // d(a*b)/da = b, d(a*b)/db = a.
    autograd::Record(
        OpKind::kMul, out, {&a, &b},
        [a = a.detach(), b = b.detach()](const Tensor& grad, autograd::GradientSink& sink) {
          if (sink.NeedsGrad(0)) sink.Add(0, SumToShape(Mul(grad, b), a.shape()));
          if (sink.NeedsGrad(1)) sink.Add(1, SumToShape(Mul(grad, a), b.shape()));
        });
  }
  return out;
}

Tensor Div(const Tensor& a, const Tensor& b) {
  profiler::OpScope profile(OpKind::kDiv, {&a, &b});
  Tensor out = BinaryForward<BinaryKind::kDiv>(a, b, "div");
  if (autograd::ShouldRecord({&a, &b})) {
    // d(a/b)/da = 1/b, d(a/b)/db = -a/b^2 = -out/b.
    autograd::Record(OpKind::kDiv, out, {&a, &b},
                     [a_shape = a.shape(), b = b.detach(), out = out.detach()](
                         const Tensor& grad, autograd::GradientSink& sink) {
                       const Tensor grad_over_b = Div(grad, b);
                       if (sink.NeedsGrad(0)) sink.Add(0, SumToShape(grad_over_b, a_shape));
                       if (sink.NeedsGrad(1)) {
                         sink.Add(1,
                                  SumToShape(MulScalar(Mul(grad_over_b, out), -1.0f), b.shape()));
                       }
                     });
  }
  return out;
}

Tensor AddScalar(const Tensor& a, float value) {
  profiler::OpScope profile(OpKind::kAddScalar, {&a});
  ATTNLAB_CHECK(a.dtype() == DType::kF32, "add_scalar: expects f32, got ", a.Describe());
  Tensor out = MapElements(a, [value](float x) { return x + value; });
  if (autograd::ShouldRecord({&a})) {
    autograd::Record(OpKind::kAddScalar, out, {&a},
                     [](const Tensor& grad, autograd::GradientSink& sink) { sink.Add(0, grad); });
  }
  return out;
}

Tensor MulScalar(const Tensor& a, float value) {
  profiler::OpScope profile(OpKind::kMulScalar, {&a});
  ATTNLAB_CHECK(a.dtype() == DType::kF32, "mul_scalar: expects f32, got ", a.Describe());
  Tensor out = MapElements(a, [value](float x) { return x * value; });
  if (autograd::ShouldRecord({&a})) {
    autograd::Record(OpKind::kMulScalar, out, {&a},
                     [value](const Tensor& grad, autograd::GradientSink& sink) {
                       sink.Add(0, MulScalar(grad, value));
                     });
  }
  return out;
}

Tensor PowScalar(const Tensor& a, float exponent) {
  profiler::OpScope profile(OpKind::kPowScalar, {&a});
  ATTNLAB_CHECK(a.dtype() == DType::kF32, "pow_scalar: expects f32, got ", a.Describe());
  Tensor out = MapElements(a, [exponent](float x) { return std::pow(x, exponent); });
  if (autograd::ShouldRecord({&a})) {
    // d(x^p)/dx = p * x^(p-1).
    autograd::Record(OpKind::kPowScalar, out, {&a},
                     [a = a.detach(), exponent](const Tensor& grad, autograd::GradientSink& sink) {
                       const Tensor derivative = MapElements(a, [exponent](float x) {
                         return exponent * std::pow(x, exponent - 1.0f);
                       });
                       sink.Add(0, Mul(grad, derivative));
                     });
  }
  return out;
}

void AddInPlace(Tensor& a, const Tensor& b) {
  profiler::OpScope profile(OpKind::kAdd, {&a, &b});
  ATTNLAB_CHECK(a.is_contiguous(), "AddInPlace: destination ", a.Describe(), " must be contiguous");
  ATTNLAB_CHECK(BroadcastShapes(a.shape(), b.shape(), "AddInPlace") == a.shape(),
                "AddInPlace: ", b.Describe(), " does not broadcast to ", a.Describe());
  BinaryKernel<BinaryKind::kAdd>(a, b, a);
}

}  // namespace attnlab
