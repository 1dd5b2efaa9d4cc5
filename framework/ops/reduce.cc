// Reductions: sum, mean, max, argmax along dims.
//
// Every reduction is done one dim at a time on a [outer, reduced, inner] view (DimSplit,
// whose extent is the reduced dim). Each
// output element is summed by one thread in index order, so the result does not depend
// on the number of threads.
#include <algorithm>
#include <limits>

#include "framework/autograd/node.h"
#include "framework/ops/dim_split.h"
#include "framework/ops/ops.h"
#include "framework/parallel/parallel_for.h"
#include "framework/profiler/profiler.h"

namespace attnlab {
namespace {

constexpr int64_t kReduceGrain = 1 << 14;

// Sums contiguous `x` over `dim`, keeping it as size 1.
Tensor SumOneDim(const Tensor& x, int64_t dim) {
  const DimSplit view = SplitAroundDim(x.shape(), dim);
  Shape out_shape = x.shape();
  out_shape[dim] = 1;
  Tensor out = Tensor::Empty(out_shape);
  const float* in = x.data<float>();
  float* out_data = out.data<float>();
  if (view.inner == 1) {
    ParallelFor(view.outer, std::max<int64_t>(1, kReduceGrain / std::max<int64_t>(view.extent, 1)),
                [&](int64_t begin, int64_t end) {
                  for (int64_t o = begin; o < end; ++o) {
                    const float* row = in + o * view.extent;
                    float total = 0.0f;
                    for (int64_t r = 0; r < view.extent; ++r) total += row[r];
                    out_data[o] = total;
                  }
                });
    return out;
  }
  // Parallel over (outer, blocks of inner); each block adds the reduced rows in order.
  constexpr int64_t kBlock = 256;
  ParallelForColumnBlocks(view.outer, view.inner, kBlock, /*grain=*/1,
                          [&](int64_t o, int64_t i0, int64_t i1) {
                            float* out_row = out_data + o * view.inner;
                            std::fill(out_row + i0, out_row + i1, 0.0f);
                            for (int64_t r = 0; r < view.extent; ++r) {
                              const float* row = in + (o * view.extent + r) * view.inner;
                              for (int64_t i = i0; i < i1; ++i) out_row[i] += row[i];
                            }
                          });
  return out;
}

// Sorted, de-duplicated, non-negative dims; all dims when `dims` is empty.
std::vector<int64_t> ResolveDims(const std::vector<int64_t>& dims, int64_t rank, const char* op) {
  std::vector<int64_t> resolved;
  if (dims.empty()) {
    for (int64_t d = 0; d < rank; ++d) resolved.push_back(d);
    return resolved;
  }
  for (int64_t dim : dims) resolved.push_back(NormalizeDim(dim, rank, op));
  std::sort(resolved.begin(), resolved.end());
  resolved.erase(std::unique(resolved.begin(), resolved.end()), resolved.end());
  return resolved;
}

Shape ReducedShape(const Shape& shape, const std::vector<int64_t>& dims, bool keepdim) {
  Shape out;
  for (int64_t d = 0; d < static_cast<int64_t>(shape.size()); ++d) {
    const bool reduced = std::find(dims.begin(), dims.end(), d) != dims.end();
    if (!reduced)
      out.push_back(shape[d]);
    else if (keepdim)
      out.push_back(1);
  }
  return out;
}

// Sum without autograd; the result has `dims` kept as size 1.
Tensor SumKeepDims(const Tensor& x, const std::vector<int64_t>& dims) {
  Tensor current = x.is_contiguous() ? x.detach() : x.Clone();
  for (int64_t dim : dims) current = SumOneDim(current, dim);
  return current;
}

// Expands `grad` (shaped like the reduced output) back to `shape` by broadcasting.
Tensor BroadcastTo(const Tensor& grad, const Shape& shape, const std::vector<int64_t>& dims) {
  const Tensor kept = Reshape(grad, ReducedShape(shape, dims, /*keepdim=*/true));
  return Add(Tensor::Zeros(shape), kept);
}

}  // namespace

Tensor Sum(const Tensor& x, const std::vector<int64_t>& dims, bool keepdim) {
  profiler::OpScope profile(OpKind::kSum, {&x});
  ATTNLAB_CHECK(x.dtype() == DType::kF32, "sum: expects f32, got ", x.Describe());
  const std::vector<int64_t> resolved = ResolveDims(dims, x.rank(), "sum");
  Tensor out = Reshape(SumKeepDims(x, resolved), ReducedShape(x.shape(), resolved, keepdim));
  out = out.detach();
  if (autograd::ShouldRecord({&x})) {
    autograd::Record(
        OpKind::kSum, out, {&x},
        [shape = x.shape(), resolved](const Tensor& grad, autograd::GradientSink& sink) {
          sink.Add(0, BroadcastTo(grad, shape, resolved));
        });
  }
  return out;
}

Tensor Mean(const Tensor& x, const std::vector<int64_t>& dims, bool keepdim) {
  profiler::OpScope profile(OpKind::kMean, {&x});
  ATTNLAB_CHECK(x.dtype() == DType::kF32, "mean: expects f32, got ", x.Describe());
  const std::vector<int64_t> resolved = ResolveDims(dims, x.rank(), "mean");
  int64_t count = 1;
  for (int64_t d : resolved) count *= x.shape()[d];
  const float scale = count > 0 ? 1.0f / static_cast<float>(count) : 0.0f;
  Tensor out = Reshape(SumKeepDims(x, resolved), ReducedShape(x.shape(), resolved, keepdim));
  out = MulScalar(out.detach(), scale).detach();
  if (autograd::ShouldRecord({&x})) {
    autograd::Record(
        OpKind::kMean, out, {&x},
        [shape = x.shape(), resolved, scale](const Tensor& grad, autograd::GradientSink& sink) {
          sink.Add(0, MulScalar(BroadcastTo(grad, shape, resolved), scale));
        });
  }
  return out;
}

Tensor SumToShape(const Tensor& x, const Shape& shape) {
  if (x.shape() == shape) return x;
  const int64_t shift = x.rank() - static_cast<int64_t>(shape.size());
  ATTNLAB_CHECK(shift >= 0, "SumToShape: cannot sum ", x.Describe(), " to ", ShapeToString(shape));
  std::vector<int64_t> dims;
  for (int64_t d = 0; d < x.rank(); ++d) {
    const int64_t target = d < shift ? 1 : shape[d - shift];
    if (d < shift || (target == 1 && x.shape()[d] != 1))
      dims.push_back(d);
    else
      ATTNLAB_CHECK(target == x.shape()[d], "SumToShape: cannot sum ", x.Describe(), " to ",
                    ShapeToString(shape));
  }
  return Reshape(Sum(x, dims, /*keepdim=*/true), shape);
}

namespace {
// Max (value and first index) over `dim` of contiguous x; both keep dim as size 1.
void MaxOneDim(const Tensor& x, int64_t dim, Tensor& values, Tensor& indices) {
  const DimSplit view = SplitAroundDim(x.shape(), dim);
  ATTNLAB_CHECK(view.extent > 0, "max: cannot reduce an empty dimension of ", x.Describe());
  Shape out_shape = x.shape();
  out_shape[dim] = 1;
  values = Tensor::Empty(out_shape);
  indices = Tensor::Empty(out_shape, DType::kI32);
  const float* in = x.data<float>();
  float* value_data = values.data<float>();
  int32_t* index_data = indices.data<int32_t>();
  ParallelFor(view.outer * view.inner, std::max<int64_t>(1, kReduceGrain / view.extent),
              [&](int64_t begin, int64_t end) {
                for (int64_t task = begin; task < end; ++task) {
                  const int64_t o = task / view.inner, i = task % view.inner;
                  const float* base = in + o * view.extent * view.inner + i;
                  float best = base[0];
                  int32_t best_index = 0;
                  for (int64_t r = 1; r < view.extent; ++r) {
                    const float v = base[r * view.inner];
                    if (v > best) {
                      best = v;
                      best_index = static_cast<int32_t>(r);
                    }
                  }
                  value_data[task] = best;
                  index_data[task] = best_index;
                }
              });
}
}  // namespace

Tensor Max(const Tensor& x, int64_t dim, bool keepdim) {
  profiler::OpScope profile(OpKind::kMax, {&x});
  ATTNLAB_CHECK(x.dtype() == DType::kF32, "max: expects f32, got ", x.Describe());
  dim = NormalizeDim(dim, x.rank(), "max");
  const Tensor input = x.is_contiguous() ? x.detach() : x.Clone();
  Tensor values, indices;
  MaxOneDim(input, dim, values, indices);
  Tensor out = Reshape(values, ReducedShape(x.shape(), {dim}, keepdim)).detach();
  if (autograd::ShouldRecord({&x})) {
    autograd::Record(
        OpKind::kMax, out, {&x},
        [shape = x.shape(), dim, indices](const Tensor& grad, autograd::GradientSink& sink) {
          // Scatter each gradient to the position of its maximum.
          const DimSplit view = SplitAroundDim(shape, dim);
          Tensor grad_in = Tensor::Zeros(shape);
          const Tensor g = grad.is_contiguous() ? grad : grad.Clone();
          const float* g_data = g.data<float>();
          const int32_t* index_data = indices.data<int32_t>();
          float* out_data = grad_in.data<float>();
          for (int64_t task = 0; task < view.outer * view.inner; ++task) {
            const int64_t o = task / view.inner, i = task % view.inner;
            out_data[(o * view.extent + index_data[task]) * view.inner + i] += g_data[task];
          }
          sink.Add(0, grad_in);
        });
  }
  return out;
}

Tensor Argmax(const Tensor& x, int64_t dim, bool keepdim) {
  profiler::OpScope profile(OpKind::kArgmax, {&x});
  ATTNLAB_CHECK(x.dtype() == DType::kF32, "argmax: expects f32, got ", x.Describe());
  dim = NormalizeDim(dim, x.rank(), "argmax");
  const Tensor input = x.is_contiguous() ? x.detach() : x.Clone();
  Tensor values, indices;
  MaxOneDim(input, dim, values, indices);
  return MakeView(indices, ReducedShape(x.shape(), {dim}, keepdim),
                  ContiguousStrides(ReducedShape(x.shape(), {dim}, keepdim)), 0);
}

}  // namespace attnlab
