// Batching: every example lands in exactly one batch per epoch, the token budget and the
// row limit hold (except for a single example longer than the budget, which gets a batch
// of its own), padding positions hold pad, target_input is bos + target[:-1], the
// evaluation order is by length, and shuffling is a deterministic function of the seed.
#include "experiments/data/batching.h"

#include <algorithm>
#include <cstdint>
#include <vector>

#include "experiments/data/task_random.h"
#include "experiments/data/vocabulary.h"
#include "gtest/gtest.h"

namespace attnlab::experiments {
namespace {

using Plan = std::vector<std::vector<int64_t>>;

// `count` examples with source and target lengths in [1, max_length] (eos included), of
// token ids >= 4 (past the reserved ones), ending in eos.
std::vector<EncodedExample> RandomExamples(int64_t count, int64_t max_length, uint64_t seed) {
  TaskRandom random(seed);
  std::vector<EncodedExample> examples(count);
  for (EncodedExample& example : examples) {
    for (std::vector<int32_t>* sequence : {&example.source, &example.target}) {
      const int64_t length = random.Uniform(1, max_length);
      for (int64_t i = 0; i + 1 < length; ++i)
        sequence->push_back(static_cast<int32_t>(random.Uniform(4, 50)));
      sequence->push_back(Vocabulary::kEos);
    }
  }
  return examples;
}

size_t LongerSide(const EncodedExample& example) {
  return std::max(example.source.size(), example.target.size());
}

::testing::AssertionResult EachExampleOnce(const Plan& plan, size_t count) {
  std::vector<int> seen(count, 0);
  for (const std::vector<int64_t>& batch : plan) {
    if (batch.empty()) return ::testing::AssertionFailure() << "an empty batch";
    for (const int64_t index : batch) {
      if (index < 0 || index >= static_cast<int64_t>(count)) {
        return ::testing::AssertionFailure() << "index " << index << " out of range";
      }
      ++seen[index];
    }
  }
  for (size_t i = 0; i < count; ++i) {
    if (seen[i] != 1)
      return ::testing::AssertionFailure() << "example " << i << " in " << seen[i] << " batches";
  }
  return ::testing::AssertionSuccess();
}

TEST(BatchPlanTest, EveryExampleIsInExactlyOneBatch) {
  const std::vector<EncodedExample> examples = RandomExamples(500, 40, 1);
  for (const bool shuffle : {false, true}) {
    for (const int64_t budget : {1, 40, 256, 100000}) {
      const Plan plan = MakeBatchPlan(examples, budget, /*max_batch_size=*/64, shuffle, /*seed=*/3);
      EXPECT_TRUE(EachExampleOnce(plan, examples.size()))
          << "budget " << budget << " shuffle " << shuffle;
    }
  }
}

TEST(BatchPlanTest, TokenBudgetAndRowLimitHold) {
  const std::vector<EncodedExample> examples = RandomExamples(500, 40, 2);
  constexpr int64_t kBudget = 300, kMaxRows = 16;
  const Plan plan = MakeBatchPlan(examples, kBudget, kMaxRows, /*shuffle=*/true, /*seed=*/5);
  for (const std::vector<int64_t>& batch : plan) {
    size_t longest = 0;
    for (const int64_t index : batch) longest = std::max(longest, LongerSide(examples[index]));
    EXPECT_LE(static_cast<int64_t>(batch.size()), kMaxRows);
    EXPECT_LE(static_cast<int64_t>(longest * batch.size()), kBudget)
        << batch.size() << " rows of up to " << longest << " tokens";
  }
  // Batches are full: only the budget or the row limit closed each one, so there are
  // not many more batches than the padded tokens need.
  int64_t tokens = 0;
  for (const EncodedExample& example : examples)
    tokens += static_cast<int64_t>(LongerSide(example));
  EXPECT_LT(static_cast<int64_t>(plan.size()), 2 * tokens / kBudget + 40);
}

TEST(BatchPlanTest, AnExampleLongerThanTheBudgetGetsABatchOfItsOwn) {
  std::vector<EncodedExample> examples = RandomExamples(50, 8, 3);
  EncodedExample long_example;
  long_example.source.assign(100, 7);
  long_example.source.push_back(Vocabulary::kEos);
  long_example.target = {9, Vocabulary::kEos};
  examples.push_back(long_example);
  const int64_t long_index = static_cast<int64_t>(examples.size()) - 1;
  const Plan plan = MakeBatchPlan(examples, /*batch_tokens=*/64, /*max_batch_size=*/32, true, 4);
  EXPECT_TRUE(EachExampleOnce(plan, examples.size()));
  int batches_with_long_example = 0;
  for (const std::vector<int64_t>& batch : plan) {
    if (std::find(batch.begin(), batch.end(), long_index) == batch.end()) continue;
    ++batches_with_long_example;
    EXPECT_EQ(batch, std::vector<int64_t>{long_index});
  }
  EXPECT_EQ(batches_with_long_example, 1);
}

TEST(BatchPlanTest, WithoutShuffleBatchesAreOrderedByLengthAndIgnoreTheSeed) {
  const std::vector<EncodedExample> examples = RandomExamples(300, 30, 6);
  const Plan plan = MakeBatchPlan(examples, 200, 32, /*shuffle=*/false, /*seed=*/1);
  EXPECT_EQ(plan, MakeBatchPlan(examples, 200, 32, false, /*seed=*/2));
  size_t previous = 0;
  for (const std::vector<int64_t>& batch : plan) {
    for (const int64_t index : batch) {
      EXPECT_GE(LongerSide(examples[index]), previous);
      previous = LongerSide(examples[index]);
    }
  }
}

TEST(BatchPlanTest, ShufflingIsDeterministicBySeed) {
  const std::vector<EncodedExample> examples = RandomExamples(400, 30, 7);
  const Plan first = MakeBatchPlan(examples, 200, 32, /*shuffle=*/true, /*seed=*/11);
  EXPECT_EQ(first, MakeBatchPlan(examples, 200, 32, true, 11));
  const Plan other = MakeBatchPlan(examples, 200, 32, true, 12);
  EXPECT_NE(first, other);
  EXPECT_TRUE(EachExampleOnce(other, examples.size()));
  // Shuffled is not the evaluation order.
  EXPECT_NE(first, MakeBatchPlan(examples, 200, 32, false, 11));
}

TEST(BatchPlanTest, NoExamplesGiveNoBatches) {
  EXPECT_TRUE(MakeBatchPlan({}, 100, 10, true, 1).empty());
}

TEST(MakeBatchTest, PadsAndShiftsTheTarget) {
  // Source lengths 3 and 1, target lengths 2 and 4 (eos = 2 included).
  const std::vector<EncodedExample> examples = {
      {{10, 11, Vocabulary::kEos}, {20, Vocabulary::kEos}},
      {{Vocabulary::kEos}, {30, 31, 32, Vocabulary::kEos}},
  };
  const Batch batch = MakeBatch(examples, {1, 0});
  ASSERT_EQ(batch.source.shape(), (Shape{2, 3}));
  ASSERT_EQ(batch.target_input.shape(), (Shape{2, 4}));
  ASSERT_EQ(batch.target_output.shape(), (Shape{2, 4}));
  EXPECT_EQ(batch.source.ToInts(), (std::vector<int32_t>{2, 0, 0,  //
                                                         10, 11, 2}));
  EXPECT_EQ(batch.target_output.ToInts(), (std::vector<int32_t>{30, 31, 32, 2,  //
                                                                20, 2, 0, 0}));
  EXPECT_EQ(batch.target_input.ToInts(), (std::vector<int32_t>{1, 30, 31, 32,  //
                                                               1, 20, 0, 0}));
  EXPECT_EQ(batch.example_indices, (std::vector<int64_t>{1, 0}));
  EXPECT_EQ(batch.source_tokens, 4);
  EXPECT_EQ(batch.target_tokens, 6);
}

TEST(MakeBatchTest, EveryRowFollowsTheLayoutOnRandomExamples) {
  const std::vector<EncodedExample> examples = RandomExamples(60, 12, 8);
  for (const std::vector<int64_t>& indices : MakeBatchPlan(examples, 64, 8, true, 9)) {
    const Batch batch = MakeBatch(examples, indices);
    const int64_t source_length = batch.source.size(1), target_length = batch.target_output.size(1);
    const std::vector<int32_t> source = batch.source.ToInts();
    const std::vector<int32_t> target_input = batch.target_input.ToInts();
    const std::vector<int32_t> target_output = batch.target_output.ToInts();
    for (size_t row = 0; row < indices.size(); ++row) {
      const EncodedExample& example = examples[indices[row]];
      for (int64_t t = 0; t < source_length; ++t) {
        const int32_t expected =
            t < static_cast<int64_t>(example.source.size()) ? example.source[t] : Vocabulary::kPad;
        EXPECT_EQ(source[row * source_length + t], expected);
      }
      for (int64_t t = 0; t < target_length; ++t) {
        const int64_t length = static_cast<int64_t>(example.target.size());
        const int32_t output = t < length ? example.target[t] : Vocabulary::kPad;
        const int32_t input = t == 0       ? Vocabulary::kBos
                              : t < length ? example.target[t - 1]
                                           : Vocabulary::kPad;
        EXPECT_EQ(target_output[row * target_length + t], output);
        EXPECT_EQ(target_input[row * target_length + t], input);
      }
    }
  }
}

}  // namespace
}  // namespace attnlab::experiments
