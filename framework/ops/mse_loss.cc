// Mean squared error, forward and backward.
//
// With d = prediction - target over n elements, loss = sum(d^2) / n, so
//   dL/dprediction = 2 d / n * grad,   dL/dtarget = -2 d / n * grad.
// Forward saves only d (one tensor, whichever inputs need a gradient). The squares are
// summed in double per fixed-size chunk and the chunk totals added in chunk order, so
// the loss is bit-identical on any thread count (see parallel_for.h).
#include <vector>

#include "framework/autograd/node.h"
#include "framework/ops/ops.h"
#include "framework/parallel/parallel_for.h"
#include "framework/profiler/profiler.h"

namespace attnlab {
namespace {

constexpr int64_t kMseGrain = 1 << 14;  // elements per chunk

// difference[i] = prediction[i] - target[i]; returns sum_i difference[i]^2 in double.
// All three contiguous with `count` elements.
double DifferenceAndSquaredSum(const float* prediction, const float* target, float* difference,
                               int64_t count) {
  const int64_t chunks = (count + kMseGrain - 1) / kMseGrain;
  std::vector<double> chunk_totals(chunks, 0.0);
  ParallelFor(count, kMseGrain, [&](int64_t begin, int64_t end) {
    double total = 0.0;
    for (int64_t i = begin; i < end; ++i) {
      difference[i] = prediction[i] - target[i];
      total += static_cast<double>(difference[i]) * difference[i];
    }
    chunk_totals[begin / kMseGrain] = total;
  });
  double total = 0.0;
  for (const double chunk_total : chunk_totals) total += chunk_total;
  return total;
}

// out[i] = scale * difference[i], both contiguous with `count` elements.
void ScaleDifference(const float* difference, float scale, float* out, int64_t count) {
  ParallelFor(count, kMseGrain, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) out[i] = scale * difference[i];
  });
}

// Backward: d(loss)/d(prediction) = 2 d / n * grad_loss, d(loss)/d(target) = the negative;
// `difference` is d, contiguous.
void MseLossBackward(const Tensor& difference, float grad_loss, autograd::GradientSink& sink) {
  const int64_t count = difference.numel();
  const float scale = count > 0 ? 2.0f * grad_loss / static_cast<float>(count) : 0.0f;
  for (const size_t input : {size_t{0}, size_t{1}}) {
    if (!sink.NeedsGrad(input)) continue;
    Tensor gradient = Tensor::Empty(difference.shape());
    ScaleDifference(difference.data<float>(), input == 0 ? scale : -scale, gradient.data<float>(),
                    count);
    sink.Add(input, gradient);
  }
}

}  // namespace

Tensor MseLoss(const Tensor& prediction, const Tensor& target) {
  profiler::OpScope profile(OpKind::kMseLoss, {&prediction, &target});
  ATTNLAB_CHECK(prediction.defined() && target.defined(), "mse_loss: undefined input");
  ATTNLAB_CHECK(prediction.dtype() == DType::kF32 && target.dtype() == DType::kF32,
                "mse_loss: expects f32 inputs, got prediction ", prediction.Describe(),
                " and target ", target.Describe());
  ATTNLAB_CHECK(prediction.shape() == target.shape(), "mse_loss: prediction ",
                prediction.Describe(), " and target ", target.Describe(),
                " must have the same shape");
  const Tensor prediction_data =
      prediction.is_contiguous() ? prediction.detach() : prediction.Clone();
  const Tensor target_data = target.is_contiguous() ? target.detach() : target.Clone();
  const int64_t count = prediction.numel();
  Tensor difference = Tensor::Empty(prediction.shape());  // prediction - target
  const double squared_sum = DifferenceAndSquaredSum(
      prediction_data.data<float>(), target_data.data<float>(), difference.data<float>(), count);
  Tensor out = Tensor::Scalar(count > 0 ? static_cast<float>(squared_sum / count) : 0.0f);

  if (autograd::ShouldRecord({&prediction, &target})) {
    autograd::Record(OpKind::kMseLoss, out, {&prediction, &target},
                     [difference](const Tensor& grad, autograd::GradientSink& sink) {
                       MseLossBackward(difference, grad.item(), sink);
                     });
  }
  return out;
}

}  // namespace attnlab
