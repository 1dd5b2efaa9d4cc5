// Binary elementwise ops and their scalar forms: forward against a naive broadcasting
// loop, gradients by finite differences, for equal, broadcast, scalar, size-1, odd-sized
// and strided (narrowed) operands; the broadcast error message; AddInPlace.
// The plain gradient checks (and 1-vs-2-thread checks) of these ops are cases in the
// table of op cases, op_cases.cc.
#include <cmath>
#include <functional>
#include <string>
#include <vector>

#include "framework/autograd/grad_mode.h"
#include "framework/ops/ops.h"
#include "gtest/gtest.h"
#include "tests/support/gradcheck.h"

namespace attnlab {
namespace {

using testing::AllClose;
using testing::GradCheck;
using testing::RandomInput;

using BinaryFloatOp = std::function<float(float, float)>;

// NumPy broadcasting done by hand: shapes aligned on the right, size-1 dims repeated.
Shape NaiveBroadcastShape(const Shape& a, const Shape& b) {
  const size_t rank = std::max(a.size(), b.size());
  Shape out(rank);
  for (size_t i = 0; i < rank; ++i) {
    const int64_t extent_a = i + a.size() >= rank ? a[i + a.size() - rank] : 1;
    const int64_t extent_b = i + b.size() >= rank ? b[i + b.size() - rank] : 1;
    out[i] = std::max(extent_a, extent_b);
  }
  return out;
}

// Row-major offset in `shape` of the element that output coordinate `coords` reads.
int64_t BroadcastSourceOffset(const Shape& shape, const Shape& coords) {
  const size_t shift = coords.size() - shape.size();
  int64_t offset = 0;
  for (size_t d = 0; d < shape.size(); ++d) {
    offset = offset * shape[d] + (shape[d] == 1 ? 0 : coords[d + shift]);
  }
  return offset;
}

// out[i] = op(a[...], b[...]) over the broadcast shape, with explicit coordinates.
std::vector<float> NaiveBinary(const Tensor& a, const Tensor& b, const BinaryFloatOp& op) {
  const Shape out_shape = NaiveBroadcastShape(a.shape(), b.shape());
  const std::vector<float> a_values = a.ToFloats(), b_values = b.ToFloats();
  std::vector<float> out(NumElements(out_shape));
  Shape coords(out_shape.size(), 0);
  for (size_t i = 0; i < out.size(); ++i) {
    int64_t rest = static_cast<int64_t>(i);
    for (int64_t d = static_cast<int64_t>(out_shape.size()) - 1; d >= 0; --d) {
      coords[d] = rest % out_shape[d];
      rest /= out_shape[d];
    }
    out[i] = op(a_values[BroadcastSourceOffset(a.shape(), coords)],
                b_values[BroadcastSourceOffset(b.shape(), coords)]);
  }
  return out;
}

// Extents as std::vector: GCC 12 warns (falsely) about an empty InlinedVector in a
// braced parameter list.
struct BroadcastCase {
  std::vector<int64_t> a_extents, b_extents;
  Shape a() const { return Shape(a_extents.begin(), a_extents.end()); }
  Shape b() const { return Shape(b_extents.begin(), b_extents.end()); }
};

class BinaryOpTest : public ::testing::TestWithParam<BroadcastCase> {};

TEST_P(BinaryOpTest, ForwardMatchesNaiveBroadcast) {
  const BroadcastCase& c = GetParam();
  const Tensor a = RandomInput(c.a(), 1), b = RandomInput(c.b(), 2);
  const Tensor positive_b = RandomInput(c.b(), 3, 0.5f, 1.5f);
  const Shape expected_shape = NaiveBroadcastShape(c.a(), c.b());
  EXPECT_EQ(Add(a, b).shape(), expected_shape);
  EXPECT_TRUE(AllClose(Add(a, b), NaiveBinary(a, b, std::plus<float>())));
  EXPECT_TRUE(AllClose(Sub(a, b), NaiveBinary(a, b, std::minus<float>())));
  EXPECT_TRUE(AllClose(Mul(a, b), NaiveBinary(a, b, std::multiplies<float>())));
  EXPECT_TRUE(AllClose(Div(a, positive_b), NaiveBinary(a, positive_b, std::divides<float>())));
  // The operators forward to the same ops.
  EXPECT_TRUE(AllClose(a + b, Add(a, b), 0.0));
  EXPECT_TRUE(AllClose(a - b, Sub(a, b), 0.0));
  EXPECT_TRUE(AllClose(a * b, Mul(a, b), 0.0));
  EXPECT_TRUE(AllClose(a / positive_b, Div(a, positive_b), 0.0));
}

TEST_P(BinaryOpTest, SwappedOperandsBroadcastToo) {
  const BroadcastCase& c = GetParam();
  const Tensor a = RandomInput(c.a(), 4), b = RandomInput(c.b(), 5);
  EXPECT_TRUE(AllClose(Sub(b, a), NaiveBinary(b, a, std::minus<float>())));
  EXPECT_TRUE(AllClose(Mul(b, a), NaiveBinary(b, a, std::multiplies<float>())));
}

INSTANTIATE_TEST_SUITE_P(
    Shapes, BinaryOpTest,
    ::testing::Values(BroadcastCase{{2, 3, 4}, {2, 3, 4}},  // equal shapes, fast path
                      BroadcastCase{{2, 3, 4}, {4}},        // trailing vector
                      BroadcastCase{{2, 1, 4}, {3, 1}},     // both sides broadcast
                      BroadcastCase{{2, 3, 4}, {3, 1}},     // inner dim broadcast
                      BroadcastCase{{5, 7}, {}},            // scalar tensor
                      BroadcastCase{{}, {3, 5}},            // scalar on the left
                      BroadcastCase{{}, {}},                // scalar with scalar
                      BroadcastCase{{1}, {1}},              // size 1
                      BroadcastCase{{1, 1}, {7}},           // size-1 dims grow
                      BroadcastCase{{7, 1, 3}, {1, 5, 1}},  // odd sizes, crossed
                      BroadcastCase{{13}, {13}}));          // odd length

TEST(BinaryOpTest, LargeBroadcastSpansSeveralChunks) {
  // More elements than one parallel chunk, with a broadcast row.
  const Tensor a = RandomInput({300, 257}, 20), b = RandomInput({257}, 21);
  EXPECT_TRUE(AllClose(Add(a, b), NaiveBinary(a, b, std::plus<float>())));
  EXPECT_TRUE(AllClose(Mul(b, a), NaiveBinary(b, a, std::multiplies<float>())));
}

TEST(BinaryOpTest, StridedInputsFromNarrow) {
  const Tensor wide_a = RandomInput({4, 9}, 30), wide_b = RandomInput({6, 5}, 31);
  const Tensor a = wide_a.narrow(1, 2, 5);  // [4, 5], row stride 9
  const Tensor b = wide_b.narrow(0, 1, 4);  // [4, 5], rows 1..4
  ASSERT_FALSE(a.is_contiguous());
  EXPECT_TRUE(AllClose(Add(a, b), NaiveBinary(a, b, std::plus<float>())));
  EXPECT_TRUE(AllClose(Mul(a, b), NaiveBinary(a, b, std::multiplies<float>())));
  // A strided column broadcast against a row.
  const Tensor column = wide_a.narrow(1, 3, 1);  // [4, 1]
  const Tensor row = RandomInput({5}, 32);
  EXPECT_TRUE(AllClose(Sub(column, row), NaiveBinary(column, row, std::minus<float>())));
  EXPECT_TRUE(AllClose(Sub(row, column), NaiveBinary(row, column, std::minus<float>())));
  EXPECT_TRUE(
      AllClose(AddScalar(a, 2.0f), NaiveBinary(a, Tensor::Scalar(2.0f), std::plus<float>())));
  EXPECT_TRUE(GradCheck(
      [](const std::vector<Tensor>& x) { return Mul(x[0].narrow(1, 2, 5), x[1].narrow(0, 1, 4)); },
      {RandomInput({4, 9}, 33), RandomInput({6, 5}, 34)}));
  EXPECT_TRUE(
      GradCheck([](const std::vector<Tensor>& x) { return Div(x[0].narrow(1, 3, 1), x[1]); },
                {RandomInput({4, 9}, 35), RandomInput({5}, 36, 0.5f, 1.5f)}));
}

TEST(BinaryOpTest, BroadcastErrorNamesBothShapes) {
  const Tensor a = Tensor::Zeros({2, 3}), b = Tensor::Zeros({4});
  for (const auto& op :
       std::vector<std::function<Tensor()>>{[&] { return Add(a, b); }, [&] { return Sub(a, b); },
                                            [&] { return Mul(b, a); }, [&] { return Div(a, b); }}) {
    try {
      op();
      ADD_FAILURE() << "expected attnlab::Error";
    } catch (const Error& error) {
      const std::string message = error.what();
      EXPECT_NE(message.find("[2, 3]"), std::string::npos) << message;
      EXPECT_NE(message.find("[4]"), std::string::npos) << message;
    }
  }
}

TEST(BinaryOpTest, IntegerInputIsAnError) {
  const std::vector<int32_t> values = {1, 2, 3};
  const Tensor ints = Tensor::FromInts(values, {3});
  EXPECT_THROW(Add(ints, Tensor::Zeros({3})), Error);
  EXPECT_THROW(MulScalar(ints, 2.0f), Error);
}

TEST(BinaryOpTest, SameInputTwiceAccumulatesBothGradients) {
  Tensor x = RandomInput({3, 2}, 40);
  Sum(Mul(x, x)).backward();  // d(sum x^2)/dx = 2x
  const std::vector<float> values = x.ToFloats();
  std::vector<float> expected;
  for (float v : values) expected.push_back(2.0f * v);
  EXPECT_TRUE(AllClose(x.grad(), expected, 1e-6));
}

// ---- Scalar forms --------------------------------------------------------------------

std::vector<float> NaiveMap(const Tensor& x, const std::function<float(float)>& map) {
  std::vector<float> out;
  for (float v : x.ToFloats()) out.push_back(map(v));
  return out;
}

TEST(ScalarOpTest, ForwardMatchesNaiveLoop) {
  const Tensor x = RandomInput({3, 5}, 50);
  const Tensor positive = RandomInput({7}, 51, 0.5f, 2.0f);
  EXPECT_TRUE(AllClose(AddScalar(x, 1.5f), NaiveMap(x, [](float v) { return v + 1.5f; })));
  EXPECT_TRUE(AllClose(MulScalar(x, -3.0f), NaiveMap(x, [](float v) { return v * -3.0f; })));
  EXPECT_TRUE(AllClose(PowScalar(x, 2.0f), NaiveMap(x, [](float v) { return v * v; })));
  EXPECT_TRUE(AllClose(PowScalar(x, 3.0f), NaiveMap(x, [](float v) { return v * v * v; })));
  EXPECT_TRUE(AllClose(PowScalar(positive, 0.5f),
                       NaiveMap(positive, [](float v) { return std::sqrt(v); })));
  EXPECT_TRUE(
      AllClose(PowScalar(positive, -1.0f), NaiveMap(positive, [](float v) { return 1.0f / v; })));
  EXPECT_TRUE(AllClose(x + 2.0f, NaiveMap(x, [](float v) { return v + 2.0f; })));
  EXPECT_TRUE(AllClose(x - 2.0f, NaiveMap(x, [](float v) { return v - 2.0f; })));
  EXPECT_TRUE(AllClose(x * 4.0f, NaiveMap(x, [](float v) { return v * 4.0f; })));
  EXPECT_TRUE(AllClose(x / 4.0f, NaiveMap(x, [](float v) { return v / 4.0f; })));
  EXPECT_TRUE(AllClose(-x, NaiveMap(x, [](float v) { return -v; })));
  // A scalar tensor and a single element.
  EXPECT_TRUE(AllClose(AddScalar(Tensor::Scalar(2.0f), 1.0f), {3.0f}));
  EXPECT_EQ(AddScalar(Tensor::Scalar(2.0f), 1.0f).shape(), Shape{});
  EXPECT_TRUE(AllClose(PowScalar(Tensor::Full({1}, 3.0f), 2.0f), {9.0f}));
}

// ---- AddInPlace ------------------------------------------------------------------------

TEST(AddInPlaceTest, AddsSameShapeAndBroadcastOperands) {
  const Tensor b = RandomInput({2, 3}, 70);
  const Tensor row = RandomInput({3}, 71);
  Tensor a = RandomInput({2, 3}, 72).detach().Clone();
  const Tensor original = a.Clone();
  AddInPlace(a, b);
  EXPECT_TRUE(AllClose(a, NaiveBinary(original, b, std::plus<float>())));
  const Tensor after_first = a.Clone();
  AddInPlace(a, row);
  EXPECT_TRUE(AllClose(a, NaiveBinary(after_first, row, std::plus<float>())));
  // From a strided source.
  const Tensor wide = RandomInput({2, 5}, 73);
  const Tensor after_second = a.Clone();
  AddInPlace(a, wide.narrow(1, 1, 3));
  EXPECT_TRUE(AllClose(a, NaiveBinary(after_second, wide.narrow(1, 1, 3), std::plus<float>())));
}

TEST(AddInPlaceTest, IsNotRecordedByAutograd) {
  Tensor a = Tensor::Zeros({3});
  const Tensor b = RandomInput({3}, 74);  // requires grad
  AddInPlace(a, b);
  EXPECT_FALSE(a.requires_grad());
  EXPECT_EQ(a.grad_fn(), nullptr);
}

TEST(AddInPlaceTest, RejectsShapesThatDoNotBroadcastToTheDestination) {
  Tensor a = Tensor::Zeros({3});
  EXPECT_THROW(AddInPlace(a, Tensor::Zeros({2, 3})), Error);  // would grow a
  EXPECT_THROW(AddInPlace(a, Tensor::Zeros({4})), Error);
  Tensor strided = Tensor::Zeros({3, 4}).narrow(1, 0, 2);
  EXPECT_THROW(AddInPlace(strided, Tensor::Zeros({3, 2})), Error);  // not contiguous
}

}  // namespace
}  // namespace attnlab
