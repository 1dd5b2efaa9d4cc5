// CachingAllocator: size classes, 64-byte alignment, reuse of freed blocks, and the
// current / peak / cached byte counts. Most tests use a private allocator so that other
// tests' tensors do not disturb the counts; the last ones check the global one.
#include "framework/tensor/allocator.h"

#include <cstdint>
#include <vector>

#include "framework/tensor/tensor.h"
#include "gtest/gtest.h"

namespace attnlab {
namespace {

TEST(SizeClassTest, SmallRequestsRoundUpToMultiplesOf64) {
  EXPECT_EQ(CachingAllocator::SizeClass(0), 64u);
  EXPECT_EQ(CachingAllocator::SizeClass(1), 64u);
  EXPECT_EQ(CachingAllocator::SizeClass(64), 64u);
  EXPECT_EQ(CachingAllocator::SizeClass(65), 128u);
  EXPECT_EQ(CachingAllocator::SizeClass(1000), 1024u);
  EXPECT_EQ(CachingAllocator::SizeClass(1024), 1024u);
}

TEST(SizeClassTest, LargeRequestsUseFourClassesPerPowerOfTwo) {
  // Between 1024 and 2048 the classes are 1280, 1536, 1792, 2048.
  EXPECT_EQ(CachingAllocator::SizeClass(1025), 1280u);
  EXPECT_EQ(CachingAllocator::SizeClass(1280), 1280u);
  EXPECT_EQ(CachingAllocator::SizeClass(1281), 1536u);
  EXPECT_EQ(CachingAllocator::SizeClass(1700), 1792u);
  EXPECT_EQ(CachingAllocator::SizeClass(2048), 2048u);
  EXPECT_EQ(CachingAllocator::SizeClass(2049), 2560u);
  EXPECT_EQ(CachingAllocator::SizeClass(3000), 3072u);
  EXPECT_EQ(CachingAllocator::SizeClass(5000), 5120u);
  EXPECT_EQ(CachingAllocator::SizeClass(size_t{1} << 20), size_t{1} << 20);
  EXPECT_EQ(CachingAllocator::SizeClass((size_t{1} << 20) + 1), (size_t{1} << 20) * 5 / 4);
}

TEST(SizeClassTest, ClassesAreAlignedMonotonicAndWasteAtMostAQuarter) {
  size_t previous = 0;
  for (size_t bytes = 1; bytes <= (size_t{1} << 22); bytes += 1 + bytes / 61) {
    const size_t size_class = CachingAllocator::SizeClass(bytes);
    ASSERT_GE(size_class, bytes);
    ASSERT_GE(size_class, previous) << "bytes " << bytes;
    // aligned_alloc needs a size that is a multiple of the alignment.
    ASSERT_EQ(size_class % CachingAllocator::kAlignment, 0u) << "bytes " << bytes;
    if (bytes > 1024) {
      ASSERT_LE(size_class * 4, bytes * 5) << "bytes " << bytes;  // at most 25% waste
    } else {
      ASSERT_LT(size_class - bytes, CachingAllocator::kAlignment) << "bytes " << bytes;
    }
    previous = size_class;
  }
}

TEST(CachingAllocatorTest, BlocksAre64ByteAligned) {
  CachingAllocator allocator;
  std::vector<std::pair<void*, size_t>> blocks;
  for (size_t bytes : {0, 1, 63, 64, 100, 1025, 4096, 70000, 1 << 20}) {
    void* block = allocator.Allocate(bytes);
    EXPECT_EQ(reinterpret_cast<uintptr_t>(block) % CachingAllocator::kAlignment, 0u)
        << "bytes " << bytes;
    blocks.emplace_back(block, bytes);
  }
  for (const auto& [block, bytes] : blocks) allocator.Release(block, bytes);
}

TEST(CachingAllocatorTest, FreedBlockIsReusedInASteadyLoop) {
  CachingAllocator allocator;
  void* first = allocator.Allocate(4000);
  allocator.Release(first, 4000);
  for (int i = 0; i < 1000; ++i) {
    void* block = allocator.Allocate(4000);
    EXPECT_EQ(block, first);
    allocator.Release(block, 4000);
  }
  const AllocatorStats stats = allocator.Stats();
  EXPECT_EQ(stats.system_allocations, 1u);
  EXPECT_EQ(stats.allocations, 1001u);
  EXPECT_EQ(stats.current_bytes, 0u);
  EXPECT_EQ(stats.cached_bytes, 4096u);
}

TEST(CachingAllocatorTest, NearbySizesShareASizeClassBlock) {
  CachingAllocator allocator;
  void* block = allocator.Allocate(1100);  // class 1280
  allocator.Release(block, 1100);
  void* again = allocator.Allocate(1250);  // also class 1280
  EXPECT_EQ(again, block);
  allocator.Release(again, 1250);
  void* larger = allocator.Allocate(1300);  // class 1536: a new block
  EXPECT_NE(larger, block);
  allocator.Release(larger, 1300);
  EXPECT_EQ(allocator.Stats().system_allocations, 2u);
}

TEST(CachingAllocatorTest, TwoLiveBlocksOfOneClassAreDistinct) {
  CachingAllocator allocator;
  void* first = allocator.Allocate(512);
  void* second = allocator.Allocate(512);
  EXPECT_NE(first, second);
  allocator.Release(first, 512);
  allocator.Release(second, 512);
  EXPECT_EQ(allocator.Stats().system_allocations, 2u);
  EXPECT_EQ(allocator.Stats().cached_bytes, 1024u);
}

TEST(CachingAllocatorTest, TracksCurrentPeakAndCachedBytes) {
  CachingAllocator allocator;
  void* small = allocator.Allocate(1000);  // class 1024
  void* large = allocator.Allocate(3000);  // class 3072
  AllocatorStats stats = allocator.Stats();
  EXPECT_EQ(stats.current_bytes, 4096u);
  EXPECT_EQ(stats.peak_bytes, 4096u);
  EXPECT_EQ(stats.cached_bytes, 0u);

  allocator.Release(large, 3000);
  stats = allocator.Stats();
  EXPECT_EQ(stats.current_bytes, 1024u);
  EXPECT_EQ(stats.peak_bytes, 4096u);
  EXPECT_EQ(stats.cached_bytes, 3072u);

  allocator.ResetPeak();
  EXPECT_EQ(allocator.Stats().peak_bytes, 1024u);
  void* reused = allocator.Allocate(2900);  // class 3072, from the cache
  EXPECT_EQ(reused, large);
  stats = allocator.Stats();
  EXPECT_EQ(stats.current_bytes, 4096u);
  EXPECT_EQ(stats.peak_bytes, 4096u);
  EXPECT_EQ(stats.cached_bytes, 0u);
  EXPECT_EQ(stats.system_allocations, 2u);

  allocator.Release(reused, 2900);
  allocator.Release(small, 1000);
  EXPECT_EQ(allocator.Stats().current_bytes, 0u);
  EXPECT_EQ(allocator.Stats().cached_bytes, 4096u);
  allocator.EmptyCache();
  stats = allocator.Stats();
  EXPECT_EQ(stats.cached_bytes, 0u);
  EXPECT_EQ(stats.peak_bytes, 4096u);
  EXPECT_EQ(stats.system_allocations, 2u);

  // After EmptyCache the next request goes to the system again.
  void* fresh = allocator.Allocate(1000);
  EXPECT_EQ(allocator.Stats().system_allocations, 3u);
  allocator.Release(fresh, 1000);
}

// Inside a BorrowingScope a request from kMinBorrowBytes on, whose class has nothing
// cached, takes the smallest cached block of a class up to kMaxBorrowRatio times its own;
// released, the block serves its own class again. Outside the scope, below the minimum
// or beyond the ratio, a request gets a new block of its own class.
TEST(CachingAllocatorTest, BackwardBorrowsLargerCachedBlocks) {
  constexpr size_t kMiB = size_t{1} << 20;
  CachingAllocator allocator;
  void* four = allocator.Allocate(4 * kMiB);
  void* two = allocator.Allocate(2 * kMiB);
  allocator.Release(four, 4 * kMiB);
  allocator.Release(two, 2 * kMiB);
  ASSERT_EQ(allocator.Stats().system_allocations, 2u);
  {
    CachingAllocator::BorrowingScope borrowing(allocator);
    void* gradient = allocator.Allocate(kMiB);  // class 1 MiB: borrows the 2 MiB block
    EXPECT_EQ(gradient, two);
    EXPECT_EQ(allocator.Stats().current_bytes, 2 * kMiB);  // what the block holds
    EXPECT_EQ(allocator.Stats().cached_bytes, 4 * kMiB);
    void* second = allocator.Allocate(kMiB);  // then the 4 MiB one (4x, the limit)
    EXPECT_EQ(second, four);
    void* third = allocator.Allocate(kMiB);  // nothing left to borrow: a new block
    EXPECT_EQ(allocator.Stats().system_allocations, 3u);
    allocator.Release(gradient, kMiB);
    allocator.Release(second, kMiB);
    allocator.Release(third, kMiB);
    EXPECT_EQ(allocator.Stats().current_bytes, 0u);
    EXPECT_EQ(allocator.Stats().cached_bytes, 7 * kMiB);
    void* small = allocator.Allocate(32 << 10);  // below kMinBorrowBytes: its own class
    allocator.Release(small, 32 << 10);
    EXPECT_EQ(allocator.Stats().system_allocations, 4u);
    void* quarter = allocator.Allocate(kMiB - 1);  // 1 MiB class, cached: no borrowing
    EXPECT_EQ(quarter, third);
    allocator.Release(quarter, kMiB - 1);
    void* tiny_share = allocator.Allocate(kMiB / 2 + kMiB / 4);  // 3/4 MiB: 1 MiB is in reach
    EXPECT_EQ(tiny_share, third);
    allocator.Release(tiny_share, kMiB / 2 + kMiB / 4);
    void* far = allocator.Allocate(kMiB / 8 + 1);  // > 4x below every cached class
    allocator.Release(far, kMiB / 8 + 1);
    EXPECT_EQ(allocator.Stats().system_allocations, 5u);
  }
  // Back in their own classes, outside the scope.
  EXPECT_EQ(allocator.Allocate(4 * kMiB), four);
  EXPECT_EQ(allocator.Allocate(2 * kMiB), two);
  void* outside = allocator.Allocate(kMiB / 2);  // no scope: a new 512 KiB block
  EXPECT_EQ(allocator.Stats().system_allocations, 6u);
  allocator.Release(outside, kMiB / 2);
  allocator.Release(four, 4 * kMiB);
  allocator.Release(two, 2 * kMiB);
}

TEST(CachingAllocatorTest, ReleaseOfNullIsANoOp) {
  CachingAllocator allocator;
  allocator.Release(nullptr, 128);
  EXPECT_EQ(allocator.Stats().cached_bytes, 0u);
}

TEST(GlobalAllocatorTest, TensorLifetimeMovesCurrentBytesBySizeClass) {
  CachingAllocator& allocator = CachingAllocator::Global();
  const size_t before = allocator.Stats().current_bytes;
  {
    const Tensor t = Tensor::Empty({300});  // 1200 bytes, class 1280
    EXPECT_EQ(allocator.Stats().current_bytes, before + 1280);
    const Tensor view = t.narrow(0, 10, 20);  // a view allocates nothing
    EXPECT_EQ(allocator.Stats().current_bytes, before + 1280);
  }
  EXPECT_EQ(allocator.Stats().current_bytes, before);
}

TEST(GlobalAllocatorTest, SameSizeTensorsInALoopCauseNoSystemAllocations) {
  CachingAllocator& allocator = CachingAllocator::Global();
  { const Tensor warm_up = Tensor::Zeros({123, 45}); }
  const uint64_t system_before = allocator.Stats().system_allocations;
  const uint64_t allocations_before = allocator.Stats().allocations;
  for (int i = 0; i < 500; ++i) {
    const Tensor t = Tensor::Zeros({123, 45});
    ASSERT_EQ(allocator.Stats().system_allocations, system_before) << "iteration " << i;
  }
  EXPECT_EQ(allocator.Stats().allocations, allocations_before + 500);
}

TEST(CachingAllocatorTest, HugeRequestThrowsOutOfMemoryAndLeavesTheCountsAlone) {
  CachingAllocator allocator;
  const AllocatorStats before = allocator.Stats();
  // SIZE_MAX would wrap around in SizeClass(); 2^61 is merely more than any machine has.
  for (const size_t bytes : {SIZE_MAX, size_t{1} << 61}) {
    EXPECT_THROW(allocator.Allocate(bytes), OutOfMemoryError) << bytes;
    EXPECT_THROW(allocator.Allocate(bytes), std::bad_alloc) << bytes;
  }
  const AllocatorStats after = allocator.Stats();
  EXPECT_EQ(after.allocations, before.allocations);
  EXPECT_EQ(after.current_bytes, before.current_bytes);
  EXPECT_EQ(after.peak_bytes, before.peak_bytes);
}

TEST(MemoryBudgetTest, FormatsBytesAndRefusesMoreThanTheMachineHas) {
  EXPECT_EQ(FormatBytes(512), "512 B");
  EXPECT_EQ(FormatBytes(1536), "1.5 KiB");
  EXPECT_EQ(FormatBytes(4.0 * (1ull << 30)), "4.0 GiB");
  ASSERT_TRUE(AvailableMemoryBytes().has_value()) << "Linux has /proc/meminfo";
  EXPECT_GT(*AvailableMemoryBytes(), 0);
  EXPECT_TRUE(CheckMemoryAvailable(1 << 20, "a small thing").ok());
  const absl::Status status = CheckMemoryAvailable(1e30, "a huge thing");
  EXPECT_EQ(status.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_NE(status.message().find("a huge thing needs at least"), std::string::npos) << status;
  EXPECT_NE(status.message().find("available"), std::string::npos) << status;
}

}  // namespace
}  // namespace attnlab
