// The communicator, run by ctest twice: as a plain process (one rank, no MPI) and under
// `mpirun --oversubscribe -np 2`. Tests about one rank skip under mpirun and tests about
// two ranks skip alone; the rest hold for any rank count.
//
// Every rank can compute every rank's contribution (ContributionOf, from the rank and the
// element's index), so each rank checks the reduced buffer bit for bit against a local
// reference sum in rank order. Collectives are never skipped by a failed assertion
// (EXPECT only, or ASSERT after the last collective of a test), so the ranks stay in step.
#include "framework/distributed/communicator.h"

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <thread>
#include <vector>

#include "absl/time/clock.h"
#include "framework/distributed/launch.h"
#include "gtest/gtest.h"
#include "tests/framework/distributed/shared_communicator.h"

namespace attnlab::distributed {
namespace {

using testing::SharedCommunicator;

// A float of varied sign and magnitude (2^-10 .. 2^10), so that the order of additions
// matters in the last bits (for three or more ranks).
float ContributionOf(int rank, int64_t index, uint64_t seed) {
  uint64_t x = seed * 0x9E3779B97F4A7C15ull + static_cast<uint64_t>(rank) * 1000003ull +
               static_cast<uint64_t>(index);
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;  // splitmix64's finaliser
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  x ^= x >> 31;
  const float mantissa = static_cast<float>(x & 0xFFFFFF) / 16777216.0f - 0.5f;
  const int exponent = static_cast<int>((x >> 24) % 21) - 10;
  return std::ldexp(mantissa, exponent);
}

std::vector<float> ContributionsOf(int rank, int64_t count, uint64_t seed) {
  std::vector<float> values(count);
  for (int64_t i = 0; i < count; ++i) values[i] = ContributionOf(rank, i, seed);
  return values;
}

// The reduction every rank must get: ((x_0 + x_1) + ...) [/ N], element by element.
std::vector<float> ReferenceReduction(int ranks, int64_t count, uint64_t seed, ReduceOp op) {
  std::vector<float> result(count);
  for (int64_t i = 0; i < count; ++i) {
    float sum = ContributionOf(0, i, seed);
    for (int rank = 1; rank < ranks; ++rank) sum += ContributionOf(rank, i, seed);
    result[i] = op == ReduceOp::kMean ? sum / static_cast<float>(ranks) : sum;
  }
  return result;
}

// Number of elements where the two differ in any bit.
int64_t BitDifferences(const std::vector<float>& a, const std::vector<float>& b) {
  if (a.size() != b.size()) return -1;
  int64_t differences = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    differences += std::memcmp(&a[i], &b[i], sizeof(float)) != 0;
  }
  return differences;
}

TEST(Communicator, RankAndSizeDescribeTheJob) {
  Communicator& communicator = SharedCommunicator();
  EXPECT_GE(communicator.size(), 1);
  EXPECT_GE(communicator.rank(), 0);
  EXPECT_LT(communicator.rank(), communicator.size());
  EXPECT_EQ(communicator.uses_mpi(), StartedByMpiLauncher());
  EXPECT_EQ(Communicator::MpiIsInitialized(), communicator.uses_mpi());
  if (const char* size = std::getenv("OMPI_COMM_WORLD_SIZE")) {
    EXPECT_EQ(communicator.size(), std::atoi(size));
  }
}

TEST(Communicator, PlainProcessIsOneRankWithoutMpi) {
  Communicator& communicator = SharedCommunicator();
  if (StartedByMpiLauncher()) GTEST_SKIP() << "runs as a plain process only";
  EXPECT_EQ(communicator.size(), 1);
  EXPECT_EQ(communicator.rank(), 0);
  EXPECT_FALSE(communicator.uses_mpi());
  EXPECT_FALSE(Communicator::MpiIsInitialized());  // not even as an Open MPI singleton

  // Every collective returns at once; an all-reduce of one rank is the identity.
  const std::vector<float> original = {1.5f, -0.0f, 3e-38f, -7.25f};
  std::vector<float> buffer = original;
  EXPECT_TRUE(communicator.AllReduce(buffer, ReduceOp::kSum).ok());
  EXPECT_EQ(BitDifferences(buffer, original), 0);
  EXPECT_TRUE(communicator.AllReduce(buffer, ReduceOp::kMean).ok());
  EXPECT_EQ(BitDifferences(buffer, original), 0);
  EXPECT_TRUE(communicator.Broadcast(buffer, 0).ok());
  EXPECT_EQ(BitDifferences(buffer, original), 0);
  EXPECT_TRUE(communicator.Barrier().ok());
  const absl::Status bad_root = communicator.Broadcast(buffer, 1);
  EXPECT_EQ(bad_root.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(bad_root.message().find("rank 0 of 1"), std::string::npos) << bad_root;
  EXPECT_FALSE(Communicator::MpiIsInitialized());
}

TEST(Communicator, SecondCommunicatorWithoutMpiIsAnotherRankZero) {
  if (StartedByMpiLauncher()) GTEST_SKIP() << "runs as a plain process only";
  auto second = Communicator::Create();
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_EQ((*second)->size(), 1);
}

TEST(Communicator, SecondCommunicatorOverMpiIsRefused) {
  if (!StartedByMpiLauncher()) GTEST_SKIP() << "runs under mpirun only";
  auto second = Communicator::Create();
  EXPECT_EQ(second.status().code(), absl::StatusCode::kFailedPrecondition);
}

TEST(Communicator, NegativeTimeoutIsRejected) {
  CommunicatorOptions options;
  options.collective_timeout = absl::Seconds(-1);
  EXPECT_EQ(Communicator::Create(options).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(Communicator, TwoRankSumAndMeanMatchHandWorkedValues) {
  Communicator& communicator = SharedCommunicator();
  if (communicator.size() != 2) GTEST_SKIP() << "needs exactly 2 ranks";
  const std::vector<float> rank0 = {1.0f, 2.0f, 3.5f, -4.0f, 0.25f, 1e8f};
  const std::vector<float> rank1 = {10.0f, -2.0f, 0.5f, 4.0f, 0.5f, 1.0f};
  std::vector<float> sum = communicator.rank() == 0 ? rank0 : rank1;
  std::vector<float> mean = sum;
  ASSERT_TRUE(communicator.AllReduce(sum, ReduceOp::kSum).ok());
  ASSERT_TRUE(communicator.AllReduce(mean, ReduceOp::kMean).ok());
  // 1e8 + 1 rounds to 1e8 in float; its mean is 5e7.
  EXPECT_EQ(sum, (std::vector<float>{11.0f, 0.0f, 4.0f, 0.0f, 0.75f, 1e8f}));
  EXPECT_EQ(mean, (std::vector<float>{5.5f, 0.0f, 2.0f, 0.0f, 0.375f, 5e7f}));
}

TEST(Communicator, AllReduceEqualsRankOrderReferenceBitForBit) {
  Communicator& communicator = SharedCommunicator();
  for (const ReduceOp op : {ReduceOp::kSum, ReduceOp::kMean}) {
    for (const int64_t count : {int64_t{0}, int64_t{1}, int64_t{3}, int64_t{100003}}) {
      std::vector<float> buffer = ContributionsOf(communicator.rank(), count, 11);
      EXPECT_TRUE(communicator.AllReduce(buffer, op).ok());
      EXPECT_EQ(BitDifferences(buffer, ReferenceReduction(communicator.size(), count, 11, op)), 0)
          << "count " << count << (op == ReduceOp::kMean ? " (mean)" : " (sum)");
    }
  }
}

TEST(Communicator, ManyBucketsOfOddSizesStartedBackToBack) {
  Communicator& communicator = SharedCommunicator();
  // 40 buckets of odd and uneven sizes (1 .. 4001 elements, one empty), all started before
  // the first Wait, as backward would start them.
  std::vector<int64_t> bucket_sizes = {1, 0, 3, 4001, 7, 2};
  for (int64_t i = 0; bucket_sizes.size() < 40; ++i) bucket_sizes.push_back(97 * i % 1009 + 1);
  int64_t total = 0;
  for (int64_t size : bucket_sizes) total += size;
  std::vector<float> buffer = ContributionsOf(communicator.rank(), total, 23);
  const auto before = communicator.stats();
  int64_t offset = 0;
  for (int64_t size : bucket_sizes) {
    communicator.StartAllReduce(std::span<float>(buffer).subspan(offset, size), ReduceOp::kMean);
    offset += size;
  }
  EXPECT_TRUE(communicator.Wait().ok());
  EXPECT_EQ(
      BitDifferences(buffer, ReferenceReduction(communicator.size(), total, 23, ReduceOp::kMean)),
      0);
  const auto after = communicator.stats();
  EXPECT_EQ(after.all_reduce_count - before.all_reduce_count, 40);
  EXPECT_EQ(after.all_reduce_bytes - before.all_reduce_bytes, total * 4);
}

TEST(Communicator, RepeatedAllReduceIsBitIdenticalAndEqualOnEveryRank) {
  Communicator& communicator = SharedCommunicator();
  const int64_t count = 65537;
  std::vector<float> first;
  for (int repetition = 0; repetition < 3; ++repetition) {
    std::vector<float> buffer = ContributionsOf(communicator.rank(), count, 5);
    EXPECT_TRUE(communicator.AllReduce(buffer, ReduceOp::kSum).ok());
    if (repetition == 0) {
      first = buffer;
    } else {
      EXPECT_EQ(BitDifferences(buffer, first), 0) << "repetition " << repetition;
    }
  }
  // Rank 0's result, broadcast, equals every rank's own.
  std::vector<float> rank0_result = first;
  EXPECT_TRUE(communicator.Broadcast(rank0_result, 0).ok());
  EXPECT_EQ(BitDifferences(rank0_result, first), 0);
}

TEST(Communicator, BroadcastCopiesTheRootsBuffer) {
  Communicator& communicator = SharedCommunicator();
  const int root = communicator.size() - 1;
  const int64_t count = 300001;
  std::vector<float> buffer = ContributionsOf(communicator.rank(), count, 3);
  EXPECT_TRUE(communicator.Broadcast(buffer, root).ok());
  EXPECT_EQ(BitDifferences(buffer, ContributionsOf(root, count, 3)), 0);
  EXPECT_TRUE(communicator.Barrier().ok());
}

TEST(Communicator, StartAllReduceReturnsWhileAPeerIsLate) {
  Communicator& communicator = SharedCommunicator();
  if (communicator.size() != 2) GTEST_SKIP() << "needs exactly 2 ranks";
  EXPECT_TRUE(communicator.Barrier().ok());
  std::vector<float> buffer(1000, 1.0f);
  // Rank 1 joins 500 ms late; rank 0's StartAllReduce must return long before that (it
  // only queues), and its Wait() must return only after rank 1 has joined.
  if (communicator.rank() == 1) std::this_thread::sleep_for(std::chrono::milliseconds(500));
  const absl::Time start = absl::Now();
  communicator.StartAllReduce(buffer, ReduceOp::kSum);
  const absl::Duration start_took = absl::Now() - start;
  EXPECT_TRUE(communicator.Wait().ok());
  const absl::Duration total = absl::Now() - start;
  if (communicator.rank() == 0) {
    EXPECT_LT(start_took, absl::Milliseconds(100));
    EXPECT_GT(total, absl::Milliseconds(300));
  }
  EXPECT_EQ(buffer, std::vector<float>(1000, 2.0f));
}

TEST(Communicator, RecordsBytesAndTimesOfEachAllReduce) {
  Communicator& communicator = SharedCommunicator();
  communicator.TakeRecords();  // forget earlier tests' records
  std::vector<float> buffer(1001, 0.5f);
  EXPECT_TRUE(communicator.AllReduce(buffer, ReduceOp::kSum).ok());
  EXPECT_TRUE(communicator.Barrier().ok());
  const std::vector<CollectiveRecord> records = communicator.TakeRecords();
  ASSERT_EQ(records.size(), 2u);
  EXPECT_EQ(records[0].kind, CollectiveKind::kAllReduce);
  EXPECT_EQ(records[0].bytes, 1001 * 4);
  // Each rank sends the chunks it does not own, then its own reduced chunk to every
  // other rank: for 2 ranks that is the whole buffer once; for 1 rank, nothing.
  if (communicator.size() == 2) {
    EXPECT_EQ(records[0].bytes_sent, 1001 * 4);
  } else if (communicator.size() == 1) {
    EXPECT_EQ(records[0].bytes_sent, 0);
  }
  EXPECT_LE(records[0].queued_ns, records[0].started_ns);
  EXPECT_LE(records[0].started_ns, records[0].finished_ns);
  EXPECT_EQ(records[1].kind, CollectiveKind::kBarrier);
  EXPECT_TRUE(communicator.TakeRecords().empty());
}

TEST(StartedByMpiLauncher, ReadsTheLaunchersVariables) {
  if (StartedByMpiLauncher()) GTEST_SKIP() << "runs as a plain process only";
  for (const char* name : {"OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_SIZE"}) {
    ::setenv(name, "2", 1);
    EXPECT_TRUE(StartedByMpiLauncher()) << name;
    ::unsetenv(name);
  }
  EXPECT_FALSE(StartedByMpiLauncher());
}

}  // namespace
}  // namespace attnlab::distributed
