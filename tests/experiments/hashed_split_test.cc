// The hashed split of real-data tasks: StableHash against values computed independently
// (the FNV-1a + splitmix64 formula in Python), the same seed giving the same splits and
// another seed others, disjoint splits covering every example, ~90/5/5 proportions, and
// caps that keep a prefix of the uncapped split.
#include "experiments/tasks/hashed_split.h"

#include <set>
#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace attnlab::experiments {
namespace {

std::vector<Example> Words(int count) {
  std::vector<Example> examples;
  for (int i = 0; i < count; ++i) examples.push_back({"w" + std::to_string(i), {"r"}});
  return examples;
}

std::vector<std::string> Sources(const std::vector<Example>& examples) {
  std::vector<std::string> sources;
  for (const Example& example : examples) sources.push_back(example.source);
  return sources;
}

TEST(StableHashTest, MatchesIndependentlyComputedValues) {
  EXPECT_EQ(StableHash("a", 0), 0x02c0bdbf481420f8ull);
  EXPECT_EQ(StableHash("a", 1), 0x270aeb36a95726cfull);
  EXPECT_EQ(StableHash("Haus", 1234), 0x47efc9976e360a38ull);
}

TEST(HashedSplitTest, SameSeedSameSplitsOtherSeedOthers) {
  const Splits first = SplitBySourceHash(Words(2000), 7, {});
  const Splits again = SplitBySourceHash(Words(2000), 7, {});
  const Splits other = SplitBySourceHash(Words(2000), 8, {});
  EXPECT_EQ(Sources(first.train), Sources(again.train));
  EXPECT_EQ(Sources(first.valid), Sources(again.valid));
  EXPECT_EQ(Sources(first.test), Sources(again.test));
  EXPECT_NE(Sources(first.test), Sources(other.test));
}

TEST(HashedSplitTest, SplitsAreDisjointCoverEverythingAndAreAbout90_5_5) {
  const Splits splits = SplitBySourceHash(Words(2000), 7, {});
  std::set<std::string> seen;
  for (const auto* split : {&splits.train, &splits.valid, &splits.test}) {
    for (const Example& example : *split) EXPECT_TRUE(seen.insert(example.source).second);
  }
  EXPECT_EQ(seen.size(), 2000u);
  // Binomial standard deviations: 13 for train, 10 for valid and test; allow ~4.
  EXPECT_NEAR(static_cast<double>(splits.train.size()), 1800, 55);
  EXPECT_NEAR(static_cast<double>(splits.valid.size()), 100, 40);
  EXPECT_NEAR(static_cast<double>(splits.test.size()), 100, 40);
}

TEST(HashedSplitTest, FileOrderDoesNotMatter) {
  std::vector<Example> reversed = Words(500);
  std::reverse(reversed.begin(), reversed.end());
  EXPECT_EQ(Sources(SplitBySourceHash(Words(500), 3, {}).test),
            Sources(SplitBySourceHash(reversed, 3, {}).test));
}

TEST(HashedSplitTest, CapsKeepAPrefixOfTheUncappedSplits) {
  const Splits whole = SplitBySourceHash(Words(2000), 7, {});
  const Splits capped = SplitBySourceHash(Words(2000), 7, {100, 10, 0});
  ASSERT_EQ(capped.train.size(), 100u);
  ASSERT_EQ(capped.valid.size(), 10u);
  EXPECT_EQ(capped.test.size(), whole.test.size());  // 0 = no cap
  for (size_t i = 0; i < capped.train.size(); ++i)
    EXPECT_EQ(capped.train[i].source, whole.train[i].source);
  for (size_t i = 0; i < capped.valid.size(); ++i)
    EXPECT_EQ(capped.valid[i].source, whole.valid[i].source);
}

}  // namespace
}  // namespace attnlab::experiments
