// Shape ops: reshape, narrow, contiguous, permute/transpose, concat, split, index_select
// and gather, each forward against a naive index loop and each gradient by finite
// differences; views share storage; bad arguments and out-of-range indices throw.
// The plain gradient checks (and 1-vs-2-thread checks) of these ops are cases in the
// table of op cases, op_cases.cc.
#include <string>
#include <vector>

#include "framework/ops/ops.h"
#include "framework/parallel/parallel_for.h"
#include "gtest/gtest.h"
#include "tests/support/bit_identical.h"
#include "tests/support/gradcheck.h"
#include "tests/support/row_major.h"
#include "tests/support/thread_counts.h"

namespace attnlab {
namespace {

using testing::AllClose;
using testing::Coordinates;
using testing::GradCheck;
using testing::Offset;
using testing::RandomInput;

Tensor Ints(const std::vector<int32_t>& values, const Shape& shape) {
  return Tensor::FromInts(values, shape);
}

// Expects `call` to throw attnlab::Error whose message contains every one of `parts`.
template <typename Call>
void ExpectErrorMentioning(Call call, const std::vector<std::string>& parts) {
  try {
    call();
    ADD_FAILURE() << "expected attnlab::Error";
  } catch (const Error& error) {
    const std::string message = error.what();
    for (const std::string& part : parts) {
      EXPECT_NE(message.find(part), std::string::npos) << "'" << part << "' not in: " << message;
    }
  }
}

// ---- Reshape ---------------------------------------------------------------------------

TEST(ReshapeTest, ContiguousInputGivesAViewInRowMajorOrder) {
  const Tensor x = RandomInput({2, 3, 4}, 1);
  const Tensor y = Reshape(x, {6, 4});
  EXPECT_EQ(y.shape(), (Shape{6, 4}));
  EXPECT_EQ(y.raw_data(), x.raw_data());
  EXPECT_EQ(y.ToFloats(), x.ToFloats());
  EXPECT_EQ(Reshape(x, {4, -1}).shape(), (Shape{4, 6}));
  EXPECT_EQ(Reshape(x, {-1}).shape(), (Shape{24}));
  EXPECT_EQ(Reshape(x, {2, -1, 2}).shape(), (Shape{2, 6, 2}));
  EXPECT_EQ(x.reshape({24, 1}).shape(), (Shape{24, 1}));
  EXPECT_EQ(Reshape(Tensor::Full({1}, 5.0f), {}).shape(), Shape{});
}

TEST(ReshapeTest, NonContiguousInputIsCopiedInLogicalOrder) {
  const Tensor x = RandomInput({3, 4}, 2);
  const Tensor transposed = Transpose(x, 0, 1);  // [4, 3] (a copy)
  const Tensor window = x.narrow(1, 1, 2);       // [3, 2] strided
  EXPECT_EQ(Reshape(window, {6}).ToFloats(), window.ToFloats());
  EXPECT_EQ(Reshape(transposed, {2, 6}).ToFloats(), transposed.ToFloats());
}

TEST(ReshapeTest, BadShapesAreErrors) {
  const Tensor x = Tensor::Zeros({2, 3, 4});
  ExpectErrorMentioning([&] { Reshape(x, {5, 5}); }, {"[2, 3, 4]", "[5, 5]"});
  ExpectErrorMentioning([&] { Reshape(x, {-1, -1}); }, {"-1"});
  ExpectErrorMentioning([&] { Reshape(x, {5, -1}); }, {"[2, 3, 4]", "[5, -1]"});
}

// ---- Narrow and contiguous -------------------------------------------------------------

// x[..., start:start+length, ...] along `dim`, by explicit indexing.
std::vector<float> NaiveNarrow(const Tensor& x, int64_t dim, int64_t start, int64_t length) {
  Shape shape = x.shape();
  shape[dim] = length;
  const std::vector<float> values = x.ToFloats();
  std::vector<float> out;
  for (int64_t i = 0; i < NumElements(shape); ++i) {
    Shape coords = Coordinates(shape, i);
    coords[dim] += start;
    out.push_back(values[Offset(x.shape(), coords)]);
  }
  return out;
}

TEST(NarrowTest, IsAViewMatchingNaiveSlicing) {
  const Tensor x = RandomInput({3, 5, 4}, 10);
  for (int64_t dim = 0; dim < 3; ++dim) {
    const Tensor window = Narrow(x, dim, 1, 2);
    Shape expected_shape = x.shape();
    expected_shape[dim] = 2;
    EXPECT_EQ(window.shape(), expected_shape);
    EXPECT_EQ(window.impl()->storage, x.impl()->storage);
    EXPECT_TRUE(AllClose(window, NaiveNarrow(x, dim, 1, 2), 0.0));
  }
  // Narrow of a narrow, negative dim, empty and full windows.
  const Tensor twice = x.narrow(1, 1, 4).narrow(-1, 2, 2);
  EXPECT_TRUE(AllClose(twice, NaiveNarrow(x.narrow(1, 1, 4).contiguous(), 2, 2, 2), 0.0));
  EXPECT_EQ(x.narrow(1, 5, 0).numel(), 0);
  EXPECT_TRUE(AllClose(x.narrow(0, 0, 3), x.ToFloats(), 0.0));
}

TEST(NarrowTest, OutOfRangeIsAnError) {
  const Tensor x = Tensor::Zeros({3, 5});
  ExpectErrorMentioning([&] { Narrow(x, 1, 3, 3); }, {"[3, 6)", "f32[3, 5]"});
  EXPECT_THROW(Narrow(x, 0, -1, 1), Error);
  EXPECT_THROW(Narrow(x, 2, 0, 1), Error);
}

TEST(ContiguousTest, CopiesOnlyWhenNeeded) {
  const Tensor x = RandomInput({3, 5}, 20);
  EXPECT_EQ(Contiguous(x).impl(), x.impl());
  const Tensor window = x.narrow(1, 1, 3);
  ASSERT_FALSE(window.is_contiguous());
  const Tensor copy = Contiguous(window);
  EXPECT_TRUE(copy.is_contiguous());
  EXPECT_NE(copy.impl()->storage, x.impl()->storage);
  EXPECT_TRUE(AllClose(copy, NaiveNarrow(x, 1, 1, 3), 0.0));
  // i32 views too.
  const Tensor ids = Ints({0, 1, 2, 3, 4, 5}, {2, 3}).narrow(1, 1, 2);
  EXPECT_EQ(Contiguous(ids).ToInts(), (std::vector<int32_t>{1, 2, 4, 5}));
}

// ---- Permute and transpose -------------------------------------------------------------

// out[c] = x[c'] where c'[order[i]] = c[i].
std::vector<float> NaivePermute(const Tensor& x, const std::vector<int64_t>& order) {
  Shape shape(order.size());
  for (size_t i = 0; i < order.size(); ++i) shape[i] = x.shape()[order[i]];
  const std::vector<float> values = x.ToFloats();
  std::vector<float> out;
  for (int64_t i = 0; i < NumElements(shape); ++i) {
    const Shape coords = Coordinates(shape, i);
    Shape source(order.size());
    for (size_t d = 0; d < order.size(); ++d) source[order[d]] = coords[d];
    out.push_back(values[Offset(x.shape(), source)]);
  }
  return out;
}

TEST(PermuteTest, ForwardMatchesNaiveLoop) {
  const Tensor x = RandomInput({2, 3, 4}, 30);
  for (const std::vector<int64_t>& order :
       std::vector<std::vector<int64_t>>{{0, 1, 2}, {2, 0, 1}, {1, 2, 0}, {2, 1, 0}, {0, 2, 1}}) {
    const Tensor out = Permute(x, order);
    EXPECT_EQ(out.shape(), (Shape{x.shape()[order[0]], x.shape()[order[1]], x.shape()[order[2]]}));
    EXPECT_TRUE(out.is_contiguous());
    EXPECT_TRUE(AllClose(out, NaivePermute(x, order), 0.0));
  }
  EXPECT_TRUE(AllClose(Permute(x, {-1, 0, 1}), NaivePermute(x, {2, 0, 1}), 0.0));
  EXPECT_TRUE(AllClose(Transpose(x, 0, 2), NaivePermute(x, {2, 1, 0}), 0.0));
  EXPECT_TRUE(AllClose(x.transpose(-1, -2), NaivePermute(x, {0, 2, 1}), 0.0));
  // A strided input.
  const Tensor window = RandomInput({4, 6}, 31).narrow(1, 1, 4);
  EXPECT_TRUE(AllClose(Transpose(window, 0, 1), NaivePermute(window.contiguous(), {1, 0}), 0.0));
}

TEST(PermuteTest, BadOrdersAreErrors) {
  const Tensor x = Tensor::Zeros({2, 3, 4});
  EXPECT_THROW(Permute(x, {0, 1}), Error);
  EXPECT_THROW(Permute(x, {0, 1, 1}), Error);
  EXPECT_THROW(Permute(x, {0, 1, 3}), Error);
}

// ---- Concat and split ------------------------------------------------------------------

// Joins row-major inputs along `dim` by explicit indexing.
std::vector<float> NaiveConcat(const std::vector<Tensor>& inputs, int64_t dim) {
  Shape shape = inputs[0].shape();
  shape[dim] = 0;
  for (const Tensor& input : inputs) shape[dim] += input.shape()[dim];
  std::vector<float> out;
  for (int64_t i = 0; i < NumElements(shape); ++i) {
    Shape coords = Coordinates(shape, i);
    size_t which = 0;
    while (coords[dim] >= inputs[which].shape()[dim]) coords[dim] -= inputs[which++].shape()[dim];
    out.push_back(inputs[which].ToFloats()[Offset(inputs[which].shape(), coords)]);
  }
  return out;
}

TEST(ConcatTest, ForwardMatchesNaiveLoop) {
  const Tensor a = RandomInput({2, 1, 3}, 40), b = RandomInput({2, 4, 3}, 41);
  const Tensor c = RandomInput({2, 2, 3}, 42);
  const Tensor joined = Concat({a, b, c}, 1);
  EXPECT_EQ(joined.shape(), (Shape{2, 7, 3}));
  EXPECT_TRUE(AllClose(joined, NaiveConcat({a, b, c}, 1), 0.0));
  EXPECT_TRUE(AllClose(Concat({a, b, c}, -2), NaiveConcat({a, b, c}, 1), 0.0));
  const Tensor d = RandomInput({3, 1, 3}, 43);
  EXPECT_TRUE(AllClose(Concat({a, d}, 0), NaiveConcat({a, d}, 0), 0.0));
  const Tensor e = RandomInput({2, 1, 5}, 44);
  EXPECT_TRUE(AllClose(Concat({a, e}, 2), NaiveConcat({a, e}, 2), 0.0));
  // One input, an empty input, and a strided input.
  EXPECT_TRUE(AllClose(Concat({b}, 1), b.ToFloats(), 0.0));
  const Tensor empty = Tensor::Zeros({2, 0, 3});
  EXPECT_TRUE(AllClose(Concat({a, empty, c}, 1), NaiveConcat({a, c}, 1), 0.0));
  const Tensor window = RandomInput({2, 5, 3}, 45).narrow(1, 1, 3);
  EXPECT_TRUE(AllClose(Concat({window, a}, 1), NaiveConcat({window.contiguous(), a}, 1), 0.0));
}

TEST(ConcatTest, JoinsIntegerTensors) {
  const Tensor joined = Concat({Ints({1, 2, 3, 4}, {2, 2}), Ints({5, 6}, {2, 1})}, 1);
  EXPECT_EQ(joined.dtype(), DType::kI32);
  EXPECT_EQ(joined.ToInts(), (std::vector<int32_t>{1, 2, 5, 3, 4, 6}));
}

TEST(ConcatTest, MismatchesAreErrors) {
  const Tensor a = Tensor::Zeros({2, 3});
  EXPECT_THROW(Concat({}, 0), Error);
  ExpectErrorMentioning([&] { Concat({a, Tensor::Zeros({3, 3})}, 1); }, {"f32[2, 3]", "f32[3, 3]"});
  EXPECT_THROW(Concat({a, Tensor::Zeros({2, 3, 1})}, 0), Error);          // rank
  EXPECT_THROW(Concat({a, Ints({1, 2, 3, 4, 5, 6}, {2, 3})}, 0), Error);  // dtype
  EXPECT_THROW(Concat({a, a}, 2), Error);
}

TEST(CopyIntoTest, WritesAStridedWindowAndNothingElse) {
  Tensor buffer = Tensor::Zeros({2, 3, 6});  // [.., 6]: columns 2..4 are the window
  const Tensor source = RandomInput({2, 3, 3}, 61).detach();
  CopyInto(Narrow(buffer, 2, 2, 3), source);
  const std::vector<float> values = buffer.ToFloats(), expected = source.ToFloats();
  for (int64_t row = 0; row < 6; ++row) {
    for (int64_t column = 0; column < 6; ++column) {
      const bool inside = column >= 2 && column < 5;
      EXPECT_EQ(values[row * 6 + column], inside ? expected[row * 3 + column - 2] : 0.0f)
          << "row " << row << ", column " << column;
    }
  }
}

TEST(CopyIntoTest, MismatchesAndGradientsAreErrors) {
  Tensor destination = Tensor::Zeros({2, 3});
  ExpectErrorMentioning(
      [&] {
        CopyInto(destination, Tensor::Zeros({3, 2}));
      },
      {"f32[3, 2]", "f32[2, 3]"});
  EXPECT_THROW(CopyInto(destination, Ints({1, 2, 3, 4, 5, 6}, {2, 3})), Error);  // dtype
  const Tensor needs_grad = RandomInput({2, 3}, 62);  // requires a gradient
  ExpectErrorMentioning([&] { CopyInto(destination, needs_grad); }, {"gradient"});
}

TEST(SplitTest, PiecesAreNarrowViewsWithAShorterLastPiece) {
  const Tensor x = RandomInput({7, 3}, 60);
  const std::vector<Tensor> pieces = Split(x, 3, 0);
  ASSERT_EQ(pieces.size(), 3u);
  const std::vector<int64_t> lengths = {3, 3, 1};
  for (size_t i = 0; i < pieces.size(); ++i) {
    EXPECT_EQ(pieces[i].shape(), (Shape{lengths[i], 3}));
    EXPECT_EQ(pieces[i].impl()->storage, x.impl()->storage);
    EXPECT_TRUE(AllClose(pieces[i], NaiveNarrow(x, 0, 3 * i, lengths[i]), 0.0));
  }
  EXPECT_EQ(Split(x, 1, -1).size(), 3u);
  EXPECT_EQ(Split(x, 7, 0).size(), 1u);
  EXPECT_EQ(Split(x, 10, 0)[0].shape(), (Shape{7, 3}));
  EXPECT_TRUE(AllClose(Concat(Split(x, 2, 1), 1), x.ToFloats(), 0.0));
  EXPECT_THROW(Split(x, 0, 0), Error);
  EXPECT_THROW(Split(x, 2, 2), Error);
}

TEST(SplitTest, GradientMatchesFiniteDifferences) {
  // Reassemble the pieces in another order so every piece's gradient is exercised.
  EXPECT_TRUE(GradCheck(
      [](const std::vector<Tensor>& x) {
        const std::vector<Tensor> pieces = Split(x[0], 2, 1);
        return Concat({pieces[2], Mul(pieces[0], pieces[1])}, 1);
      },
      {RandomInput({3, 5}, 61)}));
}

// ---- IndexSelect -----------------------------------------------------------------------

// out[..., j, ...] = x[..., index[j], ...] along `dim`.
std::vector<float> NaiveIndexSelect(const Tensor& x, int64_t dim,
                                    const std::vector<int32_t>& index) {
  Shape shape = x.shape();
  shape[dim] = static_cast<int64_t>(index.size());
  const std::vector<float> values = x.ToFloats();
  std::vector<float> out;
  for (int64_t i = 0; i < NumElements(shape); ++i) {
    Shape coords = Coordinates(shape, i);
    coords[dim] = index[coords[dim]];
    out.push_back(values[Offset(x.shape(), coords)]);
  }
  return out;
}

TEST(IndexSelectTest, ForwardMatchesNaiveLoop) {
  const Tensor x = RandomInput({3, 4, 2}, 70);
  const std::vector<int32_t> picks = {3, 0, 3, 1};
  const Tensor index = Ints(picks, {4});
  for (int64_t dim = 0; dim < 3; ++dim) {
    std::vector<int32_t> valid;
    for (int32_t pick : picks) valid.push_back(pick % static_cast<int32_t>(x.shape()[dim]));
    const Tensor out = IndexSelect(x, dim, Ints(valid, {4}));
    Shape expected_shape = x.shape();
    expected_shape[dim] = 4;
    EXPECT_EQ(out.shape(), expected_shape);
    EXPECT_TRUE(AllClose(out, NaiveIndexSelect(x, dim, valid), 0.0));
  }
  EXPECT_TRUE(AllClose(IndexSelect(x, -2, index), NaiveIndexSelect(x, 1, picks), 0.0));
  // Strided x and index, and an empty index.
  const Tensor window = RandomInput({5, 6}, 71).narrow(1, 1, 4);
  EXPECT_TRUE(AllClose(IndexSelect(window, 1, index),
                       NaiveIndexSelect(window.contiguous(), 1, picks), 0.0));
  const Tensor strided_index = MakeView(Ints({2, 9, 0, 9, 1, 9}, {6}), {3}, {2}, 0);  // 2, 0, 1
  ASSERT_FALSE(strided_index.is_contiguous());
  EXPECT_TRUE(AllClose(IndexSelect(x, 1, strided_index), NaiveIndexSelect(x, 1, {2, 0, 1}), 0.0));
  EXPECT_EQ(IndexSelect(x, 0, Tensor::Empty({0}, DType::kI32)).shape(), (Shape{0, 4, 2}));
}

TEST(IndexSelectTest, ReordersIntegerTensors) {
  // Beam search reorders token ids by beam.
  const Tensor tokens = Ints({10, 11, 20, 21, 30, 31}, {3, 2});
  const Tensor reordered = IndexSelect(tokens, 0, Ints({2, 2, 0}, {3}));
  EXPECT_EQ(reordered.dtype(), DType::kI32);
  EXPECT_EQ(reordered.ToInts(), (std::vector<int32_t>{30, 31, 30, 31, 10, 11}));
}

TEST(IndexSelectTest, OutOfRangeIndexIsAnError) {
  const Tensor x = Tensor::Zeros({3, 4});
  ExpectErrorMentioning([&] { IndexSelect(x, 1, Ints({0, 4}, {2})); }, {"index 4", "[0, 4)"});
  ExpectErrorMentioning([&] { IndexSelect(x, 0, Ints({-1}, {1})); }, {"index -1", "[0, 3)"});
  EXPECT_THROW(IndexSelect(x, 0, Ints({0, 1}, {1, 2})), Error);  // not 1-D
  EXPECT_THROW(IndexSelect(x, 0, Tensor::Zeros({2})), Error);    // not i32
}

TEST(IndexSelectTest, GradientScatterAddsRepeatedPicks) {
  const Tensor index = Ints({3, 0, 3, 1, 3}, {5});
  // Summed gradient: row 3 picked three times receives 3, row 2 never picked gets 0.
  Tensor x = RandomInput({4, 2}, 73);
  Sum(IndexSelect(x, 0, index)).backward();
  EXPECT_TRUE(AllClose(x.grad(), {1, 1, 1, 1, 0, 0, 3, 3}, 0.0));
}

TEST(IndexSelectTest, GradientIsTheSameOnOneAndTwoThreads) {
  std::vector<int32_t> picks;
  for (int32_t i = 0; i < 2000; ++i) picks.push_back((i * 7) % 50);
  const Tensor index = Ints(picks, {2000});
  const auto gradient = [&] {
    Tensor x = RandomInput({3, 50, 600}, 74);
    Sum(Mul(IndexSelect(x, 1, index), RandomInput({3, 2000, 600}, 75).detach())).backward();
    return x.grad().ToFloats();
  };
  EXPECT_TRUE(
      testing::BitIdentical(testing::OnThreads(1, gradient), testing::OnThreads(2, gradient)));
}

// ---- Gather ----------------------------------------------------------------------------

// out[c] = x[c with c[dim] replaced by index[c]] (PyTorch's gather).
std::vector<float> NaiveGather(const Tensor& x, int64_t dim, const Tensor& index) {
  const std::vector<float> values = x.ToFloats();
  const std::vector<int32_t> picks = index.ToInts();
  std::vector<float> out;
  for (int64_t i = 0; i < index.numel(); ++i) {
    Shape coords = Coordinates(index.shape(), i);
    coords[dim] = picks[i];
    out.push_back(values[Offset(x.shape(), coords)]);
  }
  return out;
}

TEST(GatherTest, ForwardMatchesNaiveLoop) {
  const Tensor x = RandomInput({3, 4}, 80);
  const Tensor along_columns = Ints({3, 0, 1, 1, 2, 2}, {3, 2});
  EXPECT_EQ(Gather(x, 1, along_columns).shape(), (Shape{3, 2}));
  EXPECT_TRUE(AllClose(Gather(x, 1, along_columns), NaiveGather(x, 1, along_columns), 0.0));
  EXPECT_TRUE(AllClose(Gather(x, -1, along_columns), NaiveGather(x, 1, along_columns), 0.0));
  const Tensor along_rows = Ints({2, 0, 1, 2, 1, 1, 0, 0}, {2, 4});
  EXPECT_TRUE(AllClose(Gather(x, 0, along_rows), NaiveGather(x, 0, along_rows), 0.0));
  // 3-D, with an index smaller than x in the other dims, and more picks than x's extent.
  const Tensor cube = RandomInput({3, 4, 5}, 81);
  std::vector<int32_t> picks;
  for (int32_t i = 0; i < 2 * 6 * 3; ++i) picks.push_back((i * 5) % 4);
  const Tensor index = Ints(picks, {2, 6, 3});
  EXPECT_TRUE(AllClose(Gather(cube, 1, index), NaiveGather(cube, 1, index), 0.0));
  // Strided x and strided index.
  const Tensor window = RandomInput({3, 7}, 82).narrow(1, 2, 4);
  EXPECT_TRUE(AllClose(Gather(window, 1, along_columns),
                       NaiveGather(window.contiguous(), 1, along_columns), 0.0));
  const Tensor strided_index = along_rows.narrow(1, 1, 2);
  EXPECT_TRUE(
      AllClose(Gather(x, 0, strided_index), NaiveGather(x, 0, strided_index.contiguous()), 0.0));
}

TEST(GatherTest, BadIndicesAreErrors) {
  const Tensor x = Tensor::Zeros({3, 4});
  ExpectErrorMentioning([&] { Gather(x, 1, Ints({0, 4}, {2, 1})); }, {"index 4", "[0, 4)"});
  ExpectErrorMentioning([&] { Gather(x, 0, Ints({-2}, {1, 1})); }, {"index -2", "[0, 3)"});
  EXPECT_THROW(Gather(x, 1, Ints({0, 1}, {2})), Error);              // rank differs
  EXPECT_THROW(Gather(x, 1, Ints({0, 0, 0, 0, 0}, {5, 1})), Error);  // larger in dim 0
  EXPECT_THROW(Gather(x, 1, Tensor::Zeros({3, 1})), Error);          // not i32
}

TEST(GatherTest, GradientScatterAddsRepeatedPicks) {
  // Summed gradient counts the picks.
  const Tensor index = Ints({3, 3, 0, 1, 1, 1}, {3, 2});
  Tensor x = RandomInput({3, 4}, 87);
  Sum(Gather(x, 1, index)).backward();
  EXPECT_TRUE(AllClose(x.grad(), {0, 0, 0, 2, 1, 1, 0, 0, 0, 2, 0, 0}, 0.0));
}

}  // namespace
}  // namespace attnlab
