// layer_norm over the last dim, on oneDNN layer normalization.
//
// x: [..., C] is viewed as a contiguous [rows, C] matrix; gamma, beta: [C].
// y[r, c] = (x[r, c] - mean[r]) / sqrt(variance[r] + epsilon) * gamma[c] + beta[c], with
// the biased variance (divided by C), as PyTorch. The forward keeps mean and variance
// ([rows] each) for the backward, so the backward does not recompute the statistics.
#include <algorithm>
#include <cmath>

#include "framework/autograd/node.h"
#include "framework/backend/dnnl/dnnl_backend.h"
#include "framework/ops/ops.h"
#include "framework/parallel/parallel_for.h"
#include "framework/profiler/profiler.h"

namespace attnlab {
namespace {

// dgamma[c] = sum_r dy[r, c] * (x[r, c] - mean[r]) / sqrt(variance[r] + eps),
// dbeta[c] = sum_r dy[r, c]. Parallel over blocks of columns; each column is summed in
// row order, so the result is the same on any number of threads (oneDNN's own
// reduction splits rows across threads).
void ScaleShiftGradients(const float* x, const float* dy, const float* mean, const float* variance,
                         int64_t rows, int64_t channels, float epsilon, float* grad_gamma,
                         float* grad_beta) {
  constexpr int64_t kColumnBlock = 64;
  const int64_t blocks = (channels + kColumnBlock - 1) / kColumnBlock;
  ParallelFor(blocks, 1, [&](int64_t begin, int64_t end) {
    for (int64_t block = begin; block < end; ++block) {
      const int64_t c0 = block * kColumnBlock, c1 = std::min(channels, c0 + kColumnBlock);
      for (int64_t c = c0; c < c1; ++c) grad_gamma[c] = grad_beta[c] = 0.0f;
      for (int64_t r = 0; r < rows; ++r) {
        const float inverse_std = 1.0f / std::sqrt(variance[r] + epsilon);
        const float* x_row = x + r * channels;
        const float* dy_row = dy + r * channels;
        for (int64_t c = c0; c < c1; ++c) {
          grad_gamma[c] += dy_row[c] * (x_row[c] - mean[r]) * inverse_std;
          grad_beta[c] += dy_row[c];
        }
      }
    }
  });
}

}  // namespace

Tensor LayerNorm(const Tensor& x, const Tensor& gamma, const Tensor& beta, float epsilon) {
  profiler::OpScope profile(OpKind::kLayerNorm, {&x, &gamma, &beta});
  ATTNLAB_CHECK(x.defined() && gamma.defined() && beta.defined(),
                "layer_norm: x, gamma and beta must all be defined, got ", x.Describe(), ", ",
                gamma.Describe(), " and ", beta.Describe());
  ATTNLAB_CHECK(
      x.dtype() == DType::kF32 && gamma.dtype() == DType::kF32 && beta.dtype() == DType::kF32,
      "layer_norm: expects f32, got ", x.Describe(), ", ", gamma.Describe(), " and ",
      beta.Describe());
  ATTNLAB_CHECK(x.rank() >= 1, "layer_norm: needs at least one dim, got ", x.Describe());
  const int64_t channels = x.size(-1);
  ATTNLAB_CHECK(gamma.shape() == Shape{channels} && beta.shape() == Shape{channels},
                "layer_norm: gamma ", gamma.Describe(), " and beta ", beta.Describe(),
                " must be [C] for input ", x.Describe());
  ATTNLAB_CHECK(epsilon >= 0.0f, "layer_norm: epsilon must be >= 0, got ", epsilon);
  const int64_t rows = channels == 0 ? 0 : x.numel() / channels;

  // Not recorded: the node's inputs are x, gamma and beta themselves, and the gradients
  // we hand back are contiguous tensors of their shapes.
  const Tensor input = Contiguous(x.detach());
  const Tensor scale = Contiguous(gamma.detach());
  const Tensor shift = Contiguous(beta.detach());
  Tensor out = Tensor::Empty(x.shape());
  Tensor mean = Tensor::Empty({rows});
  Tensor variance = Tensor::Empty({rows});
  dnnl_backend::LayerNormForward(input.data<float>(), scale.data<float>(), shift.data<float>(),
                                 out.data<float>(), mean.data<float>(), variance.data<float>(),
                                 rows, channels, epsilon);

  if (autograd::ShouldRecord({&x, &gamma, &beta})) {
    // dx from oneDNN; dgamma and dbeta from our fixed-order column sums.
    autograd::Record(
        OpKind::kLayerNorm, out, {&x, &gamma, &beta},
        [input, scale, mean, variance, rows, channels, epsilon](const Tensor& grad,
                                                                autograd::GradientSink& sink) {
          const Tensor grad_output = Contiguous(grad);
          if (sink.NeedsGrad(0)) {
            // d(normalise(x) * gamma)/dx = normalise'(x) applied to dy * gamma.
            const Tensor scaled_grad = Mul(grad_output, scale);
            Tensor grad_input = Tensor::Empty(input.shape());
            dnnl_backend::LayerNormBackward(input.data<float>(), scaled_grad.data<float>(),
                                            mean.data<float>(), variance.data<float>(),
                                            grad_input.data<float>(), rows, channels, epsilon);
            sink.Add(0, grad_input);
          }
          if (sink.NeedsGrad(1) || sink.NeedsGrad(2)) {
            Tensor grad_gamma = Tensor::Empty({channels});
            Tensor grad_beta = Tensor::Empty({channels});
            ScaleShiftGradients(input.data<float>(), grad_output.data<float>(), mean.data<float>(),
                                variance.data<float>(), rows, channels, epsilon,
                                grad_gamma.data<float>(), grad_beta.data<float>());
            if (sink.NeedsGrad(1)) sink.Add(1, grad_gamma);
            if (sink.NeedsGrad(2)) sink.Add(2, grad_beta);
          }
        });
  }
  return out;
}

}  // namespace attnlab
