// The table of op cases: each differentiable op's test cases declared once (shapes, how
// the inputs are drawn so that no finite difference straddles a kink, tolerances, an
// optional naive forward, whether bf16 applies), and run by op_cases_test.cc through
// every check: gradient against central differences, 1-vs-2-thread bit identity of
// forward and backward, forward against the naive reference, and bf16 against f32.
// op_coverage_test.cc derives gradient-check coverage from this table.
#pragma once

#include <cstdint>
#include <functional>
#include <ostream>
#include <string>
#include <string_view>
#include <vector>

#include "framework/tensor/tensor.h"
#include "tests/support/gradcheck.h"

namespace attnlab::testing {

// How one input of a case is drawn. Uniform in [low, high) unless `distinct_multiplier`
// is set; then the values are evenly spaced in [-1, 1) and permuted by that multiplier
// (coprime with the element count), so no two are tied (ties are max's kink).
struct InputSpec {
  Shape shape;
  float low = -1.0f;
  float high = 1.0f;
  // Values within this distance of 0 are pushed out by it: the kink of relu and elu.
  float away_from_zero = 0.0f;
  int64_t distinct_multiplier = 0;
  bool requires_grad = true;
};

// Uniform in [-1, 1).
InputSpec Uniform(const Shape& shape);
InputSpec Uniform(const Shape& shape, float low, float high);
// In [0.5, 2): the domain of log, sqrt and negative powers, and safe divisors.
InputSpec Positive(const Shape& shape);
// In [-2, -0.1] U [0.1, 2]: away from the kink at 0.
InputSpec AwayFromZero(const Shape& shape);
// Distinct values, no ties.
InputSpec Distinct(const Shape& shape, int64_t multiplier);
// Uniform in [-1, 1), not requiring grad: a constant operand.
InputSpec Constant(const Shape& shape);

using NaiveForward = std::function<std::vector<float>(const std::vector<Tensor>&)>;

struct OpCase {
  std::string_view op;  // the op's name in kOpTable (framework/ops/op_kind.h)
  std::string variant;  // what sets this case apart from the op's others: shapes, arguments
  std::vector<InputSpec> inputs;
  TensorFunction build;        // the op applied to the drawn inputs
  NaiveForward naive_forward;  // empty when the case has no naive reference
  double forward_tolerance = 1e-5;
  GradCheckOptions gradient;
  // Matmul-based ops: inside MixedPrecision(kBF16) forward and gradients stay within
  // bf16_tolerance of f32.
  bool bf16_applies = false;
  double bf16_tolerance = 3e-2;

  // "<op>_<variant>", letters, digits and underscores: the gtest parameter name.
  std::string Name() const;
};

void PrintTo(const OpCase& op_case, std::ostream* os);

// Every case, in table order.
const std::vector<OpCase>& AllOpCases();

// The case's inputs, drawn from a seed derived from its name (so a case keeps its inputs
// when the table around it changes). Fresh leaves every call.
std::vector<Tensor> DrawInputs(const OpCase& op_case);

// One input drawn as `spec` says, from `seed`.
Tensor DrawInput(const InputSpec& spec, uint64_t seed);

// The nine eltwise activations, each with its closed-form formula (evaluated in double)
// and how its input is drawn (away from the kink of relu and elu, inside the domain of log
// and sqrt). The table's activation cases and activation_test.cc's checks both use it.
struct Activation {
  std::string_view op;  // the op's name, as its errors give it
  std::function<Tensor(const Tensor&)> apply;
  std::function<double(double)> formula;
  InputSpec (*draw)(const Shape&);
};

void PrintTo(const Activation& activation, std::ostream* os);

const std::vector<Activation>& AllActivations();

}  // namespace attnlab::testing
