// The nine eltwise activations: forward against the closed-form formula evaluated in
// double, gradients by finite differences, for odd shapes, size-1 dims, a scalar and
// strided inputs; plus the dtype error and the elu alpha check.
// The plain gradient checks (and 1-vs-2-thread checks) of these ops are cases in the
// table of op cases, op_cases.cc.
#include <cmath>
#include <functional>
#include <numbers>
#include <ostream>
#include <string>
#include <vector>

#include "framework/autograd/grad_mode.h"
#include "framework/ops/ops.h"
#include "framework/random/generator.h"
#include "gtest/gtest.h"
#include "tests/support/gradcheck.h"

namespace attnlab {
namespace {

using testing::AllClose;
using testing::GradCheck;
using testing::RandomInput;

constexpr double kEluAlpha = 0.7;

// Inputs in [-2, -0.1] U [0.1, 2]: relu and elu (alpha != 1) have a kink at 0, and the
// finite-difference step (3e-3) must not straddle it.
Tensor AwayFromZero(const Shape& shape, uint64_t seed) {
  std::vector<float> values = RandomInput(shape, seed, -1.9f, 1.9f).ToFloats();
  for (float& value : values) value += value < 0.0f ? -0.1f : 0.1f;
  Tensor t = Tensor::FromFloats(values, shape);
  t.set_requires_grad(true);
  return t;
}
// Inputs in [0.5, 2]: the domain of log and sqrt, away from their singularity at 0.
Tensor Positive(const Shape& shape, uint64_t seed) { return RandomInput(shape, seed, 0.5f, 2.0f); }
Tensor Symmetric(const Shape& shape, uint64_t seed) {
  return RandomInput(shape, seed, -2.0f, 2.0f);
}

struct ActivationCase {
  std::string name;
  std::function<Tensor(const Tensor&)> op;
  std::function<double(double)> reference;
  std::function<Tensor(const Shape&, uint64_t)> make_input;
};

std::vector<ActivationCase> AllActivations() {
  const double sqrt_two_over_pi = std::sqrt(2.0 / std::numbers::pi);
  return {
      {"relu", Relu, [](double x) { return x > 0.0 ? x : 0.0; }, AwayFromZero},
      {"gelu_erf", GeluErf, [](double x) { return 0.5 * x * (1.0 + std::erf(x / std::sqrt(2.0))); },
       Symmetric},
      {"gelu_tanh", GeluTanh,
       [sqrt_two_over_pi](double x) {
         return 0.5 * x * (1.0 + std::tanh(sqrt_two_over_pi * (x + 0.044715 * x * x * x)));
       },
       Symmetric},
      {"tanh", Tanh, [](double x) { return std::tanh(x); }, Symmetric},
      {"sigmoid", Sigmoid, [](double x) { return 1.0 / (1.0 + std::exp(-x)); }, Symmetric},
      {"exp", Exp, [](double x) { return std::exp(x); }, Symmetric},
      {"log", Log, [](double x) { return std::log(x); }, Positive},
      {"sqrt", Sqrt, [](double x) { return std::sqrt(x); }, Positive},
      {"elu", [](const Tensor& x) { return Elu(x, static_cast<float>(kEluAlpha)); },
       [](double x) { return x > 0.0 ? x : kEluAlpha * (std::exp(x) - 1.0); }, AwayFromZero},
  };
}

// Names the case in gtest's messages instead of dumping its bytes.
void PrintTo(const ActivationCase& c, std::ostream* os) { *os << c.name; }

std::vector<float> ApplyReference(const ActivationCase& c, const Tensor& x) {
  std::vector<float> values = x.ToFloats();
  for (float& value : values) value = static_cast<float>(c.reference(value));
  return values;
}

const std::vector<Shape>& TestShapes() {
  static const std::vector<Shape>* shapes =
      new std::vector<Shape>{{3, 7}, {2, 3, 5}, {1, 1}, {4, 1, 3}, {}, {1000}};
  return *shapes;
}

class ActivationTest : public ::testing::TestWithParam<ActivationCase> {};

TEST_P(ActivationTest, ForwardMatchesFormula) {
  const ActivationCase& c = GetParam();
  uint64_t seed = 1;
  for (const Shape& shape : TestShapes()) {
    const Tensor x = c.make_input(shape, seed++);
    const Tensor y = c.op(x);
    ASSERT_EQ(y.shape(), shape);
    // oneDNN's vectorised exp/erf/tanh are accurate to a few ulp; 1e-5 of max(1, |y|).
    EXPECT_TRUE(AllClose(y, ApplyReference(c, x), 1e-5)) << c.name << " " << x.Describe();
  }
}

TEST_P(ActivationTest, StridedInputIsHandled) {
  // A column window (narrow) of a wider matrix reaches the op non-contiguous; the result
  // and gradient are those of the dense copy.
  const ActivationCase& c = GetParam();
  const Tensor base = c.make_input({3, 9}, 7);
  const Tensor view = base.narrow(1, 2, 5);
  ASSERT_FALSE(view.is_contiguous());
  const Tensor y = c.op(view);
  EXPECT_TRUE(y.is_contiguous());
  EXPECT_TRUE(AllClose(y, ApplyReference(c, view), 1e-5)) << c.name;
  EXPECT_TRUE(GradCheck([&](const std::vector<Tensor>& x) { return c.op(x[0].narrow(1, 2, 5)); },
                        {c.make_input({3, 9}, 8)}))
      << c.name;
}

TEST_P(ActivationTest, NoGraphWithoutRequiresGradOrUnderNoGrad) {
  const ActivationCase& c = GetParam();
  Tensor x = c.make_input({2, 3}, 9);
  {
    NoGradGuard no_grad;
    EXPECT_FALSE(c.op(x).requires_grad());
  }
  EXPECT_TRUE(c.op(x).requires_grad());
  x.set_requires_grad(false);
  EXPECT_FALSE(c.op(x).requires_grad());
}

TEST_P(ActivationTest, RejectsNonF32WithOpNameAndShape) {
  const ActivationCase& c = GetParam();
  const std::vector<int32_t> ids = {1, 2, 3, 4, 5, 6};
  const Tensor x = Tensor::FromInts(ids, {2, 3});
  try {
    c.op(x);
    FAIL() << c.name << ": expected attnlab::Error";
  } catch (const Error& error) {
    const std::string message = error.what();
    EXPECT_NE(message.find(c.name), std::string::npos) << message;
    EXPECT_NE(message.find("i32[2, 3]"), std::string::npos) << message;
  }
}

INSTANTIATE_TEST_SUITE_P(Activation, ActivationTest, ::testing::ValuesIn(AllActivations()),
                         [](const ::testing::TestParamInfo<ActivationCase>& info) {
                           return info.param.name;
                         });

TEST(ActivationEluTest, DefaultAlphaIsOne) {
  const Tensor x = Tensor::FromFloats(std::vector<float>{-1.0f, 0.5f}, {2});
  EXPECT_TRUE(AllClose(Elu(x), {static_cast<float>(std::exp(-1.0) - 1.0), 0.5f}, 1e-6));
}

TEST(ActivationEluTest, NegativeAlphaThrows) {
  EXPECT_THROW(Elu(Tensor::Zeros({2}), -0.5f), Error);
}

TEST(ActivationEdgeTest, EmptyTensorGivesEmptyResultAndGradient) {
  Tensor x = Tensor::Zeros({0, 3});
  x.set_requires_grad(true);
  const Tensor y = Relu(x);
  EXPECT_EQ(y.shape(), (Shape{0, 3}));
  Sum(y).backward();
  ASSERT_TRUE(x.grad().defined());
  EXPECT_EQ(x.grad().shape(), (Shape{0, 3}));
}

TEST(ActivationEdgeTest, ReluGradientIsZeroForNegativeAndOneForPositive) {
  Tensor x = Tensor::FromFloats(std::vector<float>{-2.0f, -0.5f, 0.5f, 3.0f}, {4});
  x.set_requires_grad(true);
  Sum(Relu(x)).backward();
  EXPECT_TRUE(AllClose(x.grad(), {0.0f, 0.0f, 1.0f, 1.0f}, 0.0));
}

}  // namespace
}  // namespace attnlab
