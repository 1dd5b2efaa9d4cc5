// layer_norm over the last dim: the forward on oneDNN layer normalization, the backward
// one pass of our own.
//
// x: [..., C] is viewed as a contiguous [rows, C] matrix; gamma, beta: [C].
// y[r, c] = (x[r, c] - mean[r]) / sqrt(variance[r] + epsilon) * gamma[c] + beta[c], with
// the biased variance (divided by C), as PyTorch. The forward keeps mean and variance
// ([rows] each) for the backward, so the backward does not recompute the statistics.
//
// What else backward keeps: the output y, not the input x, when gamma and beta allow
// rebuilding xhat = (y - beta) / gamma accurately (every |gamma_c| >= 1/16 and >=
// |beta_c| / 16: y's rounding then puts the rebuilt xhat within about
// 1.2e-7 * (|xhat| + 16) of the forward's, ~1e-7 usually).
// y is what the next op keeps anyway (a Linear's input), so layer norm then holds no
// [rows, C] tensor of its own: 30 fewer [tokens, d_model] tensors in a 6+6-layer
// Transformer. Otherwise (a channel's gamma near 0, which the division would amplify)
// it keeps x, exactly. Apex's "memory-efficient" layer norm does the same rebuild.
//
// Backward, with xhat = (x - mean) * rstd, rstd = 1 / sqrt(variance + epsilon), g = dy * gamma:
//   dx = rstd * (g - mean_c(g) - xhat * mean_c(g * xhat)),
//   dgamma = sum_r dy * xhat, dbeta = sum_r dy.
// One pass reads x and dy once per row and writes dx, where oneDNN's backward_data (which
// cannot take dgamma and dbeta out in a fixed order) needed dy * gamma materialised and a
// second pass over x and dy for the column sums: 3x the memory traffic. The column sums
// are added per fixed chunk of rows and the chunks' partials in chunk order, so the
// result does not depend on the thread count.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "framework/autograd/node.h"
#include "framework/backend/dnnl/dnnl_backend.h"
#include "framework/ops/ops.h"
#include "framework/parallel/chunk_partials.h"
#include "framework/parallel/parallel_for.h"
#include "framework/profiler/profiler.h"

