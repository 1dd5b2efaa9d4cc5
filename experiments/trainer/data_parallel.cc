#include "experiments/trainer/data_parallel.h"

#include <algorithm>

#include "framework/core/error.h"

namespace attnlab::experiments {

absl::StatusOr<std::unique_ptr<DataParallel>> DataParallel::Create(
    distributed::Communicator* communicator, nn::Module& module) {
  const int ranks = communicator != nullptr ? communicator->size() : 1;
  const int rank = communicator != nullptr ? communicator->rank() : 0;
  std::unique_ptr<DataParallel> data_parallel(new DataParallel(communicator, rank, ranks));
  if (ranks == 1) return data_parallel;
  data_parallel->arena_.emplace(FlatArena::Adopt(module.NamedParameters()));
  FlatArena& arena = *data_parallel->arena_;
  // Seeded initialisation already gives every rank the same values; the broadcast makes
  // it a guarantee (and costs one transfer of the parameters at start).
  RETURN_IF_ERROR(communicator->Broadcast(arena.parameter_span(), /*root=*/0));
  data_parallel->buckets_.emplace(arena.offsets(), arena.numel(),
                                  kBucketBytes / static_cast<int64_t>(sizeof(float)));
  return data_parallel;
}

void DataParallel::StartBuckets(distributed::GradientBuckets::BucketRange buckets) {
  const std::span<float> gradients = arena_->gradient_span();
  for (const int index : buckets) {
    const distributed::GradientBuckets::Bucket& bucket = buckets_->buckets()[index];
    communicator_->StartAllReduce(gradients.subspan(bucket.begin, bucket.end - bucket.begin),
                                  distributed::ReduceOp::kSum);
  }
}

autograd::GradientReadyHook DataParallel::BackwardHook() {
  if (!distributed()) return nullptr;
  buckets_->Reset();
  if (!overlap_) return nullptr;
  return [this](TensorImpl& leaf) {
    const int slot = arena_->SlotOf(&leaf);
    if (slot < 0) return;  // an input, not a parameter
    arena_->FillMissingGradient(slot);
    StartBuckets(buckets_->MarkReady(slot));
  };
}

absl::Status DataParallel::FinishGradientReduce() {
  if (!distributed()) return absl::OkStatus();
  // Parameters this rank's backward never reached (e.g. an empty shard) still take part,
  // with zero gradients, in the same collectives as every other rank.
  arena_->FillMissingGradients();
  StartBuckets(buckets_->Remaining());
  return communicator_->Wait();
}

absl::StatusOr<double> DataParallel::SumOverRanks(double value) {
  if (!distributed()) return value;
  float buffer[1] = {static_cast<float>(value)};
  RETURN_IF_ERROR(communicator_->AllReduce(buffer, distributed::ReduceOp::kSum));
  return static_cast<double>(buffer[0]);
}

DataParallel::Communication DataParallel::TakeCommunication() {
  if (!distributed()) return {};
  const distributed::CommunicationStats now = communicator_->stats();
  const Communication since{now.all_reduce_bytes - reported_.all_reduce_bytes,
                            now.all_reduce_seconds - reported_.all_reduce_seconds,
                            now.wait_seconds - reported_.wait_seconds};
  reported_ = now;
  return since;
}

void DataParallel::ForgetCollectives() {
  if (!distributed()) return;
  communicator_->TakeRecords();
  gathered_ = communicator_->stats();
}

// The communicator moves f32 buffers only, so the records travel as floats: times in
// microseconds since `origin_steady_ns` (exact to ~2 us over half a minute), bytes as
// they are (exact below 16 MB, to a few bytes above: for a trace, not for accounting).
absl::StatusOr<std::vector<DataParallel::RankCommunication>> DataParallel::GatherCollectives(
    int64_t origin_steady_ns) {
  std::vector<distributed::CollectiveRecord> records =
      distributed() ? communicator_->TakeRecords() : std::vector<distributed::CollectiveRecord>();
  const distributed::CommunicationStats now =
      distributed() ? communicator_->stats() : distributed::CommunicationStats();
  // How many records the largest rank has: every rank's section is that long.
  std::vector<float> counts(static_cast<size_t>(ranks_), 0.0f);
  counts[rank_] = static_cast<float>(records.size());
  if (distributed()) {
    RETURN_IF_ERROR(communicator_->AllReduce(counts, distributed::ReduceOp::kSum));
  }
  int64_t longest = 0;
  for (int r = 0; r < ranks_; ++r) longest = std::max(longest, static_cast<int64_t>(counts[r]));
  constexpr int64_t kFields = 3;  // per record: start, duration (microseconds), bytes
  const int64_t section = longest * kFields + 2;  // + all-reduce and wait seconds
  std::vector<float> buffer(static_cast<size_t>(section * ranks_), 0.0f);
  float* mine = buffer.data() + section * rank_;
  for (size_t i = 0; i < records.size(); ++i) {
    mine[i * kFields] = static_cast<float>((records[i].started_ns - origin_steady_ns) * 1e-3);
    mine[i * kFields + 1] =
        static_cast<float>((records[i].finished_ns - records[i].started_ns) * 1e-3);
    mine[i * kFields + 2] = static_cast<float>(records[i].bytes);
  }
  mine[section - 2] = static_cast<float>(now.all_reduce_seconds - gathered_.all_reduce_seconds);
  mine[section - 1] = static_cast<float>(now.wait_seconds - gathered_.wait_seconds);
  gathered_ = now;
  if (distributed()) {
    RETURN_IF_ERROR(communicator_->AllReduce(buffer, distributed::ReduceOp::kSum));
  }
  std::vector<RankCommunication> ranks(static_cast<size_t>(ranks_));
  for (int r = 0; r < ranks_; ++r) {
    const float* section_of = buffer.data() + section * r;
    for (int64_t i = 0; i < static_cast<int64_t>(counts[r]); ++i) {
      ranks[r].spans.push_back(
          {origin_steady_ns + static_cast<int64_t>(section_of[i * kFields] * 1e3),
           static_cast<int64_t>(section_of[i * kFields + 1] * 1e3),
           static_cast<int64_t>(section_of[i * kFields + 2])});
    }
    ranks[r].all_reduce_seconds = section_of[section - 2];
    ranks[r].wait_seconds = section_of[section - 1];
  }
  return ranks;
}

absl::StatusOr<bool> DataParallel::AnyRankAsks(bool asks) {
  if (!distributed()) return asks;
  float buffer[1] = {asks ? 1.0f : 0.0f};
  RETURN_IF_ERROR(communicator_->AllReduce(buffer, distributed::ReduceOp::kSum));
  return buffer[0] > 0.0f;
}

}  // namespace attnlab::experiments
