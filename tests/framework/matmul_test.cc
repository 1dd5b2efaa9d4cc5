// matmul and linear: forward against a naive triple loop, gradients by finite differences,
// for plain, transposed, batched, broadcast (2-D weight) and strided operands.
// The plain gradient checks (and 1-vs-2-thread checks) of these ops are cases in the
// table of op cases, op_cases.cc.
#include <vector>

#include "framework/ops/ops.h"
#include "gtest/gtest.h"
#include "tests/support/gradcheck.h"

namespace attnlab {
namespace {

using testing::AllClose;
using testing::GradCheck;
using testing::RandomInput;

// c[b] = op(a[b]) @ op(w[b]) with explicit indexing.
std::vector<float> NaiveMatmul(const Tensor& a, const Tensor& b, bool ta, bool tb) {
  const std::vector<float> av = a.ToFloats(), bv = b.ToFloats();
  const int64_t batch = a.numel() / (a.size(-1) * a.size(-2));
  const int64_t m = ta ? a.size(-1) : a.size(-2), k = ta ? a.size(-2) : a.size(-1);
  const int64_t n = tb ? b.size(-2) : b.size(-1);
  const bool shared_b = b.rank() == 2;
  std::vector<float> c(batch * m * n, 0.0f);
  for (int64_t p = 0; p < batch; ++p) {
    const float* ap = av.data() + p * m * k;
    const float* bp = bv.data() + (shared_b ? 0 : p * k * n);
    for (int64_t i = 0; i < m; ++i)
      for (int64_t j = 0; j < n; ++j) {
        double total = 0.0;
        for (int64_t q = 0; q < k; ++q) {
          total += (ta ? ap[q * m + i] : ap[i * k + q]) * (tb ? bp[j * k + q] : bp[q * n + j]);
        }
        c[(p * m + i) * n + j] = static_cast<float>(total);
      }
  }
  return c;
}

struct MatmulCase {
  Shape a, b;
  bool transpose_a, transpose_b;
};

class MatmulTest : public ::testing::TestWithParam<MatmulCase> {};

TEST_P(MatmulTest, ForwardMatchesNaiveLoop) {
  const MatmulCase& c = GetParam();
  const Tensor a = RandomInput(c.a, 1), b = RandomInput(c.b, 2);
  const Tensor out = Matmul(a, b, c.transpose_a, c.transpose_b);
  EXPECT_TRUE(AllClose(out, NaiveMatmul(a, b, c.transpose_a, c.transpose_b), 1e-5));
}

INSTANTIATE_TEST_SUITE_P(Shapes, MatmulTest,
                         ::testing::Values(MatmulCase{{3, 4}, {4, 5}, false, false},
                                           MatmulCase{{4, 3}, {4, 5}, true, false},
                                           MatmulCase{{3, 4}, {5, 4}, false, true},
                                           MatmulCase{{4, 3}, {5, 4}, true, true},
                                           MatmulCase{{1, 1}, {1, 1}, false, false},
                                           MatmulCase{{2, 3, 5}, {2, 5, 7}, false, false},
                                           MatmulCase{{2, 5, 3}, {2, 7, 5}, true, true},
                                           MatmulCase{{2, 3, 3, 4}, {2, 3, 4, 2}, false, false},
                                           MatmulCase{{2, 3, 5}, {5, 4}, false, false},
                                           MatmulCase{{2, 3, 5}, {4, 5}, false, true}));

TEST(MatmulTest, StridedOperandFromNarrow) {
  // A column window of a wider matrix reaches oneDNN as a strided operand.
  const Tensor wide = RandomInput({4, 9}, 5);
  const Tensor b = RandomInput({3, 2}, 6);
  const Tensor window = wide.narrow(1, 2, 3);
  EXPECT_TRUE(AllClose(Matmul(window, b), NaiveMatmul(window.contiguous(), b, false, false), 1e-5));
  EXPECT_TRUE(
      GradCheck([](const std::vector<Tensor>& x) { return Matmul(x[0].narrow(1, 2, 3), x[1]); },
                {RandomInput({4, 9}, 7), RandomInput({3, 2}, 8)}));
}

TEST(MatmulTest, MismatchedShapesThrowWithBothShapes) {
  const Tensor a = Tensor::Zeros({2, 3}), b = Tensor::Zeros({4, 5});
  try {
    Matmul(a, b);
    FAIL() << "expected attnlab::Error";
  } catch (const Error& error) {
    EXPECT_NE(std::string(error.what()).find("f32[2, 3]"), std::string::npos) << error.what();
    EXPECT_NE(std::string(error.what()).find("f32[4, 5]"), std::string::npos) << error.what();
  }
}

TEST(LinearTest, ForwardIsXWTransposePlusBias) {
  const Tensor x = RandomInput({2, 3, 4}, 9), w = RandomInput({5, 4}, 10), b = RandomInput({5}, 11);
  const Tensor out = Linear(x, w, b);
  ASSERT_EQ(out.shape(), (Shape{2, 3, 5}));
  std::vector<float> expected = NaiveMatmul(x.reshape({6, 4}), w, false, true);
  const std::vector<float> bias = b.ToFloats();
  for (size_t i = 0; i < expected.size(); ++i) expected[i] += bias[i % 5];
  EXPECT_TRUE(AllClose(out, expected, 1e-5));
}

}  // namespace
}  // namespace attnlab
