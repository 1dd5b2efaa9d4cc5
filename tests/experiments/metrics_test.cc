// The generic metrics against hand-worked values: exact match (any reference counts) and
// teacher-forced token accuracy (padding excluded).
#include "experiments/tasks/task.h"
#include "framework/core/error.h"
#include "gtest/gtest.h"

namespace attnlab::experiments {
namespace {

TEST(MetricsTest, ExactMatchCountsAnyReference) {
  // 4 examples: right, right via its second reference, wrong, wrong (prefix only).
  const std::vector<Example> examples = {
      {"a", {"x"}}, {"b", {"y", "yy"}}, {"c", {"z"}}, {"d", {"ww"}}};
  const std::vector<std::string> predictions = {"x", "yy", "q", "w"};
  EXPECT_DOUBLE_EQ(ExactMatchPercent(predictions, examples), 50.0);  // 2 of 4
  EXPECT_DOUBLE_EQ(ExactMatchPercent({}, {}), 0.0);
  const std::vector<std::string> one_prediction = {"x"};
  EXPECT_THROW(ExactMatchPercent(one_prediction, examples), attnlab::Error);
}

TEST(MetricsTest, TokenAccuracyIgnoresPadding) {
  // targets 5 6 2 0 | 7 2 0 0 (pad 0): 5 real tokens; predictions right at 5, 2 (row 1)
  // and 2 (row 2): 3 of 5 = 60%. Predictions at padded positions do not count.
  const std::vector<int32_t> targets = {5, 6, 2, 0, 7, 2, 0, 0};
  const std::vector<int32_t> predicted = {5, 9, 2, 4, 3, 2, 0, 9};
  const TokenCounts counts = CountCorrectTokens(predicted, targets, 0);
  EXPECT_EQ(counts.correct, 3);
  EXPECT_EQ(counts.total, 5);
  EXPECT_DOUBLE_EQ(counts.Percent(), 60.0);
  EXPECT_DOUBLE_EQ(CountCorrectTokens({}, {}, 0).Percent(), 0.0);
}

}  // namespace
}  // namespace attnlab::experiments
