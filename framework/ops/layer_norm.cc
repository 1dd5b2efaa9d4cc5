// layer_norm over the last dim, on oneDNN layer normalization.
//
// x: [..., C] is viewed as a contiguous [rows, C] matrix; gamma, beta: [C].
// y[r, c] = (x[r, c] - mean[r]) / sqrt(variance[r] + epsilon) * gamma[c] + beta[c], with
// the biased variance (divided by C), as PyTorch. The forward keeps mean and variance
// ([rows] each) for the backward, so the backward does not recompute the statistics.
#include "framework/autograd/node.h"
#include "framework/backend/dnnl/dnnl_backend.h"
#include "framework/ops/ops.h"

namespace attnlab {

Tensor LayerNorm(const Tensor& x, const Tensor& gamma, const Tensor& beta, float epsilon) {
  ATTNLAB_CHECK(x.defined() && gamma.defined() && beta.defined(),
                "layer_norm: x, gamma and beta must all be defined, got ", x.Describe(), ", ",
                gamma.Describe(), " and ", beta.Describe());
  ATTNLAB_CHECK(x.dtype() == DType::kF32 && gamma.dtype() == DType::kF32 &&
                    beta.dtype() == DType::kF32,
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
    // oneDNN computes dx, dgamma and dbeta in one call, so all three get buffers; those
    // no input wants are scratch and are dropped.
    autograd::Record(
        OpKind::kLayerNorm, out, {&x, &gamma, &beta},
        [input, scale, mean, variance, rows, channels, epsilon](const Tensor& grad,
                                                                autograd::GradientSink& sink) {
          const Tensor grad_output = Contiguous(grad);
          Tensor grad_input = Tensor::Empty(input.shape());
          Tensor grad_gamma = Tensor::Empty({channels});
          Tensor grad_beta = Tensor::Empty({channels});
          if (rows == 0) {  // oneDNN is not called: no rows contribute to dgamma, dbeta
            grad_gamma.Fill(0.0f);
            grad_beta.Fill(0.0f);
          }
          dnnl_backend::LayerNormBackward(input.data<float>(), grad_output.data<float>(),
                                          scale.data<float>(), mean.data<float>(),
                                          variance.data<float>(), grad_input.data<float>(),
                                          grad_gamma.data<float>(), grad_beta.data<float>(),
                                          rows, channels, epsilon);
          if (sink.NeedsGrad(0)) sink.Add(0, grad_input);
          if (sink.NeedsGrad(1)) sink.Add(1, grad_gamma);
          if (sink.NeedsGrad(2)) sink.Add(2, grad_beta);
        });
  }
  return out;
}

}  // namespace attnlab
