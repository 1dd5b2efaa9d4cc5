// Dropout on a batch shard (framework/ops/dropout_batch_shard.h): split a batch of
// global_rows into shards (halves, uneven thirds, one row each), run each shard under its
// DropoutBatchShard from the same generator state, as data-parallel ranks do, and the
// shards' outputs and gradients, one after another, are the whole batch's bit for bit,
// with the generator at the same offset afterwards; on 1 and 2 threads. Shapes cover
// rows of a multiple of 128 elements (shards start on a group of 128 stream elements,
// one PhiloxBlocks call), of 64 (on or half-way into a group) and of other lengths
// (shards start anywhere in a group: DropoutHalves' sliding window), 2-D, 3-D [B, T, D]
// and 4-D [B, H, T, S], and tensors of several parallel chunks (a "short" shard, under
// 128 elements, is one partial group); the fused attention's dropout likewise. Without a
// shard the results are pinned by a hash.
#include "framework/ops/dropout_batch_shard.h"

#include <cstring>
#include <functional>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "framework/ops/ops.h"
#include "framework/parallel/parallel_for.h"
#include "framework/random/generator.h"
#include "framework/random/philox.h"
#include "gtest/gtest.h"
#include "tests/support/bit_identical.h"
#include "tests/support/gradcheck.h"
#include "tests/support/thread_counts.h"