namespace attnlab {
namespace {

using Vector = float __attribute__((vector_size(64)));  // 16 floats
constexpr int64_t kLanes = 16;
constexpr int64_t kRowsPerChunk = 32;  // rows whose column sums one partial holds

Vector Load(const float* p) {
  Vector v;
  std::memcpy(&v, p, sizeof(v));
  return v;
}
void Store(float* p, const Vector& v) { std::memcpy(p, &v, sizeof(v)); }
float LaneSum(const Vector& v) {
  float total = 0.0f;
  for (int64_t lane = 0; lane < kLanes; ++lane) total += v[lane];
  return total;
}

// Whether xhat may be rebuilt from the output (above): every |gamma_c| >= 1/16 and
// >= |beta_c| / 16, all finite.
bool CanRebuildFromOutput(const float* gamma, const float* beta, int64_t channels) {
  constexpr float kLargestRatio = 16.0f;
  for (int64_t c = 0; c < channels; ++c) {
    const float limit = std::max(1.0f, std::abs(beta[c])) / kLargestRatio;
    if (!(std::abs(gamma[c]) >= limit) || !std::isfinite(gamma[c])) return false;
  }
  return true;
}

// What the backward reads for xhat[r, c]: the saved input, xhat = (x - mean) * rstd, or
// the saved output, xhat = (y - beta) * (1 / gamma).
struct SavedRows {
  const float* saved;          // x or y: [rows, C]
  const float* beta;           // null when saved is x
  const float* inverse_gamma;  // null when saved is x
};

// The backward above over the rows of chunks [begin, end): dx (when asked for) and each
// chunk's partial dgamma and dbeta ([chunks, C] each, when asked for).
void LayerNormBackwardChunks(const SavedRows& source, const float* dy, const float* gamma,
                             const float* mean, const float* variance, int64_t rows,
                             int64_t channels, float epsilon, float* dx, float* partial_gamma,
                             float* partial_beta, int64_t begin, int64_t end) {
  const bool from_output = source.beta != nullptr;
  const int64_t vector_end = channels / kLanes * kLanes;
  for (int64_t chunk = begin; chunk < end; ++chunk) {
    float* chunk_gamma = partial_gamma ? partial_gamma + chunk * channels : nullptr;
    float* chunk_beta = partial_beta ? partial_beta + chunk * channels : nullptr;
    if (chunk_gamma) std::fill(chunk_gamma, chunk_gamma + channels, 0.0f);
    if (chunk_beta) std::fill(chunk_beta, chunk_beta + channels, 0.0f);
    const int64_t last_row = std::min(rows, (chunk + 1) * kRowsPerChunk);
    for (int64_t r = chunk * kRowsPerChunk; r < last_row; ++r) {
      const float* saved_row = source.saved + r * channels;
      const float* dy_row = dy + r * channels;
      const float row_mean = mean[r], rstd = 1.0f / std::sqrt(variance[r] + epsilon);
      auto xhat_at = [&](int64_t c) {
        return from_output
                   ? (Load(saved_row + c) - Load(source.beta + c)) * Load(source.inverse_gamma + c)
                   : (Load(saved_row + c) - row_mean) * rstd;
      };
      auto xhat_scalar = [&](int64_t c) {
        return from_output ? (saved_row[c] - source.beta[c]) * source.inverse_gamma[c]
                           : (saved_row[c] - row_mean) * rstd;
      };
      Vector sum_g = {}, sum_g_xhat = {};
      float tail_g = 0.0f, tail_g_xhat = 0.0f;
      for (int64_t c = 0; c < vector_end; c += kLanes) {
        const Vector xhat = xhat_at(c), d = Load(dy_row + c);
        const Vector g = d * Load(gamma + c);
        sum_g += g;
        sum_g_xhat += g * xhat;
        if (chunk_gamma) Store(chunk_gamma + c, Load(chunk_gamma + c) + d * xhat);
        if (chunk_beta) Store(chunk_beta + c, Load(chunk_beta + c) + d);
      }
      for (int64_t c = vector_end; c < channels; ++c) {
        const float xhat = xhat_scalar(c), g = dy_row[c] * gamma[c];
        tail_g += g;
        tail_g_xhat += g * xhat;
        if (chunk_gamma) chunk_gamma[c] += dy_row[c] * xhat;
        if (chunk_beta) chunk_beta[c] += dy_row[c];
      }
      if (dx == nullptr) continue;
      const float inverse_channels = 1.0f / static_cast<float>(channels);
      const float mean_g = (LaneSum(sum_g) + tail_g) * inverse_channels;
      const float mean_g_xhat = (LaneSum(sum_g_xhat) + tail_g_xhat) * inverse_channels;
      float* dx_row = dx + r * channels;
      for (int64_t c = 0; c < vector_end; c += kLanes) {
        const Vector xhat = xhat_at(c);
        const Vector g = Load(dy_row + c) * Load(gamma + c);
        Store(dx_row + c, (g - mean_g - xhat * mean_g_xhat) * rstd);
      }
      for (int64_t c = vector_end; c < channels; ++c) {
        const float xhat = xhat_scalar(c), g = dy_row[c] * gamma[c];
        dx_row[c] = (g - mean_g - xhat * mean_g_xhat) * rstd;
      }
    }
  }
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
    // Backward keeps the output (shared with whoever reads it next) and 1 / gamma, or
    // the input; see the top of the file.
    Tensor saved = input, inverse_gamma;
    if (CanRebuildFromOutput(scale.data<float>(), shift.data<float>(), channels)) {
      saved = out.detach();
      inverse_gamma = Tensor::Empty({channels});
      for (int64_t c = 0; c < channels; ++c) {
        inverse_gamma.data<float>()[c] = 1.0f / scale.data<float>()[c];
      }
    }
    autograd::Record(
        OpKind::kLayerNorm, out, {&x, &gamma, &beta},
        [saved, inverse_gamma, scale, shift, mean, variance, rows, channels, epsilon](
            const Tensor& grad, autograd::GradientSink& sink) {
          const Tensor grad_output = Contiguous(grad);
          const int64_t chunks = (rows + kRowsPerChunk - 1) / kRowsPerChunk;
          Tensor grad_input, partial_gamma, partial_beta;
          if (sink.NeedsGrad(0)) grad_input = Tensor::Empty(saved.shape());
          if (sink.NeedsGrad(1)) partial_gamma = Tensor::Empty({chunks, channels});
          if (sink.NeedsGrad(2)) partial_beta = Tensor::Empty({chunks, channels});
          auto data = [](Tensor& t) { return t.defined() ? t.data<float>() : nullptr; };
          float* dx = data(grad_input);
          float* gamma_partials = data(partial_gamma);
          float* beta_partials = data(partial_beta);
          const SavedRows source =
              inverse_gamma.defined()
                  ? SavedRows{saved.data<float>(), shift.data<float>(), inverse_gamma.data<float>()}
                  : SavedRows{saved.data<float>(), nullptr, nullptr};
          ParallelFor(chunks, 1, [&](int64_t begin, int64_t end) {
            LayerNormBackwardChunks(source, grad_output.data<float>(), scale.data<float>(),
                                    mean.data<float>(), variance.data<float>(), rows, channels,
                                    epsilon, dx, gamma_partials, beta_partials, begin, end);
          });
          if (sink.NeedsGrad(0)) sink.Add(0, grad_input);
          if (sink.NeedsGrad(1)) {
            Tensor grad_gamma = Tensor::Empty({channels});
            SumChunkPartials(gamma_partials, chunks, channels, grad_gamma.data<float>());
            sink.Add(1, grad_gamma);
          }
          if (sink.NeedsGrad(2)) {
            Tensor grad_beta = Tensor::Empty({channels});
            SumChunkPartials(beta_partials, chunks, channels, grad_beta.data<float>());
            sink.Add(2, grad_beta);
          }
        });
  }
  return out;
}

}  // namespace attnlab
