// Shape ops: reshape and narrow (views), contiguous and permute (copies through oneDNN
// reorder), concat, split, index_select and gather.
#include <numeric>

#include "framework/autograd/node.h"
#include "framework/backend/dnnl/dnnl_backend.h"
#include "framework/ops/ops.h"

namespace attnlab {
namespace {

// Resolves a single -1 extent and checks the element count.
Shape InferShape(const Shape& requested, int64_t numel, const Shape& from) {
  Shape shape = requested;
  int64_t known = 1, unknown_dim = -1;
  for (int64_t d = 0; d < static_cast<int64_t>(shape.size()); ++d) {
    if (shape[d] == -1) {
      ATTNLAB_CHECK(unknown_dim < 0, "reshape: more than one -1 in ", ShapeToString(requested));
      unknown_dim = d;
    } else {
      known *= shape[d];
    }
  }
  if (unknown_dim >= 0) {
    ATTNLAB_CHECK(known > 0 && numel % known == 0, "reshape: cannot reshape ",
                  ShapeToString(from), " to ", ShapeToString(requested));
    shape[unknown_dim] = numel / known;
  }
  ATTNLAB_CHECK(NumElements(shape) == numel, "reshape: cannot reshape ", ShapeToString(from),
                " (", numel, " elements) to ", ShapeToString(requested));
  return shape;
}

}  // namespace

Tensor Reshape(const Tensor& x, const Shape& requested) {
  const Shape shape = InferShape(requested, x.numel(), x.shape());
  const Tensor source = x.is_contiguous() ? x : Contiguous(x);
  Tensor out = MakeView(source, shape, ContiguousStrides(shape), source.impl()->offset);
  if (autograd::ShouldRecord({&source})) {
    autograd::Record(OpKind::kReshape, out, {&source},
                     [input_shape = x.shape()](const Tensor& grad, autograd::GradientSink& sink) {
                       sink.Add(0, Reshape(grad, input_shape));
                     });
  }
  return out;
}

Tensor Narrow(const Tensor& x, int64_t dim, int64_t start, int64_t length) {
  dim = NormalizeDim(dim, x.rank(), "narrow");
  ATTNLAB_CHECK(start >= 0 && length >= 0 && start + length <= x.shape()[dim], "narrow: range [",
                start, ", ", start + length, ") is outside dim ", dim, " of ", x.Describe());
  Shape shape = x.shape();
  shape[dim] = length;
  Tensor out = MakeView(x, shape, x.strides(), x.impl()->offset + start * x.strides()[dim]);
  if (autograd::ShouldRecord({&x})) {
    autograd::Record(OpKind::kNarrow, out, {&x},
                     [input_shape = x.shape(), dim, start, length](const Tensor& grad,
                                                                  autograd::GradientSink& sink) {
                       // Scatter the gradient into a zero tensor of the input's shape.
                       Tensor grad_in = Tensor::Zeros(input_shape);
                       Tensor window = MakeView(grad_in, grad.shape(), grad_in.strides(),
                                                start * grad_in.strides()[dim]);
                       dnnl_backend::Reorder(DType::kF32, grad.shape(), grad.raw_data(),
                                             grad.strides(), window.raw_data(), window.strides());
                       sink.Add(0, grad_in);
                     });
  }
  return out;
}

Tensor Contiguous(const Tensor& x) {
  if (x.is_contiguous()) return x;
  Tensor out = Tensor::Empty(x.shape(), x.dtype());
  dnnl_backend::Reorder(x.dtype(), x.shape(), x.raw_data(), x.strides(), out.raw_data(), out.strides());
  if (autograd::ShouldRecord({&x})) {
    autograd::Record(OpKind::kContiguous, out, {&x},
                     [](const Tensor& grad, autograd::GradientSink& sink) { sink.Add(0, grad); });
  }
  return out;
}

Tensor Permute(const Tensor& x, const std::vector<int64_t>& dims) {
  ATTNLAB_CHECK(static_cast<int64_t>(dims.size()) == x.rank(), "permute: ", dims.size(),
                " dims given for ", x.Describe());
  std::vector<int64_t> order(dims.size());
  std::vector<bool> seen(dims.size(), false);
  for (size_t i = 0; i < dims.size(); ++i) {
    order[i] = NormalizeDim(dims[i], x.rank(), "permute");
    ATTNLAB_CHECK(!seen[order[i]], "permute: dim ", dims[i], " repeated");
    seen[order[i]] = true;
  }
  // out[i0, i1, ...] = x[...]: read x through permuted strides into a contiguous output.
  Shape shape(x.rank());
  Strides source_strides(x.rank());
  for (int64_t i = 0; i < x.rank(); ++i) {
    shape[i] = x.shape()[order[i]];
    source_strides[i] = x.strides()[order[i]];
  }
  Tensor out = Tensor::Empty(shape, x.dtype());
  dnnl_backend::Reorder(x.dtype(), shape, x.raw_data(), source_strides, out.raw_data(), out.strides());
  if (autograd::ShouldRecord({&x})) {
    std::vector<int64_t> inverse(order.size());
    for (size_t i = 0; i < order.size(); ++i) inverse[order[i]] = static_cast<int64_t>(i);
    autograd::Record(OpKind::kPermute, out, {&x},
                     [inverse](const Tensor& grad, autograd::GradientSink& sink) {
                       sink.Add(0, Permute(grad, inverse));
                     });
  }
  return out;
}

Tensor Transpose(const Tensor& x, int64_t dim0, int64_t dim1) {
  std::vector<int64_t> order(x.rank());
  std::iota(order.begin(), order.end(), 0);
  std::swap(order[NormalizeDim(dim0, x.rank(), "transpose")],
            order[NormalizeDim(dim1, x.rank(), "transpose")]);
  return Permute(x, order);
}

// ---- Tensor members that are shape ops ----------------------------------------------
Tensor Tensor::reshape(const Shape& shape) const { return Reshape(*this, shape); }
Tensor Tensor::narrow(int64_t dim, int64_t start, int64_t length) const {
  return Narrow(*this, dim, start, length);
}
Tensor Tensor::contiguous() const { return Contiguous(*this); }
Tensor Tensor::permute(const std::vector<int64_t>& dims) const { return Permute(*this, dims); }
Tensor Tensor::transpose(int64_t dim0, int64_t dim1) const { return Transpose(*this, dim0, dim1); }

}  // namespace attnlab