namespace attnlab {
namespace {

using testing::BitIdentical;
using testing::RandomInput;

// An op on batch-first inputs; first_row and rows say which rows of the global batch
// the inputs are, for the op's constants (a padding mask).
using BatchOp =
    std::function<Tensor(const std::vector<Tensor>& inputs, int64_t first_row, int64_t rows)>;

// What one run of an op produced: its output, each input's gradient, the generator's
// offset afterwards.
struct RunResult {
  std::vector<float> out;
  std::vector<std::vector<float>> grads;
  uint64_t offset = 0;
};

constexpr uint64_t kSeed = 21;

// Runs `op` on rows [first_row, first_row + rows) of `inputs` (fresh leaves) from the
// same generator state as every other run, under DropoutBatchShard(first_row, rows,
// global_rows) when `shard`, and backward with those rows of `upstream`.
RunResult RunRows(const BatchOp& op, const std::vector<Tensor>& inputs, const Tensor& upstream,
                  int64_t first_row, int64_t rows, bool shard) {
  const int64_t global_rows = inputs[0].size(0);
  std::vector<Tensor> leaves;
  for (const Tensor& input : inputs) {
    Tensor leaf = input.narrow(0, first_row, rows).contiguous().detach();
    leaf.set_requires_grad(true);
    leaves.push_back(leaf);
  }
  ManualSeed(kSeed);
  // Move the stream to an odd block first: nothing may assume an aligned start.
  Dropout(Tensor::Full({3}, 1.0f), 0.5f, true);
  Tensor out;
  {
    std::optional<DropoutBatchShard> guard;
    if (shard) guard.emplace(first_row, rows, global_rows);
    out = op(leaves, first_row, rows);
  }
  RunResult result;
  result.offset = DefaultGenerator().state().offset;
  Sum(Mul(out, upstream.narrow(0, first_row, rows).contiguous().detach())).backward();
  result.out = out.ToFloats();
  for (const Tensor& leaf : leaves) result.grads.push_back(leaf.grad().ToFloats());
  return result;
}

// Shard sizes that cover `rows`: halves, uneven thirds, one row each (up to 8 rows).
std::vector<std::vector<int64_t>> Splits(int64_t rows) {
  std::vector<std::vector<int64_t>> splits = {{rows - rows / 2, rows / 2}};
  if (rows >= 4) splits.push_back({1, rows - 3, 2});
  if (rows <= 8) splits.push_back(std::vector<int64_t>(rows, 1));
  return splits;
}

// For every split and on 1 and 2 threads, the shards' results put one after another
// equal the whole batch's (computed on 1 thread, without a shard) bit for bit.
void ExpectShardsEqualTheWholeBatch(const BatchOp& op, const std::vector<Shape>& input_shapes,
                                    const Shape& output_shape) {
  std::vector<Tensor> inputs;
  for (size_t i = 0; i < input_shapes.size(); ++i) {
    inputs.push_back(RandomInput(input_shapes[i], 100 + i, 0.5f, 2.0f));  // no zeros
  }
  const Tensor upstream = RandomInput(output_shape, 99);
  const int64_t global_rows = input_shapes[0][0];
  const testing::ThreadCountRestorer restore_threads;
  SetNumThreads(1);
  const RunResult whole = RunRows(op, inputs, upstream, 0, global_rows, /*shard=*/false);
  for (const int thread_count : {1, 2}) {
    SetNumThreads(thread_count);
    for (const std::vector<int64_t>& split : Splits(global_rows)) {
      const std::string label =
          absl::StrCat("split {", absl::StrJoin(split, ", "), "} on ", thread_count, " threads");
      RunResult joined;
      joined.grads.resize(inputs.size());
      int64_t first_row = 0;
      for (const int64_t rows : split) {
        const RunResult part = RunRows(op, inputs, upstream, first_row, rows, /*shard=*/true);
        EXPECT_EQ(part.offset, whole.offset)
            << label << ": the shard at row " << first_row << " moved the stream differently";
        joined.out.insert(joined.out.end(), part.out.begin(), part.out.end());
        for (size_t i = 0; i < inputs.size(); ++i) {
          joined.grads[i].insert(joined.grads[i].end(), part.grads[i].begin(), part.grads[i].end());
        }
        first_row += rows;
      }
      EXPECT_TRUE(BitIdentical(joined.out, whole.out)) << label << ": outputs";
      for (size_t i = 0; i < inputs.size(); ++i) {
        EXPECT_TRUE(BitIdentical(joined.grads[i], whole.grads[i])) << label << ": gradient " << i;
      }
    }
  }
}

struct ShapeCase {
  Shape shape;
  std::string what;  // which kernel the shards' offsets exercise
};

void PrintTo(const ShapeCase& shape_case, std::ostream* os) {
  *os << ShapeToString(shape_case.shape) << " (" << shape_case.what << ")";
}

class DropoutShardTest : public ::testing::TestWithParam<ShapeCase> {};

TEST_P(DropoutShardTest, ShardsEqualRowsOfTheWholeBatch) {
  const Shape& shape = GetParam().shape;
  ExpectShardsEqualTheWholeBatch(
      [](const std::vector<Tensor>& x, int64_t, int64_t) { return Dropout(x[0], 0.3f, true); },
      {shape}, shape);
}

// Two calls in a row under one shard: the second starts where the first left the stream.
TEST_P(DropoutShardTest, ConsecutiveCallsOnAShardEqualTheWholeBatch) {
  const Shape& shape = GetParam().shape;
  ExpectShardsEqualTheWholeBatch(
      [](const std::vector<Tensor>& x, int64_t, int64_t) {
        return Dropout(Dropout(x[0], 0.2f, true), 0.4f, true);
      },
      {shape}, shape);
}

INSTANTIATE_TEST_SUITE_P(
    Shapes, DropoutShardTest,
    ::testing::Values(ShapeCase{{8, 64}, "rows of 64: on and half-way into groups"},
                      ShapeCase{{7, 12}, "rows of 12: mask words straddle rows"},
                      ShapeCase{{6, 2}, "rows of 2: short"},
                      ShapeCase{{5, 7}, "rows of 7: odd starts, short"},
                      ShapeCase{{4, 24, 16}, "[B, T, D] rows of 384: whole groups"},
                      ShapeCase{{5, 9, 13}, "[B, T, D] rows of 117"},
                      ShapeCase{{6, 37, 301}, "[B, T, D] rows of 11137: 2+ chunks"},
                      ShapeCase{{4, 4, 24, 24}, "[B, H, T, S] rows of 2304: whole groups"},
                      ShapeCase{{5, 2, 7, 9}, "[B, H, T, S] rows of 126"},
                      ShapeCase{{3, 3, 5, 7}, "[B, H, T, S] rows of 105"}),
    [](const ::testing::TestParamInfo<ShapeCase>& info) {
      return absl::StrCat("shape_", absl::StrJoin(info.param.shape, "x"));
    });

// The fused attention's dropout on [batch, heads, tgt, src] weights, with a padding
// mask whose rows go with the shard, and causal masking; query, key and value gradients.
TEST(DropoutShardTest, FusedAttentionShardsEqualRowsOfTheWholeBatch) {
  struct AttentionCase {
    int64_t batch, heads, tgt, src, dim;
  };
  for (const AttentionCase& c : {AttentionCase{5, 3, 7, 9, 4}, AttentionCase{4, 2, 8, 8, 8}}) {
    std::vector<float> padding_values(c.batch * c.src, 0.0f);
    for (int64_t b = 0; b < c.batch; ++b) {
      for (int64_t s = c.src - b % 3; s < c.src; ++s) padding_values[b * c.src + s] = 1.0f;
    }
    const Tensor padding = Tensor::FromFloats(padding_values, {c.batch, c.src});
    const BatchOp attention = [&padding, dim = c.dim](const std::vector<Tensor>& x,
                                                      int64_t first_row, int64_t rows) {
      return ScaledDotProductAttention(x[0], x[1], x[2], padding.narrow(0, first_row, rows),
                                       /*causal=*/true, /*query_offset=*/1,
                                       1.0f / static_cast<float>(dim), 0.3f, /*training=*/true);
    };
    SCOPED_TRACE(
        absl::StrCat("batch ", c.batch, " heads ", c.heads, " tgt ", c.tgt, " src ", c.src));
    ExpectShardsEqualTheWholeBatch(attention,
                                   {{c.batch, c.heads, c.tgt, c.dim},
                                    {c.batch, c.heads, c.src, c.dim},
                                    {c.batch, c.heads, c.src, c.dim}},
                                   {c.batch, c.heads, c.tgt, c.dim});
  }
}

// The definition, element by element: local element i of a shard of rows of 7 is kept
// iff DropoutKeeps(seed, first, g, threshold), g = first_row * 7 + i, where the call
// reserved the global tensor's ceil(global_rows * 7 / 8) blocks from `first`.
TEST(DropoutShardTest, ShardElementsAreKeyedByTheirGlobalIndex) {
  const int64_t per_row = 7, global_rows = 40;
  const float p = 0.5f;
  for (const int64_t first_row : {0, 1, 2, 3, 13}) {
    const int64_t rows = 27;
    ManualSeed(4);
    const uint64_t first = DefaultGenerator().state().offset;
    std::vector<float> out;
    {
      DropoutBatchShard shard(first_row, rows, global_rows);
      out = Dropout(Tensor::Full({rows, per_row}, 1.0f), p, true).ToFloats();
    }
    EXPECT_EQ(DefaultGenerator().state().offset, first + (global_rows * per_row + 7) / 8);
    int64_t mismatches = 0;
    for (int64_t i = 0; i < rows * per_row; ++i) {
      const int64_t g = first_row * per_row + i;
      const bool keep = DropoutKeeps(4, first, g, DropoutThreshold(p));
      mismatches += out[i] != (keep ? 2.0f : 0.0f);
    }
    EXPECT_EQ(mismatches, 0) << "first_row " << first_row;
  }
}

TEST(DropoutShardTest, TheWholeBatchAsOneShardChangesNothing) {
  const Shape shape = {5, 9, 13};
  const Tensor x = RandomInput(shape, 7);
  ManualSeed(8);
  const std::vector<float> plain = Dropout(x, 0.3f, true).ToFloats();
  const uint64_t plain_offset = DefaultGenerator().state().offset;
  ManualSeed(8);
  std::vector<float> sharded;
  {
    DropoutBatchShard shard(0, 5, 5);
    sharded = Dropout(x, 0.3f, true).ToFloats();
  }
  EXPECT_TRUE(BitIdentical(sharded, plain));
  EXPECT_EQ(DefaultGenerator().state().offset, plain_offset);
}

uint64_t Fnv1a(uint64_t hash, const std::vector<float>& values) {
  for (const float value : values) {
    uint32_t bits;
    std::memcpy(&bits, &value, sizeof(bits));
    for (int byte = 0; byte < 4; ++byte) {
      hash ^= (bits >> (8 * byte)) & 0xFF;
      hash *= 0x100000001b3ULL;
    }
  }
  return hash;
}

// Outputs, gradients and the stream's offset of Dropout and the fused attention without
// a shard, hashed: pinned when batch shards were added (commit 613d994, where they
// matched the code before shards) and again when masks moved to 16 bits per element
// (dropout_stream.h), so this fails if the unsharded path changes by a single bit.
TEST(DropoutShardTest, WithoutAShardResultsArePinned) {
  const testing::ThreadCountRestorer restore_threads;
  for (const int thread_count : {1, 2}) {
    SetNumThreads(thread_count);
    ManualSeed(2024);
    uint64_t hash = 0xcbf29ce484222325ULL;
    for (const Shape& shape : {Shape{7}, Shape{5, 7}, Shape{4, 9, 11}, Shape{3, 2, 5, 7},
                               Shape{64, 24, 128}, Shape{3, 16391}}) {
      Generator generator(99);
      Tensor x = RandomUniform(shape, 0.5f, 2.0f, generator);
      x.set_requires_grad(true);
      const Tensor y = Dropout(x, 0.3f, true);
      const Tensor upstream = RandomUniform(shape, -1.0f, 1.0f, generator);
      Sum(Mul(y, upstream)).backward();
      hash = Fnv1a(hash, y.ToFloats());
      hash = Fnv1a(hash, x.grad().ToFloats());
    }
    const Tensor q = RandomUniform({2, 3, 5, 4}, -1, 1), k = RandomUniform({2, 3, 7, 4}, -1, 1),
                 v = RandomUniform({2, 3, 7, 4}, -1, 1);
    hash = Fnv1a(
        hash, ScaledDotProductAttention(q, k, v, Tensor(), false, 0, 0.5f, 0.3f, true).ToFloats());
    EXPECT_EQ(hash, 0x310dbc8741f489fcULL) << thread_count << " threads";
    EXPECT_EQ(DefaultGenerator().state().offset, 30947u) << thread_count << " threads";
  }
}

// A time-major [T, B, E] input cannot be mapped to global positions: dim 0 must be the
// shard's rows.
TEST(DropoutShardTest, DimZeroOtherThanTheShardRowsIsAnError) {
  DropoutBatchShard shard(2, 3, 8);
  EXPECT_THROW(Dropout(Tensor::Full({5, 3, 4}, 1.0f), 0.1f, true), Error);
  EXPECT_THROW(Dropout(Tensor::Full({4}, 1.0f), 0.1f, true), Error);
  const Tensor q = Tensor::Full({2, 1, 3, 4}, 1.0f);
  EXPECT_THROW(ScaledDotProductAttention(q, q, q, Tensor(), false, 0, 1.0f, 0.1f, true), Error);
  EXPECT_NO_THROW(Dropout(Tensor::Full({3, 5}, 1.0f), 0.1f, true));
}

// Nothing is drawn, and nothing checked, when dropout is off.
TEST(DropoutShardTest, EvalModeAndZeroPIgnoreTheShard) {
  DropoutBatchShard shard(0, 3, 8);
  const Tensor x = Tensor::Full({5, 2}, 1.0f);
  const uint64_t before = DefaultGenerator().state().offset;
  EXPECT_EQ(Dropout(x, 0.5f, /*training=*/false).impl(), x.impl());
  EXPECT_EQ(Dropout(x, 0.0f, true).impl(), x.impl());
  EXPECT_EQ(DefaultGenerator().state().offset, before);
}

TEST(DropoutShardTest, InvalidShardsAreErrors) {
  EXPECT_THROW(DropoutBatchShard(-1, 2, 4), Error);
  EXPECT_THROW(DropoutBatchShard(0, 0, 4), Error);
  EXPECT_THROW(DropoutBatchShard(3, 2, 4), Error);
}

// The shard lives in its scope and on its thread; an inner one is undone on exit.
TEST(DropoutShardTest, TheShardIsScopedAndPerThread) {
  EXPECT_FALSE(DropoutBatchShard::Active().has_value());
  {
    DropoutBatchShard outer(2, 3, 8);
    {
      DropoutBatchShard inner(0, 1, 2);
      EXPECT_EQ(DropoutBatchShard::Active()->global_rows, 2);
    }
    const std::optional<ShardRows> active = DropoutBatchShard::Active();
    ASSERT_TRUE(active.has_value());
    EXPECT_EQ(active->first_row, 2);
    EXPECT_EQ(active->rows, 3);
    EXPECT_EQ(active->global_rows, 8);
    bool other_thread_sees_one = true;
    std::thread other([&] { other_thread_sees_one = DropoutBatchShard::Active().has_value(); });
    other.join();
    EXPECT_FALSE(other_thread_sees_one);
  }
  EXPECT_FALSE(DropoutBatchShard::Active().has_value());
}

}  // namespace
}  // namespace attnlab
