#include "experiments/trainer/data_parallel.h"

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

absl::StatusOr<bool> DataParallel::AnyRankAsks(bool asks) {
  if (!distributed()) return asks;
  float buffer[1] = {asks ? 1.0f : 0.0f};
  RETURN_IF_ERROR(communicator_->AllReduce(buffer, distributed::ReduceOp::kSum));
  return buffer[0] > 0.0f;
}

}  // namespace attnlab::experiments
