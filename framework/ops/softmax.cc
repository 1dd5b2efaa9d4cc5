// softmax and log_softmax over the last dim, on oneDNN softmax / logsoftmax, with an
// optional additive mask.
//
// x: [..., cols] is viewed as a contiguous [rows, cols] matrix. The mask (0 where
// attention is allowed, -inf where it is not, or any finite bias) broadcasts to x's
// shape and is added to x before the softmax; it never receives a gradient.
//
// Fully masked rows. A row whose every score is -inf has no defined softmax (oneDNN
// would compute exp(-inf - (-inf)) = NaN). Such rows arise legitimately (a query at a
// padding position, whose keys are all padding), and one NaN poisons the whole batch's
// gradients, so we define them as all zeros, for softmax and for log_softmax alike (a
// log-probability of 0 is meaningless there, but it is finite, and a padding row's
// output is never used), with zero gradient. oneDNN is fed zeros for those rows and the
// rows of the output and of the input gradient are zeroed afterwards.
#include <algorithm>
#include <limits>
#include <string>
#include <vector>

#include "framework/autograd/node.h"
#include "framework/backend/dnnl/dnnl_backend.h"
#include "framework/ops/ops.h"
#include "framework/parallel/parallel_for.h"
#include "framework/profiler/profiler.h"

namespace attnlab {
namespace {

// Rows per chunk of the fully-masked scan; the scan usually stops at a row's first entry.
constexpr int64_t kRowGrain = 1 << 12;

// Indices of the rows of the contiguous [rows, cols] matrix `scores` whose every entry is
// -inf, in increasing order.
std::vector<int64_t> FindFullyMaskedRows(const float* scores, int64_t rows, int64_t cols) {
  constexpr float kMinusInfinity = -std::numeric_limits<float>::infinity();
  std::vector<uint8_t> fully_masked(rows, 0);
  ParallelFor(rows, kRowGrain, [&](int64_t begin, int64_t end) {
    for (int64_t row = begin; row < end; ++row) {
      const float* values = scores + row * cols;
      int64_t col = 0;
      while (col < cols && values[col] == kMinusInfinity) ++col;
      fully_masked[row] = cols > 0 && col == cols;
    }
  });
  std::vector<int64_t> indices;
  for (int64_t row = 0; row < rows; ++row) {
    if (fully_masked[row]) indices.push_back(row);
  }
  return indices;
}

// Sets the listed rows of the contiguous [rows, cols] matrix `data` to zero.
void ZeroRows(float* data, const std::vector<int64_t>& row_indices, int64_t cols) {
  for (const int64_t row : row_indices) std::fill_n(data + row * cols, cols, 0.0f);
}

// The shared forward and backward of softmax (log_softmax = false) and log_softmax.
// y[r, :] = softmax(x[r, :] + mask[r, :]) (or its log), and zeros for fully masked rows.
// Backward (oneDNN, from y): softmax dx = y * (dy - sum(dy * y)), which is already 0 on
// a zero row; log_softmax dx = dy - exp(y) * sum(dy), which is not, so both zero those
// rows explicitly.
Tensor SoftmaxOp(OpKind op, bool log_softmax, const Tensor& x, const Tensor& mask) {
  profiler::OpScope profile(op, {&x, &mask});
  ATTNLAB_CHECK(x.defined(), OpName(op), ": input is undefined");
  ATTNLAB_CHECK(x.dtype() == DType::kF32, OpName(op), ": expects f32, got ", x.Describe());
  ATTNLAB_CHECK(x.rank() >= 1, OpName(op), ": needs at least one dim, got ", x.Describe());
  const std::string op_name(OpName(op));
  if (mask.defined()) {
    ATTNLAB_CHECK(mask.dtype() == DType::kF32, op_name, ": mask must be f32, got ", mask.Describe(),
                  " for input ", x.Describe());
    ATTNLAB_CHECK(BroadcastShapes(x.shape(), mask.shape(), op_name.c_str()) == x.shape(), op_name,
                  ": mask ", mask.Describe(), " does not broadcast to input ", x.Describe());
    ATTNLAB_CHECK(!mask.requires_grad(), op_name, ": mask ", mask.Describe(),
                  " requires grad, but masks receive no gradient");
  }
  const int64_t cols = x.size(-1);
  const int64_t rows = cols == 0 ? 0 : x.numel() / cols;

  // The scores fed to oneDNN, contiguous [rows, cols]. With a mask, x + mask is written
  // into a fresh buffer in one pass (not recorded: the node's input is x, and the mask
  // needs no gradient). Without one, a contiguous x is read in place.
  Tensor scores = mask.defined() ? Add(x.detach(), mask.detach()) : Contiguous(x.detach());
  const bool scores_are_ours = mask.defined() || !x.is_contiguous();
  const std::vector<int64_t> masked_rows = FindFullyMaskedRows(scores.data<float>(), rows, cols);
  if (!masked_rows.empty()) {
    if (!scores_are_ours) scores = scores.Clone();  // never write into the caller's x
    ZeroRows(scores.data<float>(), masked_rows, cols);
  }

  Tensor out = Tensor::Empty(x.shape());
  dnnl_backend::SoftmaxForward(log_softmax, scores.data<float>(), out.data<float>(), rows, cols);
  ZeroRows(out.data<float>(), masked_rows, cols);

  if (autograd::ShouldRecord({&x})) {
    autograd::Record(op, out, {&x},
                     [log_softmax, rows, cols, masked_rows, out = out.detach()](
                         const Tensor& grad, autograd::GradientSink& sink) {
                       const Tensor grad_output = Contiguous(grad);
                       Tensor grad_input = Tensor::Empty(out.shape());
                       dnnl_backend::SoftmaxBackward(log_softmax, out.data<float>(),
                                                     grad_output.data<float>(),
                                                     grad_input.data<float>(), rows, cols);
                       ZeroRows(grad_input.data<float>(), masked_rows, cols);
                       sink.Add(0, grad_input);
                     });
  }
  return out;
}

}  // namespace

Tensor Softmax(const Tensor& x, const Tensor& mask) {
  return SoftmaxOp(OpKind::kSoftmax, /*log_softmax=*/false, x, mask);
}

Tensor LogSoftmax(const Tensor& x, const Tensor& mask) {
  return SoftmaxOp(OpKind::kLogSoftmax, /*log_softmax=*/true, x, mask);
}

}  // namespace attnlab
