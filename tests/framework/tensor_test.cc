// Tensor: shapes and strides, views sharing storage, contiguous copies, alignment,
// Describe(), typed data access, FromFloats/FromInts round trips and the leaf rules.
#include "framework/tensor/tensor.h"

#include <cstdint>
#include <string>
#include <vector>

#include "framework/autograd/grad_mode.h"
#include "framework/ops/ops.h"
#include "framework/tensor/allocator.h"
#include "gtest/gtest.h"

namespace attnlab {
namespace {

// The values 0, 1, ..., count - 1 as a tensor of `shape`.
Tensor Iota(const Shape& shape) {
  std::vector<float> values(NumElements(shape));
  for (size_t i = 0; i < values.size(); ++i) values[i] = static_cast<float>(i);
  return Tensor::FromFloats(values, shape);
}

// Whether `call` throws attnlab::Error whose message contains `fragment`.
template <typename Call>
::testing::AssertionResult ThrowsErrorContaining(Call call, const std::string& fragment) {
  try {
    call();
  } catch (const Error& error) {
    if (std::string(error.what()).find(fragment) != std::string::npos) {
      return ::testing::AssertionSuccess();
    }
    return ::testing::AssertionFailure()
           << "message lacks \"" << fragment << "\": " << error.what();
  }
  return ::testing::AssertionFailure() << "no attnlab::Error thrown";
}

TEST(TensorTest, EmptyHasRowMajorShapeAndStrides) {
  const Tensor t = Tensor::Empty({2, 3, 4});
  EXPECT_EQ(t.shape(), (Shape{2, 3, 4}));
  EXPECT_EQ(t.strides(), (Strides{12, 4, 1}));
  EXPECT_EQ(t.rank(), 3);
  EXPECT_EQ(t.numel(), 24);
  EXPECT_EQ(t.size(0), 2);
  EXPECT_EQ(t.size(-1), 4);
  EXPECT_EQ(t.size(-3), 2);
  EXPECT_EQ(t.dtype(), DType::kF32);
  EXPECT_TRUE(t.is_contiguous());
  EXPECT_FALSE(t.requires_grad());
  EXPECT_EQ(t.grad_fn(), nullptr);
}

TEST(TensorTest, SizeOutOfRangeThrows) {
  const Tensor t = Tensor::Empty({2, 3});
  EXPECT_TRUE(ThrowsErrorContaining([&] { t.size(2); }, "out of range for a tensor of rank 2"));
  EXPECT_TRUE(ThrowsErrorContaining([&] { t.size(-3); }, "out of range"));
}

// Element and byte counts that wrap around int64 / size_t once sized a small buffer
// for a huge tensor (a segfault on the first write); now they are clear errors.
TEST(TensorTest, ElementCountOverflowThrowsNamingTheShape) {
  const int64_t half = int64_t{1} << 32;
  EXPECT_THROW(NumElements({half, half}), Error);
  try {
    Tensor::Empty({half, half}, DType::kF32);
    FAIL() << "no exception";
  } catch (const Error& error) {
    EXPECT_NE(std::string(error.what()).find("[4294967296, 4294967296]"), std::string::npos)
        << error.what();
  }
  // 2^62 elements fit an int64, but not as f32 bytes in a size_t.
  EXPECT_THROW(Tensor::Empty({int64_t{1} << 62}, DType::kF32), Error);
}

TEST(TensorTest, AllocationTheSystemRefusesIsOutOfMemoryWithItsSize) {
  // 2^60 bytes (1 EiB): no machine has it, and the request does not wrap.
  try {
    Tensor::Empty({int64_t{1} << 58}, DType::kF32);
    FAIL() << "no exception";
  } catch (const OutOfMemoryError& error) {
    EXPECT_NE(std::string(error.what()).find("out of memory: cannot allocate 1.0 EiB"),
              std::string::npos)
        << error.what();
  }
}

TEST(TensorTest, ScalarHasRankZeroAndOneElement) {
  const Tensor scalar = Tensor::Scalar(2.5f);
  EXPECT_EQ(scalar.rank(), 0);
  EXPECT_EQ(scalar.numel(), 1);
  EXPECT_TRUE(scalar.strides().empty());
  EXPECT_EQ(scalar.item(), 2.5f);
}

TEST(TensorTest, ZeroExtentTensorHasNoElements) {
  const Tensor t = Tensor::Zeros({3, 0});
  EXPECT_EQ(t.numel(), 0);
  EXPECT_TRUE(t.ToFloats().empty());
}

TEST(TensorTest, NegativeExtentThrows) {
  EXPECT_TRUE(ThrowsErrorContaining([] { Tensor::Empty({2, -1}); }, "negative extent"));
}

TEST(TensorTest, ZerosFullAndFillSetEveryElement) {
  EXPECT_EQ(Tensor::Zeros({2, 2}).ToFloats(), (std::vector<float>{0, 0, 0, 0}));
  EXPECT_EQ(Tensor::Full({3}, 1.5f).ToFloats(), (std::vector<float>{1.5f, 1.5f, 1.5f}));
  Tensor t = Tensor::Empty({2});
  t.Fill(-4.0f);
  EXPECT_EQ(t.ToFloats(), (std::vector<float>{-4.0f, -4.0f}));
  Tensor ints = Tensor::Empty({2}, DType::kI32);
  ints.Fill(7.0f);
  EXPECT_EQ(ints.ToInts(), (std::vector<int32_t>{7, 7}));
}

TEST(TensorTest, FromFloatsRoundTrips) {
  const std::vector<float> values = {1.0f, -2.0f, 3.5f, 0.25f, 5.0f, 6.0f};
  const Tensor t = Tensor::FromFloats(values, {2, 3});
  EXPECT_EQ(t.ToFloats(), values);
  EXPECT_EQ(t.data<float>()[4], 5.0f);
}

TEST(TensorTest, FromIntsRoundTripsAsI32) {
  const std::vector<int32_t> values = {0, -1, 7999, 42};
  const Tensor t = Tensor::FromInts(values, {2, 2});
  EXPECT_EQ(t.dtype(), DType::kI32);
  EXPECT_EQ(t.ToInts(), values);
  EXPECT_EQ(t.data<int32_t>()[2], 7999);
}

TEST(TensorTest, FromValuesWithWrongCountThrows) {
  const std::vector<int32_t> ints = {1, 2, 3};
  EXPECT_TRUE(ThrowsErrorContaining(
      [&] {
        Tensor::FromInts(ints, {2, 2});
      },
      "FromInts: 3 values for shape [2, 2]"));
  const std::vector<float> floats = {1.0f};
  EXPECT_TRUE(ThrowsErrorContaining([&] { Tensor::FromFloats(floats, {2}); },
                                    "FromFloats: 1 values for shape [2]"));
}

TEST(TensorTest, DataWithWrongElementTypeThrows) {
  const Tensor ints = Tensor::Zeros({2}, DType::kI32);
  EXPECT_TRUE(
      ThrowsErrorContaining([&] { ints.data<float>(); }, "tensor is i32[2], requested f32"));
  EXPECT_TRUE(ThrowsErrorContaining([] { Tensor().data<float>(); }, "undefined tensor"));
}

TEST(TensorTest, ItemNeedsOneElement) {
  EXPECT_EQ(Tensor::Full({1, 1}, 3.0f).item(), 3.0f);
  EXPECT_TRUE(ThrowsErrorContaining([] { Tensor::Zeros({2}).item(); }, "has 2 elements"));
}

TEST(TensorTest, DescribeNamesDtypeAndShape) {
  EXPECT_EQ(Tensor::Empty({2, 3, 4}).Describe(), "f32[2, 3, 4]");
  EXPECT_EQ(Tensor::Empty({5}, DType::kI32).Describe(), "i32[5]");
  EXPECT_EQ(Tensor::Scalar(1.0f).Describe(), "f32[]");
  EXPECT_EQ(Tensor().Describe(), "undefined");
  EXPECT_FALSE(Tensor().defined());
}

TEST(TensorTest, DataIs64ByteAlignedForEverySize) {
  std::vector<Tensor> keep_alive;  // distinct live blocks, not one block reused
  for (int64_t count : {0, 1, 3, 15, 16, 17, 255, 256, 1000, 4097, 100000}) {
    keep_alive.push_back(Tensor::Empty({count}));
    const auto address = reinterpret_cast<uintptr_t>(keep_alive.back().raw_data());
    EXPECT_EQ(address % CachingAllocator::kAlignment, 0u) << "count " << count;
  }
}

TEST(TensorTest, CopyingATensorCopiesTheHandle) {
  Tensor original = Iota({3});
  Tensor handle = original;
  handle.data<float>()[0] = 42.0f;
  EXPECT_EQ(original.ToFloats()[0], 42.0f);
  EXPECT_EQ(original.impl(), handle.impl());
}

TEST(TensorTest, ReshapeOfContiguousIsAViewSharingStorage) {
  Tensor base = Iota({2, 6});
  Tensor view = base.reshape({3, -1});
  EXPECT_EQ(view.shape(), (Shape{3, 4}));
  EXPECT_EQ(view.strides(), (Strides{4, 1}));
  EXPECT_EQ(view.impl()->storage.get(), base.impl()->storage.get());
  EXPECT_EQ(view.raw_data(), base.raw_data());
  view.data<float>()[5] = -1.0f;  // row 1, column 1 of the view
  EXPECT_EQ(base.ToFloats()[5], -1.0f);
}

TEST(TensorTest, ReshapeWithWrongCountThrows) {
  const Tensor t = Tensor::Empty({2, 3});
  EXPECT_TRUE(ThrowsErrorContaining(
      [&] {
        t.reshape({4, 2});
      },
      "cannot reshape [2, 3] (6 elements) to [4, 2]"));
  EXPECT_TRUE(ThrowsErrorContaining([&] { t.reshape({-1, -1}); }, "more than one -1"));
}

TEST(TensorTest, NarrowIsAStridedViewSharingStorage) {
  Tensor base = Iota({3, 4});
  Tensor columns = base.narrow(1, 1, 2);
  EXPECT_EQ(columns.shape(), (Shape{3, 2}));
  EXPECT_EQ(columns.strides(), (Strides{4, 1}));
  EXPECT_EQ(columns.impl()->offset, 1);
  EXPECT_FALSE(columns.is_contiguous());
  EXPECT_EQ(columns.impl()->storage.get(), base.impl()->storage.get());
  EXPECT_EQ(columns.ToFloats(), (std::vector<float>{1, 2, 5, 6, 9, 10}));
  columns.data<float>()[4] = 100.0f;  // element (1, 0) of the view is base (1, 1)
  EXPECT_EQ(base.ToFloats()[5], 100.0f);
}

TEST(TensorTest, NarrowOfLeadingDimStaysContiguous) {
  const Tensor base = Iota({4, 3});
  const Tensor rows = base.narrow(0, 1, 2);
  EXPECT_TRUE(rows.is_contiguous());
  EXPECT_EQ(rows.impl()->offset, 3);
  EXPECT_EQ(rows.ToFloats(), (std::vector<float>{3, 4, 5, 6, 7, 8}));
}

TEST(TensorTest, NarrowOutOfRangeThrows) {
  const Tensor t = Tensor::Empty({3, 4});
  EXPECT_TRUE(ThrowsErrorContaining([&] { t.narrow(1, 3, 2); }, "range [3, 5) is outside dim 1"));
}

TEST(TensorTest, ContiguousOfNarrowViewCopies) {
  Tensor base = Iota({3, 4});
  const Tensor columns = base.narrow(1, 2, 2);
  const Tensor copy = columns.contiguous();
  EXPECT_TRUE(copy.is_contiguous());
  EXPECT_NE(copy.impl()->storage.get(), base.impl()->storage.get());
  EXPECT_EQ(copy.strides(), (Strides{2, 1}));
  EXPECT_EQ(copy.ToFloats(), (std::vector<float>{2, 3, 6, 7, 10, 11}));
  base.data<float>()[2] = -5.0f;  // the copy does not see later writes
  EXPECT_EQ(copy.ToFloats()[0], 2.0f);
}

TEST(TensorTest, ContiguousOfContiguousIsTheSameTensor) {
  const Tensor base = Iota({2, 3});
  EXPECT_EQ(base.contiguous().impl(), base.impl());
}

TEST(TensorTest, ReshapeOfStridedViewCopies) {
  const Tensor base = Iota({3, 4});
  const Tensor flat = base.narrow(1, 0, 2).reshape({6});
  EXPECT_NE(flat.impl()->storage.get(), base.impl()->storage.get());
  EXPECT_EQ(flat.ToFloats(), (std::vector<float>{0, 1, 4, 5, 8, 9}));
}

TEST(TensorTest, PermuteAndTransposeReorderElements) {
  const Tensor base = Iota({2, 3});
  const Tensor transposed = base.transpose(0, 1);
  EXPECT_EQ(transposed.shape(), (Shape{3, 2}));
  EXPECT_TRUE(transposed.is_contiguous());
  EXPECT_EQ(transposed.ToFloats(), (std::vector<float>{0, 3, 1, 4, 2, 5}));
  const Tensor cube = Iota({2, 3, 4});
  const Tensor permuted = cube.permute({2, 0, 1});
  EXPECT_EQ(permuted.shape(), (Shape{4, 2, 3}));
  // permuted[k][i][j] == cube[i][j][k]; check permuted[3][1][2] == cube[1][2][3] == 23.
  EXPECT_EQ(permuted.ToFloats()[3 * 6 + 1 * 3 + 2], 23.0f);
}

TEST(TensorTest, CloneIsADeepContiguousCopy) {
  const Tensor base = Iota({3, 4});
  const Tensor clone = base.narrow(1, 1, 2).Clone();
  EXPECT_TRUE(clone.is_contiguous());
  EXPECT_NE(clone.impl()->storage.get(), base.impl()->storage.get());
  EXPECT_EQ(clone.ToFloats(), (std::vector<float>{1, 2, 5, 6, 9, 10}));
}

TEST(TensorTest, DetachSharesStorageWithoutGrad) {
  Tensor leaf = Iota({2});
  leaf.set_requires_grad(true);
  const Tensor product = Mul(leaf, leaf);
  const Tensor detached = product.detach();
  EXPECT_FALSE(detached.requires_grad());
  EXPECT_EQ(detached.grad_fn(), nullptr);
  EXPECT_EQ(detached.raw_data(), product.raw_data());
}

TEST(TensorTest, OnlyF32LeavesCanRequireGrad) {
  Tensor leaf = Iota({2});
  EXPECT_TRUE(leaf.set_requires_grad(true).requires_grad());
  Tensor product = Mul(leaf, leaf);
  EXPECT_TRUE(
      ThrowsErrorContaining([&] { product.set_requires_grad(false); }, "produced by op 'mul'"));
  Tensor ints = Tensor::Zeros({2}, DType::kI32);
  EXPECT_TRUE(ThrowsErrorContaining([&] { ints.set_requires_grad(true); },
                                    "only f32 tensors can require grad, got i32[2]"));
}

}  // namespace
}  // namespace attnlab
