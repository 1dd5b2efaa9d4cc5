// Shape ops: reshape and narrow (views), contiguous and permute (copies through oneDNN
// reorder), concat, split, index_select and gather.
#include <algorithm>
#include <cstring>
#include <memory>
#include <numeric>

#include "framework/autograd/grad_mode.h"
#include "framework/autograd/node.h"
#include "framework/backend/dnnl/dnnl_backend.h"
#include "framework/ops/dim_split.h"
#include "framework/ops/ops.h"
#include "framework/parallel/parallel_for.h"
#include "framework/profiler/profiler.h"

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
    ATTNLAB_CHECK(known > 0 && numel % known == 0, "reshape: cannot reshape ", ShapeToString(from),
                  " to ", ShapeToString(requested));
    shape[unknown_dim] = numel / known;
  }
  ATTNLAB_CHECK(NumElements(shape) == numel, "reshape: cannot reshape ", ShapeToString(from), " (",
                numel, " elements) to ", ShapeToString(requested));
  return shape;
}

}  // namespace

Tensor Reshape(const Tensor& x, const Shape& requested) {
  profiler::OpScope profile(OpKind::kReshape, {&x});
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
  profiler::OpScope profile(OpKind::kNarrow, {&x});
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
  profiler::OpScope profile(OpKind::kContiguous, {&x});  // only calls that copy
  Tensor out = Tensor::Empty(x.shape(), x.dtype());
  dnnl_backend::Reorder(x.dtype(), x.shape(), x.raw_data(), x.strides(), out.raw_data(),
                        out.strides());
  if (autograd::ShouldRecord({&x})) {
    autograd::Record(OpKind::kContiguous, out, {&x},
                     [](const Tensor& grad, autograd::GradientSink& sink) { sink.Add(0, grad); });
  }
  return out;
}

