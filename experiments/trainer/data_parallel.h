// What data-parallel training adds to the trainer's step, over a Communicator
// (framework/distributed): this rank's shard of every batch, the gradients summed over
// ranks in buckets that start while backward is still running (as PyTorch's DDP does),
// the logged loss summed, and one stop decision for all ranks.
//
// Every rank keeps a full replica. Shards are rows of the batch one process would take
// (Objective::Loss normalises each shard's loss by the whole batch's weight), so the sum
// of the ranks' gradients is the one-process gradient up to the order of additions, and
// the communicator adds in rank order: the same N gives bit-identical runs. The
// parameters and gradients live in one FlatArena each; buckets are contiguous ranges of
// the gradient arena, reduced from the last parameters (which backward finishes first).
//
// With one rank (a plain process, no mpirun) nothing here runs: shard() is the whole
// batch, and the trainer neither adopts an arena nor reduces anything.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <vector>

#include "absl/status/status.h"
#include "experiments/trainer/objective.h"
#include "framework/autograd/node.h"
#include "framework/distributed/communicator.h"
#include "framework/distributed/gradient_buckets.h"
#include "framework/tensor/flat_arena.h"
#include "layers/module.h"

namespace attnlab::experiments {

class DataParallel {
 public:
  // Gradient buckets of about this many bytes (PyTorch DDP's default is 25 MB).
  static constexpr int64_t kBucketBytes = 25 << 20;

  // `communicator` may be null (one process). With several ranks, moves `module`'s
  // parameters into a FlatArena and makes every rank start from rank 0's values.
  static absl::StatusOr<std::unique_ptr<DataParallel>> Create(
      distributed::Communicator* communicator, nn::Module& module);

  int rank() const { return rank_; }
  int ranks() const { return ranks_; }
  bool distributed() const { return ranks_ > 1; }
  // Rank 0 writes the run's files (metrics, checkpoints, report); the others write nothing.
  bool writes_files() const { return rank_ == 0; }
  BatchShard shard() const { return {rank_, ranks_}; }
  // The arena the parameters live in with several ranks (for one loop over all of them,
  // e.g. the moving average of the weights); null with one rank.
  const FlatArena* parameter_arena() const { return arena_ ? &*arena_ : nullptr; }

  // For the backward of a step's last micro-batch: starts the all-reduce of each bucket of
  // gradients as soon as backward has finished it. Null with one rank, or without overlap.
  autograd::GradientReadyHook BackwardHook();
  // Off: every bucket starts after backward (FinishGradientReduce), for measuring what the
  // overlap gains (attnlab bench --no_overlap). On by default.
  void set_overlap(bool overlap) { overlap_ = overlap; }
  // After that backward: reduces the buckets still held back and waits for all of them;
  // then every rank holds the sum of the ranks' gradients.
  absl::Status FinishGradientReduce();
  // The step's loss (each rank's part) summed over ranks.
  absl::StatusOr<double> SumOverRanks(double value);
  // This rank's communication since the last call: all-reduce payload bytes, seconds in
  // MPI, and seconds the trainer waited for it (communication that backward did not hide).
  struct Communication {
    int64_t all_reduce_bytes = 0;
    double all_reduce_seconds = 0.0;
    double wait_seconds = 0.0;
  };
  Communication TakeCommunication();
  // Every rank's collectives since the last call (or since ForgetCollectives()), gathered
  // on every rank: per rank, spans on steady_clock (start, duration, bytes) and the
  // seconds the trainer waited. For the profiler's communication tracks. Collective: every
  // rank must call it at the same point.
  struct CollectiveSpan {
    int64_t start_steady_ns = 0;
    int64_t duration_ns = 0;
    int64_t bytes = 0;
  };
  struct RankCommunication {
    std::vector<CollectiveSpan> spans;
    double all_reduce_seconds = 0.0;
    double wait_seconds = 0.0;
  };
  absl::StatusOr<std::vector<RankCommunication>> GatherCollectives(int64_t origin_steady_ns);
  void ForgetCollectives();
  // Whether any rank asks to stop (its own stop request): the same answer on every rank,
  // so all stop at the same step.
  absl::StatusOr<bool> AnyRankAsks(bool asks);

 private:
  DataParallel(distributed::Communicator* communicator, int rank, int ranks)
      : communicator_(communicator), rank_(rank), ranks_(ranks) {}
  void StartBuckets(distributed::GradientBuckets::BucketRange buckets);

  distributed::Communicator* communicator_;
  int rank_;
  int ranks_;
  bool overlap_ = true;
  std::optional<FlatArena> arena_;
  std::optional<distributed::GradientBuckets> buckets_;
  distributed::CommunicationStats reported_;  // the totals at the last TakeCommunication
  distributed::CommunicationStats gathered_;  // the totals at the last GatherCollectives
};

}  // namespace attnlab::experiments
