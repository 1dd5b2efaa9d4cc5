// The all-reduce's arithmetic without MPI: how a buffer is cut into per-rank chunks, and
// the fixed rank-order sum against values worked by hand.
#include "framework/distributed/rank_order_sum.h"

#include <vector>

#include "gtest/gtest.h"

namespace attnlab::distributed {
namespace {

TEST(ChunkLayout, SizesDifferByAtMostOneLargerFirst) {
  const ChunkLayout layout(10, 3);  // 10 = 4 + 3 + 3
  EXPECT_EQ(layout.begin(0), 0);
  EXPECT_EQ(layout.size(0), 4);
  EXPECT_EQ(layout.begin(1), 4);
  EXPECT_EQ(layout.size(1), 3);
  EXPECT_EQ(layout.begin(2), 7);
  EXPECT_EQ(layout.size(2), 3);
}

TEST(ChunkLayout, FewerElementsThanPartsLeavesEmptyChunks) {
  const ChunkLayout layout(2, 4);  // 1, 1, 0, 0
  EXPECT_EQ(layout.size(0), 1);
  EXPECT_EQ(layout.size(1), 1);
  EXPECT_EQ(layout.size(2), 0);
  EXPECT_EQ(layout.size(3), 0);
  EXPECT_EQ(layout.begin(3), 2);
  const ChunkLayout empty(0, 2);
  EXPECT_EQ(empty.size(0), 0);
  EXPECT_EQ(empty.size(1), 0);
}

TEST(SumInRankOrder, AddsLeftToRightInRankOrder) {
  // Floats have 24 bits of mantissa: 1e8 + 1 rounds back to 1e8. The same three values
  // sum to 0 in one order, (1e8 + 1) + -1e8, and to 1 in another, (1e8 + -1e8) + 1:
  // elements 0 and 1 hold them in those two rank orders.
  const std::vector<float> rank0 = {1e8f, 1e8f, 2.0f};
  const std::vector<float> rank1 = {1.0f, -1e8f, 0.5f};
  const std::vector<float> rank2 = {-1e8f, 1.0f, 0.25f};
  const std::vector<const float*> contributions = {rank0.data(), rank1.data(), rank2.data()};
  std::vector<float> out(3);
  SumInRankOrder(contributions, 3, 1.0f, out.data());
  EXPECT_EQ(out[0], 0.0f);   // (1e8 + 1) + -1e8 = 1e8 - 1e8
  EXPECT_EQ(out[1], 1.0f);   // (1e8 + -1e8) + 1
  EXPECT_EQ(out[2], 2.75f);  // (2 + 0.5) + 0.25
}

TEST(SumInRankOrder, MeanDividesTheSumOnce) {
  const std::vector<float> rank0 = {1.0f, -3.0f};
  const std::vector<float> rank1 = {2.0f, 0.0f};
  const std::vector<float> rank2 = {4.0f, 1.5f};
  const std::vector<const float*> contributions = {rank0.data(), rank1.data(), rank2.data()};
  std::vector<float> out(2);
  SumInRankOrder(contributions, 2, 3.0f, out.data());
  EXPECT_EQ(out[0], 7.0f / 3.0f);  // the correctly rounded 7/3
  EXPECT_EQ(out[1], -0.5f);        // -1.5 / 3
}

TEST(SumInRankOrder, OutputMayBeAContributionAcrossManyBlocks) {
  // 2500 elements: three blocks of the kernel, the last one partial. The output is the
  // second contribution, as in the all-reduce (a rank's own chunk).
  const int64_t count = 2500;
  std::vector<float> rank0(count), rank1(count);
  for (int64_t i = 0; i < count; ++i) {
    rank0[i] = static_cast<float>(i);
    rank1[i] = 0.5f * static_cast<float>(i);
  }
  const std::vector<const float*> contributions = {rank0.data(), rank1.data()};
  SumInRankOrder(contributions, count, 2.0f, rank1.data());
  for (int64_t i = 0; i < count; ++i) {
    ASSERT_EQ(rank1[i], 0.75f * static_cast<float>(i)) << "element " << i;  // (i + i/2) / 2
  }
}

}  // namespace
}  // namespace attnlab::distributed
