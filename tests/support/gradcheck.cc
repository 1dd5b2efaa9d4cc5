#include "tests/support/gradcheck.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "framework/autograd/grad_mode.h"
#include "framework/ops/ops.h"
#include "framework/random/generator.h"

namespace attnlab::testing {
namespace {

// sum(out * projection) in double.
double Project(const Tensor& out, const std::vector<float>& projection) {
  const std::vector<float> values = out.ToFloats();
  double total = 0.0;
  for (size_t i = 0; i < values.size(); ++i)
    total += static_cast<double>(values[i]) * projection[i];
  return total;
}

}  // namespace

Tensor RandomInput(const Shape& shape, uint64_t seed, float low, float high) {
  Generator generator(seed);
  Tensor t = RandomUniform(shape, low, high, generator);
  t.set_requires_grad(true);
  return t;
}

::testing::AssertionResult GradCheck(const TensorFunction& function, std::vector<Tensor> inputs,
                                     const GradCheckOptions& options) {
  for (Tensor& input : inputs) {
    if (input.requires_grad()) input.zero_grad();
  }
  const Tensor out = function(inputs);
  Generator projection_generator(12345);
  const Tensor projection_tensor = RandomUniform(out.shape(), -1.0f, 1.0f, projection_generator);
  const std::vector<float> projection = projection_tensor.ToFloats();
  Sum(Mul(out, projection_tensor)).backward();

  NoGradGuard no_grad;
  for (size_t which = 0; which < inputs.size(); ++which) {
    Tensor& input = inputs[which];
    if (!input.requires_grad()) continue;
    if (!input.grad().defined()) {
      return ::testing::AssertionFailure()
             << "input " << which << " " << input.Describe() << " received no gradient";
    }
    const std::vector<float> analytic = input.grad().ToFloats();
    float* data = input.data<float>();
    const int64_t count = input.numel();
    const int64_t checked = options.max_elements_per_input > 0
                                ? std::min(count, options.max_elements_per_input)
                                : count;
    for (int64_t j = 0; j < checked; ++j) {
      const int64_t i = j * count / checked;  // evenly spaced, deterministic
      const float original = data[i];
      data[i] = original + static_cast<float>(options.epsilon);
      const double plus = Project(function(inputs), projection);
      data[i] = original - static_cast<float>(options.epsilon);
      const double minus = Project(function(inputs), projection);
      data[i] = original;
      const double numeric = (plus - minus) / (2.0 * options.epsilon);
      const double error = std::abs(numeric - analytic[i]);
      if (error > options.absolute_tolerance + options.relative_tolerance * std::abs(numeric)) {
        return ::testing::AssertionFailure()
               << "input " << which << " " << input.Describe() << " element " << i << ": analytic "
               << analytic[i] << " vs numeric " << numeric << " (error " << error << ", tolerance "
               << options.absolute_tolerance << " + " << options.relative_tolerance
               << " * |numeric|)";
      }
    }
  }
  return ::testing::AssertionSuccess();
}

::testing::AssertionResult AllClose(const Tensor& actual, const std::vector<float>& expected,
                                    double tolerance) {
  const std::vector<float> values = actual.ToFloats();
  if (values.size() != expected.size()) {
    return ::testing::AssertionFailure() << actual.Describe() << " has " << values.size()
                                         << " elements, expected " << expected.size();
  }
  for (size_t i = 0; i < values.size(); ++i) {
    const double scale = std::max(1.0, std::abs(static_cast<double>(expected[i])));
    const bool both_nan = std::isnan(values[i]) && std::isnan(expected[i]);
    const bool same_inf = std::isinf(values[i]) && values[i] == expected[i];
    if (!both_nan && !same_inf && !(std::abs(values[i] - expected[i]) <= tolerance * scale)) {
      return ::testing::AssertionFailure()
             << "element " << i << ": " << values[i] << " vs expected " << expected[i]
             << " (tolerance " << tolerance << ")";
    }
  }
  return ::testing::AssertionSuccess();
}

::testing::AssertionResult AllClose(const Tensor& actual, const Tensor& expected,
                                    double tolerance) {
  if (actual.shape() != expected.shape()) {
    return ::testing::AssertionFailure()
           << "shape " << actual.Describe() << " vs " << expected.Describe();
  }
  return AllClose(actual, expected.ToFloats(), tolerance);
}

}  // namespace attnlab::testing