Tensor Permute(const Tensor& x, const std::vector<int64_t>& dims) {
  profiler::OpScope profile(OpKind::kPermute, {&x});
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
  dnnl_backend::Reorder(x.dtype(), shape, x.raw_data(), source_strides, out.raw_data(),
                        out.strides());
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

namespace attnlab {

// ---- concat, split, index_select, gather ---------------------------------------------
namespace {

constexpr int64_t kIndexGrain = 1 << 14;  // elements per chunk of an indexing kernel
constexpr int64_t kScatterBlock = 256;    // gradient columns owned by one scatter task

// autograd::ShouldRecord and autograd::Record for a number of inputs known only at run
// time (those take an initializer_list). Builds the node exactly as Record does in
// framework/autograd/engine.cc.
bool ShouldRecordAny(const std::vector<Tensor>& inputs) {
  if (!GradMode::IsEnabled()) return false;
  return std::any_of(inputs.begin(), inputs.end(),
                     [](const Tensor& input) { return input.requires_grad(); });
}

void RecordMany(OpKind op, Tensor& output, const std::vector<Tensor>& inputs,
                autograd::BackwardFn backward) {
  auto node = std::make_shared<autograd::Node>();
  node->op = op;
  node->output_shape = output.shape();
  node->backward = std::move(backward);
  for (const Tensor& input : inputs) {
    autograd::Edge edge;
    if (input.requires_grad()) {
      if (input.grad_fn() != nullptr) {
        edge.node = input.grad_fn();
      } else {
        edge.leaf = input.impl_ptr();
      }
    }
    node->inputs.push_back(std::move(edge));
  }
  output.impl()->grad_fn = std::move(node);
  output.impl()->requires_grad = true;
}

// Throws, before any memory is read through them, if an index is outside [0, extent).
void CheckIndices(const int32_t* indices, int64_t count, int64_t extent, int64_t dim,
                  const Tensor& x, const char* op) {
  for (int64_t i = 0; i < count; ++i) {
    ATTNLAB_CHECK(indices[i] >= 0 && indices[i] < extent, op, ": index ", indices[i],
                  " at position ", i, " is outside [0, ", extent, ") for dim ", dim, " of ",
                  x.Describe());
  }
}

// The start of line `line` of `shape` (every coordinate but `dim`, numbered row-major)
// under two sets of strides.
void LineOffsets(const Shape& shape, int64_t dim, int64_t line, const Strides& strides_a,
                 const Strides& strides_b, int64_t& offset_a, int64_t& offset_b) {
  offset_a = 0;
  offset_b = 0;
  for (int64_t d = static_cast<int64_t>(shape.size()) - 1; d >= 0; --d) {
    if (d == dim) continue;
    const int64_t coordinate = line % shape[d];
    line /= shape[d];
    offset_a += coordinate * strides_a[d];
    offset_b += coordinate * strides_b[d];
  }
}

}  // namespace

Tensor Concat(const std::vector<Tensor>& inputs, int64_t dim) {
  profiler::OpScope profile(OpKind::kConcat, {});
  if (profile.active()) {
    for (const Tensor& input : inputs) profile.add_bytes_read(input);
  }
  ATTNLAB_CHECK(!inputs.empty(), "concat: no inputs");
  const Tensor& first = inputs[0];
  dim = NormalizeDim(dim, first.rank(), "concat");
  Shape out_shape = first.shape();
  out_shape[dim] = 0;
  for (size_t i = 0; i < inputs.size(); ++i) {
    const Tensor& input = inputs[i];
    bool compatible = input.rank() == first.rank() && input.dtype() == first.dtype();
    for (int64_t d = 0; compatible && d < first.rank(); ++d) {
      compatible = d == dim || input.shape()[d] == first.shape()[d];
    }
    ATTNLAB_CHECK(compatible, "concat: input ", i, " ", input.Describe(),
                  " does not match input 0 ", first.Describe(), " outside dim ", dim);
    out_shape[dim] += input.shape()[dim];
  }
  // Each input is reordered into its window of the output: [.., start:start+extent, ..].
  Tensor out = Tensor::Empty(out_shape, first.dtype());
  std::vector<int64_t> extents;
  int64_t start = 0;
  for (const Tensor& input : inputs) {
    const Tensor window = MakeView(out, input.shape(), out.strides(), start * out.strides()[dim]);
    dnnl_backend::Reorder(input.dtype(), input.shape(), input.raw_data(), input.strides(),
                          window.raw_data(), window.strides());
    extents.push_back(input.shape()[dim]);
    start += input.shape()[dim];
  }
  if (ShouldRecordAny(inputs)) {
    RecordMany(OpKind::kConcat, out, inputs,
               [dim, extents](const Tensor& grad, autograd::GradientSink& sink) {
                 int64_t piece_start = 0;
                 for (size_t i = 0; i < extents.size(); ++i) {
                   if (sink.NeedsGrad(i)) {
                     sink.Add(i, Contiguous(Narrow(grad, dim, piece_start, extents[i])));
                   }
                   piece_start += extents[i];
                 }
               });
  }
  return out;
}

void CopyInto(const Tensor& destination, const Tensor& source) {
  profiler::OpScope profile(OpKind::kCopyInto, {&source});
  ATTNLAB_CHECK(destination.shape() == source.shape() && destination.dtype() == source.dtype(),
                "copy_into: source ", source.Describe(), " does not match destination ",
                destination.Describe());
  ATTNLAB_CHECK(!autograd::ShouldRecord({&source}),
                "copy_into: the source needs a gradient, and copy_into is not recorded");
  dnnl_backend::Reorder(source.dtype(), source.shape(), source.raw_data(), source.strides(),
                        destination.raw_data(), destination.strides());
}

std::vector<Tensor> Split(const Tensor& x, int64_t split_size, int64_t dim) {
  dim = NormalizeDim(dim, x.rank(), "split");
  ATTNLAB_CHECK(split_size > 0, "split: split_size ", split_size, " must be positive for ",
                x.Describe());
  const int64_t extent = x.shape()[dim];
  if (extent == 0) return {Narrow(x, dim, 0, 0)};
  std::vector<Tensor> pieces;
  for (int64_t start = 0; start < extent; start += split_size) {
    pieces.push_back(Narrow(x, dim, start, std::min(split_size, extent - start)));
  }
  return pieces;
}

Tensor IndexSelect(const Tensor& x, int64_t dim, const Tensor& index) {
  profiler::OpScope profile(OpKind::kIndexSelect, {&x, &index});
  ATTNLAB_CHECK(x.dtype() == DType::kF32 || x.dtype() == DType::kI32,
                "index_select: expects f32 or i32 x, got ", x.Describe());
  ATTNLAB_CHECK(index.rank() == 1 && index.dtype() == DType::kI32,
                "index_select: index must be i32 [n], got ", index.Describe(), " for ",
                x.Describe());
  dim = NormalizeDim(dim, x.rank(), "index_select");
  const Tensor picks = index.is_contiguous() ? index.detach() : index.Clone();
  const int64_t count = picks.numel();
  const int32_t* pick_data = picks.data<int32_t>();
  CheckIndices(pick_data, count, x.shape()[dim], dim, x, "index_select");

  // x: [outer, extent, inner] -> out: [outer, count, inner], one row of inner per pick.
  const Tensor input = x.is_contiguous() ? x : x.Clone();
  const DimSplit split = SplitAroundDim(x.shape(), dim);
  Shape out_shape = x.shape();
  out_shape[dim] = count;
  Tensor out = Tensor::Empty(out_shape, x.dtype());
  const size_t element_size = ElementSize(x.dtype());
  const size_t row_bytes = split.inner * element_size;
  const char* in_bytes = static_cast<const char*>(input.raw_data());
  char* out_bytes = static_cast<char*>(out.raw_data());
  ParallelFor(split.outer * count,
              std::max<int64_t>(1, kIndexGrain / std::max<int64_t>(split.inner, 1)),
              [&](int64_t begin, int64_t end) {
                for (int64_t row = begin; row < end; ++row) {
                  const int64_t o = row / count, j = row % count;
                  std::memcpy(out_bytes + row * row_bytes,
                              in_bytes + (o * split.extent + pick_data[j]) * row_bytes, row_bytes);
                }
              });

  if (autograd::ShouldRecord({&x})) {
    // grad_in[o, picks[j], i] += grad[o, j, i]. A task owns (o, a block of i) and adds
    // the picks in order, so repeated picks accumulate identically on any thread count.
    autograd::Record(OpKind::kIndexSelect, out, {&x},
                     [picks = picks.Clone(), input_shape = x.shape(), split](
                         const Tensor& grad, autograd::GradientSink& sink) {
                       const Tensor grad_out = grad.is_contiguous() ? grad : grad.Clone();
                       Tensor grad_in = Tensor::Zeros(input_shape);
                       const float* grad_data = grad_out.data<float>();
                       const int32_t* pick_data = picks.data<int32_t>();
                       float* grad_in_data = grad_in.data<float>();
                       const int64_t count = picks.numel();
                       ParallelForColumnBlocks(
                           split.outer, split.inner, kScatterBlock, /*grain=*/1,
                           [&](int64_t o, int64_t i0, int64_t i1) {
                             for (int64_t j = 0; j < count; ++j) {
                               const float* source = grad_data + (o * count + j) * split.inner;
                               float* target =
                                   grad_in_data + (o * split.extent + pick_data[j]) * split.inner;
                               for (int64_t i = i0; i < i1; ++i) target[i] += source[i];
                             }
                           });
                       sink.Add(0, grad_in);
                     });
  }
  return out;
}

Tensor Gather(const Tensor& x, int64_t dim, const Tensor& index) {
  profiler::OpScope profile(OpKind::kGather, {&x, &index});
  ATTNLAB_CHECK(x.dtype() == DType::kF32, "gather: expects f32 x, got ", x.Describe());
  ATTNLAB_CHECK(index.dtype() == DType::kI32 && index.rank() == x.rank() && x.rank() > 0,
                "gather: index must be i32 with the rank of x, got ", index.Describe(), " for ",
                x.Describe());
  dim = NormalizeDim(dim, x.rank(), "gather");
  for (int64_t d = 0; d < x.rank(); ++d) {
    ATTNLAB_CHECK(d == dim || index.shape()[d] <= x.shape()[d], "gather: index ", index.Describe(),
                  " is larger than x ", x.Describe(), " in dim ", d);
  }
  const Tensor picks = index.is_contiguous() ? index.detach() : index.Clone();
  const int32_t* pick_data = picks.data<int32_t>();
  CheckIndices(pick_data, picks.numel(), x.shape()[dim], dim, x, "gather");

  // A line is every coordinate of index but `dim`; out[line, j] = x[line, picks[line, j]]
  // with index, out: contiguous index.shape, x read through its strides.
  const Shape& shape = index.shape();
  const int64_t line_length = shape[dim];
  const int64_t lines = line_length == 0 ? 0 : picks.numel() / line_length;
  const Strides line_strides = ContiguousStrides(shape);
  const int64_t pick_stride = line_strides[dim];
  Tensor out = Tensor::Empty(shape);
  const float* x_data = x.data<float>();
  float* out_data = out.data<float>();
  const Strides& x_strides = x.strides();
  const int64_t x_dim_stride = x_strides[dim];
  ParallelFor(lines, std::max<int64_t>(1, kIndexGrain / std::max<int64_t>(line_length, 1)),
              [&](int64_t begin, int64_t end) {
                for (int64_t line = begin; line < end; ++line) {
                  int64_t out_offset, x_offset;
                  LineOffsets(shape, dim, line, line_strides, x_strides, out_offset, x_offset);
                  for (int64_t j = 0; j < line_length; ++j) {
                    const int64_t position = out_offset + j * pick_stride;
                    out_data[position] = x_data[x_offset + pick_data[position] * x_dim_stride];
                  }
                }
              });

  if (autograd::ShouldRecord({&x})) {
    // grad_in[line, picks[line, j]] += grad[line, j]: lines write disjoint parts of
    // grad_in and each adds its picks in order, so the result is deterministic.
    autograd::Record(
        OpKind::kGather, out, {&x},
        [picks = picks.Clone(), input_shape = x.shape(), dim, lines](const Tensor& grad,
                                                                     autograd::GradientSink& sink) {
          const Tensor grad_out = grad.is_contiguous() ? grad : grad.Clone();
          Tensor grad_in = Tensor::Zeros(input_shape);
          const Shape& shape = picks.shape();
          const int64_t line_length = shape[dim];
          const Strides line_strides = ContiguousStrides(shape);
          const Strides grad_in_strides = ContiguousStrides(input_shape);
          const float* grad_data = grad_out.data<float>();
          const int32_t* pick_data = picks.data<int32_t>();
          float* grad_in_data = grad_in.data<float>();
          ParallelFor(
              lines, std::max<int64_t>(1, kIndexGrain / std::max<int64_t>(line_length, 1)),
              [&](int64_t begin, int64_t end) {
                for (int64_t line = begin; line < end; ++line) {
                  int64_t grad_offset, grad_in_offset;
                  LineOffsets(shape, dim, line, line_strides, grad_in_strides, grad_offset,
                              grad_in_offset);
                  for (int64_t j = 0; j < line_length; ++j) {
                    const int64_t position = grad_offset + j * line_strides[dim];
                    grad_in_data[grad_in_offset + pick_data[position] * grad_in_strides[dim]] +=
                        grad_data[position];
                  }
                }
              });
          sink.Add(0, grad_in);
        });
  }
  return out;
}

}  // namespace attnlab
