// GradientBuckets: how slots are grouped (reverse order, contiguous, never split) and the
// order in which buckets are handed out during a backward.
#include "framework/distributed/gradient_buckets.h"

#include <vector>

#include "framework/core/error.h"
#include "gtest/gtest.h"

namespace attnlab::distributed {
namespace {

// Five slots of 16, 16, 32, 16 and 48 elements (as a FlatArena lays them out): 128 in all.
// A returned range of buckets as a vector, to compare.
std::vector<int> Indices(GradientBuckets::BucketRange range) {
  std::vector<int> indices;
  for (const int index : range) indices.push_back(index);
  return indices;
}

const std::vector<int64_t> kOffsets = {0, 16, 32, 64, 80};
constexpr int64_t kTotal = 128;

TEST(GradientBuckets, GroupsSlotsFromTheLastInContiguousRanges) {
  const GradientBuckets buckets(kOffsets, kTotal, 40);
  ASSERT_EQ(buckets.buckets().size(), 3u);
  // Slot 4 alone has 48 >= 40; slots 3 and 2 have 16 + 32; slots 1 and 0 are what is left.
  EXPECT_EQ(buckets.buckets()[0].first_slot, 4);
  EXPECT_EQ(buckets.buckets()[0].begin, 80);
  EXPECT_EQ(buckets.buckets()[0].end, 128);
  EXPECT_EQ(buckets.buckets()[1].first_slot, 2);
  EXPECT_EQ(buckets.buckets()[1].end_slot, 4);
  EXPECT_EQ(buckets.buckets()[1].begin, 32);
  EXPECT_EQ(buckets.buckets()[1].end, 80);
  EXPECT_EQ(buckets.buckets()[2].first_slot, 0);
  EXPECT_EQ(buckets.buckets()[2].begin, 0);
  EXPECT_EQ(buckets.buckets()[2].end, 32);
  EXPECT_EQ(buckets.BucketOfSlot(0), 2);
  EXPECT_EQ(buckets.BucketOfSlot(3), 1);
}

TEST(GradientBuckets, OneBigBucketOrOneSlotEach) {
  EXPECT_EQ(GradientBuckets(kOffsets, kTotal, 1000).buckets().size(), 1u);
  EXPECT_EQ(GradientBuckets(kOffsets, kTotal, 1).buckets().size(), 5u);
  EXPECT_TRUE(GradientBuckets(std::vector<int64_t>{}, 0, 10).buckets().empty());
}

TEST(GradientBuckets, HandsBucketsOutInOrderOnly) {
  GradientBuckets buckets(kOffsets, kTotal, 40);
  EXPECT_TRUE(Indices(buckets.MarkReady(0)).empty());  // bucket 2 complete, but 0 and 1 are not
  EXPECT_TRUE(Indices(buckets.MarkReady(1)).empty());
  EXPECT_EQ(Indices(buckets.MarkReady(4)), std::vector<int>{0});
  EXPECT_TRUE(Indices(buckets.MarkReady(3)).empty());
  EXPECT_EQ(Indices(buckets.MarkReady(2)), (std::vector<int>{1, 2}));  // 2 was waiting for 1
  EXPECT_TRUE(Indices(buckets.Remaining()).empty());
  EXPECT_THROW(buckets.MarkReady(2), Error);  // twice in one backward

  buckets.Reset();
  EXPECT_EQ(Indices(buckets.MarkReady(4)), std::vector<int>{0});
  EXPECT_EQ(Indices(buckets.Remaining()), (std::vector<int>{1, 2}));  // slots never reached
}

}  // namespace
}  // namespace attnlab::distributed
