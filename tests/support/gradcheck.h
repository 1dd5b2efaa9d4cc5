// Test support: gradient checks by central finite differences, random inputs, and
// element-wise comparisons with a stated tolerance.
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include "framework/tensor/tensor.h"
#include "gtest/gtest.h"

namespace attnlab::testing {

struct GradCheckOptions {
  double epsilon = 3e-3;  // finite-difference step
  double relative_tolerance = 2e-2;
  double absolute_tolerance = 2e-3;
  // Each input is checked at most at this many elements, evenly spaced (always including
  // the first), so checks of whole models stay fast; the analytic gradient of every
  // element is still computed. 0 checks every element.
  int64_t max_elements_per_input = 48;
};

using TensorFunction = std::function<Tensor(const std::vector<Tensor>&)>;

// Checks d(sum(f(inputs) * R))/d(input) for every input that requires grad, where R is a
// fixed random projection (so every output element contributes), against central
// differences evaluated in double precision. Reports the worst element on failure.
::testing::AssertionResult GradCheck(const TensorFunction& function, std::vector<Tensor> inputs,
                                     const GradCheckOptions& options = {});

// A leaf tensor of uniform values in [low, high) from a fixed seed; requires grad.
Tensor RandomInput(const Shape& shape, uint64_t seed, float low = -1.0f, float high = 1.0f);

// Element-wise |actual - expected| <= tolerance * max(1, |expected|).
::testing::AssertionResult AllClose(const Tensor& actual, const std::vector<float>& expected,
                                    double tolerance = 1e-5);
::testing::AssertionResult AllClose(const Tensor& actual, const Tensor& expected,
                                    double tolerance = 1e-5);

}  // namespace attnlab::testing
