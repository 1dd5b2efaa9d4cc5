// The nine eltwise activations: forward against the closed-form formula evaluated in
// double, gradients by finite differences, for odd shapes, size-1 dims, a scalar and
// strided inputs; plus the dtype error and the elu alpha check.
// The activations, their formulas and how their inputs are drawn come from the table of
// op cases (op_cases.cc), which also holds their plain gradient and 1-vs-2-thread checks.
#include <cmath>
#include <string>
#include <vector>

#include "framework/autograd/grad_mode.h"
#include "framework/ops/ops.h"
#include "gtest/gtest.h"
#include "tests/framework/op_cases.h"
#include "tests/support/gradcheck.h"

namespace attnlab {
namespace {

using testing::Activation;
using testing::AllActivations;
using testing::AllClose;
using testing::DrawInput;
using testing::GradCheck;

// An input for the activation's formula, drawn as the table of op cases draws it.
Tensor InputFor(const Activation& activation, const Shape& shape, uint64_t seed) {
  return DrawInput(activation.draw(shape), seed);
}

std::vector<float> ApplyReference(const Activation& c, const Tensor& x) {
  std::vector<float> values = x.ToFloats();
  for (float& value : values) value = static_cast<float>(c.formula(value));
  return values;
}

const std::vector<Shape>& TestShapes() {
  static const std::vector<Shape>* shapes =
      new std::vector<Shape>{{3, 7}, {2, 3, 5}, {1, 1}, {4, 1, 3}, {}, {1000}};
  return *shapes;
}

class ActivationTest : public ::testing::TestWithParam<Activation> {};

TEST_P(ActivationTest, ForwardMatchesFormula) {
  const Activation& c = GetParam();
  uint64_t seed = 1;
  for (const Shape& shape : TestShapes()) {
    const Tensor x = InputFor(c, shape, seed++);
    const Tensor y = c.apply(x);
    ASSERT_EQ(y.shape(), shape);
    // oneDNN's vectorised exp/erf/tanh are accurate to a few ulp; 1e-5 of max(1, |y|).
    EXPECT_TRUE(AllClose(y, ApplyReference(c, x), 1e-5)) << c.op << " " << x.Describe();
  }
}

TEST_P(ActivationTest, StridedInputIsHandled) {
  // A column window (narrow) of a wider matrix reaches the op non-contiguous; the result
  // and gradient are those of the dense copy.
  const Activation& c = GetParam();
  const Tensor base = InputFor(c, {3, 9}, 7);
  const Tensor view = base.narrow(1, 2, 5);
  ASSERT_FALSE(view.is_contiguous());
  const Tensor y = c.apply(view);
  EXPECT_TRUE(y.is_contiguous());
  EXPECT_TRUE(AllClose(y, ApplyReference(c, view), 1e-5)) << c.op;
  EXPECT_TRUE(GradCheck([&](const std::vector<Tensor>& x) { return c.apply(x[0].narrow(1, 2, 5)); },
                        {InputFor(c, {3, 9}, 8)}))
      << c.op;
}

TEST_P(ActivationTest, NoGraphWithoutRequiresGradOrUnderNoGrad) {
  const Activation& c = GetParam();
  Tensor x = InputFor(c, {2, 3}, 9);
  {
    NoGradGuard no_grad;
    EXPECT_FALSE(c.apply(x).requires_grad());
  }
  EXPECT_TRUE(c.apply(x).requires_grad());
  x.set_requires_grad(false);
  EXPECT_FALSE(c.apply(x).requires_grad());
}

TEST_P(ActivationTest, RejectsNonF32WithOpNameAndShape) {
  const Activation& c = GetParam();
  const std::vector<int32_t> ids = {1, 2, 3, 4, 5, 6};
  const Tensor x = Tensor::FromInts(ids, {2, 3});
  try {
    c.apply(x);
    FAIL() << c.op << ": expected attnlab::Error";
  } catch (const Error& error) {
    const std::string message = error.what();
    EXPECT_NE(message.find(c.op), std::string::npos) << message;
    EXPECT_NE(message.find("i32[2, 3]"), std::string::npos) << message;
  }
}

INSTANTIATE_TEST_SUITE_P(Activation, ActivationTest, ::testing::ValuesIn(AllActivations()),
                         [](const ::testing::TestParamInfo<Activation>& info) {
                           return std::string(info.param.op);
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
