// What the trainer (trainer.h) asks of a model and its task: the parameters to optimise
// and checkpoint, the batches of an epoch, the loss of a batch, and metrics on a split.
// The trainer owns everything else (the loop, stop requests, checkpoints, metrics.jsonl,
// the report, result.json), so every kind of model gets all of it by implementing this.
//
// Two implementations: Seq2SeqObjective (seq2seq_objective.h: a Transformer or an RNN
// encoder-decoder on a registered Task) and the seed's attention-pooling student
// (experiments/pooling/seed_pooling_objective.cc). A new kind of model implements
// Objective and registers a factory for its task name:
//
//   ATTNLAB_REGISTER_OBJECTIVE(my_task, "my_task", MakeMyObjective, MyReportedMetrics);
//
// A task name without a registered objective is a seq2seq task.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "experiments/config/config.h"
#include "experiments/tasks/task.h"
#include "experiments/trainer/checkpoint.h"
#include "framework/optim/optimizer.h"
#include "framework/optim/schedule.h"
#include "layers/module.h"

namespace attnlab::experiments {

// Asked between batches; true abandons the work at hand (training resumes it later).
using StopRequestedFn = std::function<bool()>;

// The loss of one micro-batch: a scalar tensor whose backward() gives the gradients, the
// mean over `weight` units (target tokens, examples) that weight the logged mean loss.
// Computed on a shard (below), it is this shard's part of that mean: the sum of its units'
// losses divided by the whole batch's `weight`, so that the shards' losses (and their
// gradients) add up to the whole batch's.
struct BatchLoss {
  Tensor loss;
  int64_t weight = 0;
};

// The part of every batch this process computes in data-parallel training: of a batch of
// R rows (examples, padded as one process pads them), rank r of N takes the contiguous
// rows [R r / N, R (r + 1) / N). The default, 0 of 1, is the whole batch.
struct BatchShard {
  int rank = 0;
  int ranks = 1;
  int64_t FirstRow(int64_t rows) const { return rows * rank / ranks; }
  int64_t EndRow(int64_t rows) const { return rows * (rank + 1) / ranks; }
  bool whole() const { return ranks == 1; }
};

// The loss of a shard with no rows (a batch smaller than the number of ranks): zero, with
// no gradient (the trainer skips its backward; the all-reduce brings the others').
inline BatchLoss EmptyShardLoss(int64_t batch_weight) {
  return {Tensor::Scalar(0.0f), batch_weight};
}

struct Evaluation {
  std::map<std::string, double> metrics;
  double seconds = 0.0;
  bool interrupted = false;  // a stop request cut it: the metrics are incomplete
};

// One pass of the final test, one metrics.jsonl "test" record.
struct TestPass {
  Evaluation evaluation;
  nlohmann::json record_fields = nlohmann::json::object();  // e.g. {"decoder": "beam4"}
  std::string metric_prefix;  // before the names in TrainResult::test_metrics, e.g. "beam_"
};

class Objective {
 public:
  virtual ~Objective() = default;

  // The trained module: its NamedParameters() are what the optimizer updates, and with
  // its NamedBuffers() what a checkpoint holds.
  virtual nn::Module& module() = 0;
  // For the first line of a run, e.g. "transformer on task copy: 9 parameters, ...".
  virtual std::string Description() const = 0;
  // What a checkpoint needs besides tensors, progress and config (e.g. vocabularies).
  virtual void AddToCheckpoint(CheckpointContents& contents) const {}

  // By default train.optimizer and train.schedule with their train.* settings.
  virtual absl::StatusOr<std::unique_ptr<Optimizer>> MakeOptimizer(const Config& config);
  virtual absl::StatusOr<std::unique_ptr<LearningRateSchedule>> MakeSchedule(const Config& config,
                                                                             int64_t total_steps);

  // The training batches of epoch `epoch` as example indices. A function of the config
  // and `epoch` only, so that a resumed run sees the batches the uninterrupted one would.
  virtual std::vector<std::vector<int64_t>> EpochPlan(int64_t epoch) = 0;
  // The training loss of `shard` of one batch of EpochPlan(), in training mode. Dropout
  // draws the masks the whole batch would get on those rows (DropoutBatchShard), so the
  // result does not depend on the number of shards beyond rounding.
  virtual BatchLoss Loss(const std::vector<int64_t>& batch, const BatchShard& shard) = 0;

  // What Evaluate("valid") measures and which way is better; the first is the main
  // metric (best checkpoint, early stopping) unless train.early_stopping_metric says.
  virtual std::vector<MetricSpec> Metrics() const = 0;
  // Metrics of the current parameters on "valid" or "test", without gradients.
  virtual Evaluation Evaluate(const std::string& split, const StopRequestedFn& stop_requested) = 0;

  // ---- The end of a run, with the best checkpoint's parameters loaded ----
  // Files beside the checkpoints (e.g. samples.txt); false if a stop request cut it.
  virtual absl::StatusOr<bool> WriteRunFiles(const std::string& run_dir,
                                             const StopRequestedFn& stop_requested) {
    return true;
  }
  // The final test, in `TestPasses()` passes (e.g. greedy decoding, then beam search).
  virtual int64_t TestPasses() const { return 1; }
  virtual TestPass Test(int64_t pass, const StopRequestedFn& stop_requested) = 0;
};

// Builds the objective for `config`; when resuming, `resumed` is the checkpoint's
// metadata (e.g. the vocabularies the parameters were trained with).
using ObjectiveFactory = std::function<absl::StatusOr<std::unique_ptr<Objective>>(
    const Config& config, const CheckpointContents* resumed)>;

// What an objective's runs report, known from the config alone, without data or model:
// the ablation planner checks a study's metrics against it before any run starts.
struct ReportedMetrics {
  std::vector<MetricSpec> validation;  // Metrics(): what Evaluate("valid") measures
  std::vector<std::string> test;       // the keys of TrainResult::test_metrics
};
using ReportedMetricsFn = std::function<absl::StatusOr<ReportedMetrics>(const Config& config)>;

void RegisterObjective(const std::string& task_name, ObjectiveFactory factory,
                       ReportedMetricsFn reported_metrics);

// Whether `task_name` has an objective of its own (else it is a seq2seq task).
bool HasRegisteredObjective(const std::string& task_name);
// The registered objective of `task.name`, or else a Seq2SeqObjective of that task.
absl::StatusOr<std::unique_ptr<Objective>> MakeObjective(
    const Config& config, const CheckpointContents* resumed = nullptr);

// The metrics the objective of `task.name` reports (a Seq2SeqObjective's when none is
// registered).
absl::StatusOr<ReportedMetrics> ObjectiveReportedMetrics(const Config& config);

struct ObjectiveRegistration {
  ObjectiveRegistration(const std::string& task_name, ObjectiveFactory factory,
                        ReportedMetricsFn reported_metrics) {
    RegisterObjective(task_name, std::move(factory), std::move(reported_metrics));
  }
};

}  // namespace attnlab::experiments

#define ATTNLAB_REGISTER_OBJECTIVE(identifier, task_name, factory, reported_metrics)        \
  static ::attnlab::experiments::ObjectiveRegistration objective_registration_##identifier( \
      task_name, factory, reported_metrics)
