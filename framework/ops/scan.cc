// Scans: the inclusive prefix sum (cumsum) along one dim, forward and backward.
//
// The tensor is viewed as [outer, length, inner] around the scanned dim. A task owns one
// outer index and a block of inner columns and walks `length` in order, so every output
// is the same sum in the same order on any thread count (no parallel-prefix tricks: the
// scans attention needs are over time, where outer * inner is already plenty of work).
//
// Backward: out_i = sum_{j <= i} x_j, so dL/dx_j = sum_{i >= j} dL/dout_i, the reverse
// cumulative sum of the gradient. Both directions are one kernel and one recorded op, so
// the backward is itself differentiable.
#include <algorithm>

#include "framework/autograd/node.h"
#include "framework/ops/dim_split.h"
#include "framework/ops/ops.h"
#include "framework/parallel/parallel_for.h"
#include "framework/profiler/profiler.h"

namespace attnlab {
namespace {

constexpr int64_t kScanGrain = 1 << 14;  // elements per chunk
constexpr int64_t kColumnBlock = 256;    // inner columns per task

enum class ScanDirection { kForward, kReverse };

ScanDirection Opposite(ScanDirection direction) {
  return direction == ScanDirection::kForward ? ScanDirection::kReverse : ScanDirection::kForward;
}

// in, out: contiguous [outer, length, inner]. Forward: out[o, i, :] = sum_{j <= i} in[o, j, :];
// reverse: out[o, i, :] = sum_{j >= i} in[o, j, :].
void ScanKernel(const float* in, float* out, const DimSplit& view, ScanDirection direction) {
  const int64_t length = view.extent;
  if (length == 0) return;
  const int64_t block_elements = std::min(view.inner, kColumnBlock) * length;
  const int64_t grain = std::max<int64_t>(1, kScanGrain / std::max<int64_t>(block_elements, 1));
  const bool reverse = direction == ScanDirection::kReverse;
  ParallelForColumnBlocks(view.outer, view.inner, kColumnBlock, grain,
                          [&](int64_t o, int64_t column_begin, int64_t column_end) {
                            const int64_t base = o * length * view.inner;
                            const int64_t first = reverse ? length - 1 : 0;
                            const int64_t step = reverse ? -1 : 1;
                            // The first row along the scan is a copy; every later row adds its
                            // predecessor.
                            for (int64_t c = column_begin; c < column_end; ++c) {
                              out[base + first * view.inner + c] =
                                  in[base + first * view.inner + c];
                            }
                            for (int64_t n = 1; n < length; ++n) {
                              const int64_t row = first + n * step;
                              const float* in_row = in + base + row * view.inner;
                              const float* previous = out + base + (row - step) * view.inner;
                              float* out_row = out + base + row * view.inner;
                              for (int64_t c = column_begin; c < column_end; ++c)
                                out_row[c] = previous[c] + in_row[c];
                            }
                          });
}

// The recorded op: a scan in `direction` whose backward is the scan in the other one.
Tensor Scan(const Tensor& x, int64_t dim, ScanDirection direction) {
  const Tensor input = x.is_contiguous() ? x.detach() : x.Clone();
  Tensor out = Tensor::Empty(x.shape());
  ScanKernel(input.data<float>(), out.data<float>(), SplitAroundDim(x.shape(), dim), direction);
  if (autograd::ShouldRecord({&x})) {
    autograd::Record(OpKind::kCumSum, out, {&x},
                     [dim, direction](const Tensor& grad, autograd::GradientSink& sink) {
                       sink.Add(0, Scan(grad, dim, Opposite(direction)));
                     });
  }
  return out;
}

}  // namespace

Tensor CumSum(const Tensor& x, int64_t dim) {
  profiler::OpScope profile(OpKind::kCumSum, {&x});
  ATTNLAB_CHECK(x.defined(), "cumsum: input is undefined");
  ATTNLAB_CHECK(x.dtype() == DType::kF32, "cumsum: expects f32, got ", x.Describe());
  ATTNLAB_CHECK(x.rank() >= 1, "cumsum: needs at least one dim, got ", x.Describe());
  return Scan(x, NormalizeDim(dim, x.rank(), "cumsum"), ScanDirection::kForward);
}

}  // namespace attnlab
