// Embedding: lookup against the weight rows, scatter-add backward (repeated ids
// accumulate, the padding index gets nothing, bit-identical on 1 and 2 threads), and
// out-of-range ids rejected before any memory is read.
// The plain gradient checks (and 1-vs-2-thread checks) of these ops are cases in the
// table of op cases, op_cases.cc.
#include <string>
#include <vector>

#include "framework/ops/ops.h"
#include "framework/parallel/parallel_for.h"
#include "gtest/gtest.h"
#include "tests/support/bit_identical.h"
#include "tests/support/gradcheck.h"
#include "tests/support/thread_counts.h"

namespace attnlab {
namespace {

using testing::AllClose;
using testing::RandomInput;

Tensor Ints(const std::vector<int32_t>& values, const Shape& shape) {
  return Tensor::FromInts(values, shape);
}

// out[t] = weight[ids[t]], row by row.
std::vector<float> NaiveLookup(const Tensor& weight, const std::vector<int32_t>& ids) {
  const std::vector<float> table = weight.ToFloats();
  const int64_t dim = weight.size(1);
  std::vector<float> out;
  for (int32_t id : ids) {
    out.insert(out.end(), table.begin() + id * dim, table.begin() + (id + 1) * dim);
  }
  return out;
}

// grad_weight[ids[t]] += grad[t] for ids[t] != padding_index, in double.
std::vector<float> NaiveScatterAdd(const std::vector<float>& grad, const std::vector<int32_t>& ids,
                                   int64_t vocab, int64_t dim, int64_t padding_index) {
  std::vector<double> total(vocab * dim, 0.0);
  for (size_t t = 0; t < ids.size(); ++t) {
    if (ids[t] == padding_index) continue;
    for (int64_t c = 0; c < dim; ++c) total[ids[t] * dim + c] += grad[t * dim + c];
  }
  return std::vector<float>(total.begin(), total.end());
}

TEST(EmbeddingTest, LooksUpWeightRows) {
  const Tensor weight = RandomInput({5, 3}, 1);
  const std::vector<int32_t> ids = {4, 0, 2, 2, 1, 4};
  const Tensor out = Embedding(weight, Ints(ids, {2, 3}));
  EXPECT_EQ(out.shape(), (Shape{2, 3, 3}));
  EXPECT_TRUE(AllClose(out, NaiveLookup(weight, ids), 0.0));
  // A single id, a rank-0 id tensor, and strided ids and weight.
  EXPECT_EQ(Embedding(weight, Ints({3}, {})).shape(), (Shape{3}));
  EXPECT_TRUE(AllClose(Embedding(weight, Ints({3}, {})), NaiveLookup(weight, {3}), 0.0));
  const Tensor strided_ids = MakeView(Ints({1, 9, 3, 9}, {4}), {2}, {2}, 0);
  EXPECT_TRUE(AllClose(Embedding(weight, strided_ids), NaiveLookup(weight, {1, 3}), 0.0));
  const Tensor wide = RandomInput({5, 7}, 2);
  const Tensor columns = wide.narrow(1, 2, 3);
  EXPECT_TRUE(
      AllClose(Embedding(columns, Ints(ids, {6})), NaiveLookup(columns.contiguous(), ids), 0.0));
}

TEST(EmbeddingTest, RepeatedIdsAccumulateAndPaddingGetsNoGradient) {
  const std::vector<int32_t> ids = {2, 0, 2, 3, 2, 0};
  for (int64_t padding_index : {-1, 0, 3}) {
    SCOPED_TRACE(padding_index);
    Tensor weight = RandomInput({5, 4}, 3);
    const Tensor upstream = RandomInput({2, 3, 4}, 4).detach();
    Sum(Mul(Embedding(weight, Ints(ids, {2, 3}), padding_index), upstream)).backward();
    const std::vector<float> expected =
        NaiveScatterAdd(upstream.ToFloats(), ids, 5, 4, padding_index);
    EXPECT_TRUE(AllClose(weight.grad(), expected, 1e-6));
    if (padding_index >= 0) {
      const std::vector<float> grad = weight.grad().ToFloats();
      for (int64_t c = 0; c < 4; ++c) EXPECT_EQ(grad[padding_index * 4 + c], 0.0f);
    }
  }
  // With a plain sum, row 2 (three occurrences) gets exactly 3.
  Tensor weight = RandomInput({4, 2}, 5);
  Sum(Embedding(weight, Ints({2, 1, 2, 2}, {4}))).backward();
  EXPECT_TRUE(AllClose(weight.grad(), {0, 0, 1, 1, 3, 3, 0, 0}, 0.0));
}

TEST(EmbeddingTest, PaddingRowsAreStillLookedUp) {
  const Tensor weight = RandomInput({3, 2}, 6);
  EXPECT_TRUE(AllClose(Embedding(weight, Ints({0, 1}, {2}), 0), NaiveLookup(weight, {0, 1}), 0.0));
}

TEST(EmbeddingTest, OutOfRangeIdThrowsNamingTheIdAndVocabulary) {
  const Tensor weight = Tensor::Zeros({5, 3});
  for (int32_t bad : {5, -1, 1000000}) {
    try {
      Embedding(weight, Ints({0, bad, 1}, {3}));
      ADD_FAILURE() << "expected attnlab::Error for id " << bad;
    } catch (const Error& error) {
      const std::string message = error.what();
      EXPECT_NE(message.find("id " + std::to_string(bad)), std::string::npos) << message;
      EXPECT_NE(message.find("5"), std::string::npos) << message;
      EXPECT_NE(message.find("[0, 5)"), std::string::npos) << message;
    }
  }
}

TEST(EmbeddingTest, BadArgumentsAreErrors) {
  EXPECT_THROW(Embedding(Tensor::Zeros({5}), Ints({0}, {1})), Error);         // weight not 2-D
  EXPECT_THROW(Embedding(Tensor::Zeros({5, 2}), Tensor::Zeros({1})), Error);  // ids not i32
  EXPECT_THROW(Embedding(Tensor::Zeros({5, 2}), Ints({0}, {1}), 5), Error);   // padding >= vocab
}

TEST(EmbeddingTest, GradientIsBitIdenticalOnOneAndTwoThreads) {
  // Many repeats of few ids, and more columns than one parallel chunk.
  std::vector<int32_t> ids;
  for (int32_t t = 0; t < 3000; ++t) ids.push_back((t * 13) % 17);
  const Tensor id_tensor = Ints(ids, {30, 100});
  const Tensor upstream = RandomInput({30, 100, 300}, 10).detach();
  const auto gradient = [&] {
    Tensor weight = RandomInput({17, 300}, 11);
    Sum(Mul(Embedding(weight, id_tensor, 4), upstream)).backward();
    return weight.grad().ToFloats();
  };
  EXPECT_TRUE(
      testing::BitIdentical(testing::OnThreads(1, gradient), testing::OnThreads(2, gradient)));
}

}  // namespace
}  // namespace attnlab
