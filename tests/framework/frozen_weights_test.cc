// FrozenWeights: inside the scope each Linear weight is prepared once (converted to the
// matmul precision and packed into oneDNN's blocked layout) and reused; products on the
// prepared weights equal those on the weights as they are.
#include "framework/ops/frozen_weights.h"

#include <string>
#include <tuple>
#include <vector>

#include "framework/autograd/grad_mode.h"
#include "framework/backend/dnnl/dnnl_backend.h"
#include "framework/ops/mixed_precision.h"
#include "framework/ops/ops.h"
#include "gtest/gtest.h"
#include "tests/support/bit_identical.h"
#include "tests/support/gradcheck.h"

namespace attnlab {
namespace {

using testing::BitIdentical;
using testing::RandomInput;

// The precisions this CPU can multiply in.
std::vector<DType> MatmulDTypes() {
  std::vector<DType> dtypes = {DType::kF32};
  if (dnnl_backend::HasNativeBF16()) dtypes.push_back(DType::kBF16);
  return dtypes;
}

// Outside a scope a weight is used as it is: f32 contiguous is the weight itself.
TEST(FrozenWeightsTest, OutsideAScopeNothingIsPackedOrKept) {
  const Tensor w = RandomInput({16, 32}, 1);
  const PreparedWeight prepared = PrepareLinearWeight(w, DType::kF32, true);
  EXPECT_FALSE(prepared.packed);
  EXPECT_EQ(prepared.data.raw_data(), w.raw_data());
}

// The first call prepares, the later ones (and an inner scope) get the same copy; where
// oneDNN has a blocked layout for the weight, the copy is packed.
TEST(FrozenWeightsTest, EachWeightIsPreparedOnce) {
  const Tensor w = RandomInput({64, 48}, 2);
  for (const DType dtype : MatmulDTypes()) {
    const FrozenWeights frozen;
    const PreparedWeight first = PrepareLinearWeight(w, dtype, true);
    EXPECT_EQ(first.packed, dnnl_backend::PackedWeightBytes(dtype, 48, 64) > 0);
    EXPECT_EQ(PrepareLinearWeight(w, dtype, true).data.raw_data(), first.data.raw_data());
    {
      const FrozenWeights inner;
      EXPECT_EQ(PrepareLinearWeight(w, dtype, true).data.raw_data(), first.data.raw_data());
    }
    EXPECT_EQ(PrepareLinearWeight(w, dtype, true).data.raw_data(), first.data.raw_data())
        << "the inner scope ended";
    // Not packed when packing is not allowed (autograd records the product), and then
    // the plain copy in the matmul precision.
    const PreparedWeight plain = PrepareLinearWeight(w, dtype, false);
    EXPECT_FALSE(plain.packed);
    EXPECT_TRUE(BitIdentical(ContiguousAs(plain.data, DType::kF32).ToFloats(),
                             ContiguousAs(ContiguousAs(w, dtype), DType::kF32).ToFloats()));
  }
}

// Linear on the packed weight gives the bits Linear gives on the weight as it is, for
// shapes oneDNN pads (neither extent a multiple of its blocks), one row and many, with a
// strided input, in every precision.
TEST(FrozenWeightsTest, LinearOnPackedWeightsGivesTheSameBits) {
  NoGradGuard no_grad;
  for (const DType dtype : MatmulDTypes()) {
    const MixedPrecision precision(dtype);
    for (const auto& [rows, in, out] : std::vector<std::tuple<int64_t, int64_t, int64_t>>{
             {1, 37, 100}, {32, 512, 512}, {300, 128, 72}}) {
      const Tensor w = RandomInput({out, in}, 3), b = RandomInput({out}, 4);
      const Tensor wide = RandomInput({rows, 2 * in}, 5);
      for (const Tensor& x : {RandomInput({rows, in}, 6), Narrow(wide, 1, 0, in)}) {
        const std::vector<float> as_is = Linear(x, w, b).ToFloats();
        const std::vector<float> as_is_without_bias = Linear(x, w, Tensor()).ToFloats();
        const FrozenWeights frozen;
        EXPECT_TRUE(PrepareLinearWeight(w, dtype, true).packed ||
                    dnnl_backend::PackedWeightBytes(dtype, in, out) == 0);
        const std::string what = std::string(DTypeName(dtype)) + " " + std::to_string(rows) + "x" +
                                 std::to_string(in) + " -> " + std::to_string(out) +
                                 (x.is_contiguous() ? "" : ", strided input");
        EXPECT_TRUE(BitIdentical(Linear(x, w, b).ToFloats(), as_is)) << what;
        EXPECT_TRUE(BitIdentical(Linear(x, w, Tensor()).ToFloats(), as_is_without_bias)) << what;
      }
    }
  }
}

// No rows, or a weight with no outputs, give empty outputs inside a scope (oneDNN 2.6's
// matmul divides by the row count on packed weights, so no rows skips it).
TEST(FrozenWeightsTest, EmptyInputsAndWeights) {
  NoGradGuard no_grad;
  const Tensor w = RandomInput({4, 8}, 14);
  EXPECT_EQ(Linear(Tensor::Zeros({0, 8}), w, Tensor()).shape(), (Shape{0, 4}));
  const FrozenWeights frozen;
  EXPECT_EQ(Linear(Tensor::Zeros({0, 8}), w, Tensor()).shape(), (Shape{0, 4}));
  EXPECT_EQ(Linear(Tensor::Zeros({3, 8}), Tensor::Zeros({0, 8}), Tensor()).shape(), (Shape{3, 0}));
}

// Inside a scope a product that autograd records multiplies the plain copy, and its
// gradients are those outside the scope.
TEST(FrozenWeightsTest, RecordedProductsKeepTheirGradients) {
  Tensor x = RandomInput({5, 24}, 7), w = RandomInput({40, 24}, 8), b = RandomInput({40}, 9);
  const Tensor upstream = RandomInput({5, 40}, 10).detach();
  Sum(Mul(Linear(x, w, b), upstream)).backward();
  const std::vector<float> grad_x = x.grad().ToFloats(), grad_w = w.grad().ToFloats();
  x.zero_grad();
  w.zero_grad();
  b.zero_grad();
  {
    const FrozenWeights frozen;
    Sum(Mul(Linear(x, w, b), upstream)).backward();
  }
  EXPECT_TRUE(BitIdentical(x.grad().ToFloats(), grad_x));
  EXPECT_TRUE(BitIdentical(w.grad().ToFloats(), grad_w));
}

// Another layout of the same storage is prepared as it is, not served the copy.
TEST(FrozenWeightsTest, AnotherLayoutOfTheSameStorageIsNotServedTheCopy) {
  NoGradGuard no_grad;
  const Tensor w = RandomInput({24, 24}, 11), x = RandomInput({3, 24}, 12);
  const Tensor transposed = Transpose(w, 0, 1);
  const std::vector<float> expected = Linear(x, transposed.contiguous(), Tensor()).ToFloats();
  const FrozenWeights frozen;
  Linear(x, w, Tensor());
  EXPECT_TRUE(BitIdentical(Linear(x, transposed, Tensor()).ToFloats(), expected));
}

// A weight changed after its scope ended is prepared afresh by the next scope.
TEST(FrozenWeightsTest, WeightsChangedBetweenScopesAreSeen) {
  NoGradGuard no_grad;
  Tensor w = RandomInput({4, 8}, 13);
  const Tensor x = Tensor::Full({1, 8}, 1.0f);
  {
    const FrozenWeights frozen;
    Linear(x, w, Tensor());
  }
  for (int64_t i = 0; i < 8; ++i) w.data<float>()[i] = 0.0f;  // row 0: output 0 is 0
  const FrozenWeights frozen;
  EXPECT_EQ(Linear(x, w, Tensor()).ToFloats()[0], 0.0f);
}

}  // namespace
}  // namespace attnlab
