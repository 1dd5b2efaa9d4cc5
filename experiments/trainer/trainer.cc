#include "experiments/trainer/trainer.h"

#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "experiments/report/report.h"
#include "experiments/trainer/checkpoint.h"
#include "experiments/trainer/data_parallel.h"
#include "experiments/trainer/metrics_log.h"
#include "experiments/trainer/objective.h"
#include "experiments/trainer/progress.h"
#include "experiments/trainer/run_directory_lock.h"
#include "experiments/trainer/run_result.h"
#include "experiments/trainer/step_checkpoints.h"
#include "experiments/trainer/train_step.h"
#include "framework/core/stop_request.h"
#include "framework/io/atomic_file.h"
#include "framework/io/text_file.h"
#include "framework/ops/mixed_precision.h"
#include "framework/optim/clip.h"
#include "framework/optim/exponential_moving_average.h"
#include "framework/parallel/parallel_for.h"
#include "framework/profiler/profile_files.h"
#include "framework/profiler/profiler.h"
#include "framework/random/generator.h"

namespace attnlab::experiments {
namespace fs = std::filesystem;
using Json = nlohmann::json;

namespace {

// The steps `--profile` records: (first, last] in optimizer steps, i.e. steps first+1 to
// last. Ten warm-up steps (allocator cache and oneDNN primitives filled), then ten
// profiled ones; a shorter run profiles its second half.
struct ProfileWindow {
  int64_t first = 0;
  int64_t last = 0;
};
ProfileWindow ChooseProfileWindow(int64_t start_step, int64_t total_steps) {
  const int64_t remaining = std::max<int64_t>(total_steps - start_step, 0);
  const int64_t warmup = std::min<int64_t>(10, remaining / 2);
  const int64_t profiled = std::min<int64_t>(10, remaining - warmup);
  return {start_step + warmup, start_step + warmup + profiled};
}

// Steps the run will take: max_steps, or epochs x batches per epoch.
int64_t TotalSteps(const Config& config, int64_t batches_per_epoch) {
  if (config.train().max_steps > 0) return config.train().max_steps;
  const int64_t accumulation = config.train().accumulation;
  return config.train().epochs * ((batches_per_epoch + accumulation - 1) / accumulation);
}

bool Improved(double value, double best, bool higher_is_better, int64_t best_step) {
  // A NaN/Inf metric (a diverged model) is never the best; a NaN best would also compare
  // false with every later value, so no later evaluation could replace it.
  if (!std::isfinite(value)) return false;
  if (best_step < 0) return true;
  return higher_is_better ? value > best : value < best;
}

Json MetricsJson(const std::map<std::string, double>& metrics) {
  Json json = Json::object();
  for (const auto& [name, value] : metrics) json[name] = value;
  return json;
}

std::string FormatMetrics(const std::map<std::string, double>& metrics) {
  std::vector<std::string> parts;
  for (const auto& [name, value] : metrics)
    parts.push_back(absl::StrFormat("%s %.4g", name, value));
  return absl::StrJoin(parts, "  ");
}

// Keys a resumed run must keep: they fix the data, the model's shapes, the batches the
// saved position points into (seed, batch sizes) and the optimizer state's layout.
bool FixedWhenResuming(const std::string& key) {
  return key.rfind("task.", 0) == 0 || key.rfind("model.", 0) == 0 ||
         key.rfind("attention.", 0) == 0 || key == "experiment.seed" ||
         key == "train.batch_tokens" || key == "train.max_batch_size" || key == "train.optimizer";
}

// --resume with a config that changes what the checkpoint was trained on is refused,
// naming every changed key, instead of training another experiment on top of it.
absl::Status CheckResumableConfig(const Config& config, const std::string& saved_toml,
                                  const std::string& checkpoint_path) {
  ASSIGN_OR_RETURN(const Config saved, Config::Parse(saved_toml, checkpoint_path));
  std::vector<std::string> changed;
  for (const KeyDifference& difference : DifferingKeys(saved, config, FixedWhenResuming)) {
    changed.push_back(
        absl::StrCat(difference.key, " ", difference.before, " -> ", difference.after));
  }
  if (changed.empty()) return absl::OkStatus();
  return absl::FailedPreconditionError(
      absl::StrCat("--resume: ", checkpoint_path, " was trained with another ",
                   absl::StrJoin(changed, ", "), "; resume with its settings or start a new run"));
}

// ---- The run directory ----------------------------------------------------------------

constexpr char kLastCheckpoint[] = "checkpoint_last.safetensors";
constexpr char kBestCheckpoint[] = "checkpoint_best.safetensors";
// train.ema_decay: the moving average of the weights of checkpoint_last, as a plain model.
constexpr char kEmaCheckpoint[] = "checkpoint_ema.safetensors";

// Creates and locks the run directory (this process's until Train returns: two trainers,
// or a trainer and an ablation runner, would interleave metrics.jsonl and overwrite each
// other's files) and removes the temporary files of killed processes from it.
absl::StatusOr<RunDirectoryLock> ClaimRunDirectory(const RunOptions& options) {
  const fs::path run_dir(options.run_dir);
  if (options.resume && !fs::exists(run_dir)) {  // and nothing created
    return absl::NotFoundError(
        absl::StrCat("--resume: no checkpoint at ", (run_dir / kLastCheckpoint).string()));
  }
  std::error_code error;
  fs::create_directories(run_dir, error);
  if (error) return absl::InternalError(absl::StrCat(options.run_dir, ": ", error.message()));
  ASSIGN_OR_RETURN(RunDirectoryLock lock, RunDirectoryLock::Acquire(options.run_dir));
  const std::vector<std::string> stale = RemoveStaleTemporaryFiles(options.run_dir);
  if (options.show_progress && !stale.empty()) {
    std::fprintf(stderr, "attnlab: removed %zu temporary files of killed processes (%s)\n",
                 stale.size(), absl::StrJoin(stale, ", ").c_str());
  }
  return lock;
}

// --resume needs a checkpoint; a new run needs a directory without a run in it.
absl::Status CheckRunDirectoryContents(const RunOptions& options) {
  const fs::path run_dir(options.run_dir);
  if (options.resume && !fs::exists(run_dir / kLastCheckpoint)) {
    return absl::NotFoundError(
        absl::StrCat("--resume: no checkpoint at ", (run_dir / kLastCheckpoint).string()));
  }
  // A run that stopped before its first checkpoint (e.g. a NaN at step 2) has a
  // metrics.jsonl but no checkpoint: a new run must not append its records to that log.
  for (const char* existing : {kLastCheckpoint, "metrics.jsonl"}) {
    if (!options.resume && fs::exists(run_dir / existing)) {
      return absl::AlreadyExistsError(absl::StrCat(options.run_dir, " already holds a run (",
                                                   existing,
                                                   "); pass --resume to "
                                                   "continue it, or choose another run directory"));
    }
  }
  return absl::OkStatus();
}

// A finished run has nothing to resume; training it "again" would log a second end.
absl::StatusOr<TrainResult> FinishedRun(const RunOptions& options) {
  ASSIGN_OR_RETURN(const RunResult finished,
                   ReadRunResult((fs::path(options.run_dir) / kRunResultFile).string()));
  TrainResult result;
  result.run_dir = options.run_dir;
  result.already_finished = true;
  result.steps = finished.steps;
  result.train_seconds = finished.train_seconds;
  result.test_metrics = finished.test_metrics;
  result.valid_metrics = finished.valid_metrics;
  return result;
}

// One Chrome-trace track per rank ("rank R communication", an "all_reduce" span per
// collective, its bytes as bytes read), added to `recording`; returns the table of the
// ranks' communication for profile.txt.
std::string AddCommunicationTracks(const std::vector<DataParallel::RankCommunication>& ranks,
                                   profiler::Recording& recording) {
  const uint32_t all_reduce = static_cast<uint32_t>(recording.names.size());
  recording.names.push_back("all_reduce");
  recording.layer_parent.push_back(0);
  std::string table = absl::StrFormat(
      "\ncommunication of the profiled steps (data parallel, %d ranks; spans in trace.json on "
      "the tracks \"rank R communication\")\n  %-5s %11s %10s %13s %10s %22s\n",
      static_cast<int>(ranks.size()), "rank", "collectives", "MB", "in all-reduce", "waited",
      "hidden behind backward");
  for (size_t rank = 0; rank < ranks.size(); ++rank) {
    profiler::ThreadSpans track{
        static_cast<int>(1000 + rank), absl::StrCat("rank ", rank, " communication"), {}};
    double bytes = 0;
    for (const DataParallel::CollectiveSpan& span : ranks[rank].spans) {
      profiler::Span marker{profiler::SpanKind::kMarker};
      marker.name = all_reduce;
      marker.start_ns = span.start_steady_ns - recording.origin_steady_ns;
      marker.duration_ns = span.duration_ns;
      marker.bytes_read = span.bytes;
      track.spans.push_back(marker);
      bytes += static_cast<double>(span.bytes);
    }
    recording.threads_spans.push_back(std::move(track));
    const double in_all_reduce = ranks[rank].all_reduce_seconds;
    const double hidden =
        in_all_reduce > 0 ? 1.0 - std::min(1.0, ranks[rank].wait_seconds / in_all_reduce) : 0.0;
    absl::StrAppendFormat(&table, "  %-5d %11d %10.1f %11.1f ms %7.1f ms %21.0f%%\n",
                          static_cast<int>(rank), static_cast<int>(ranks[rank].spans.size()),
                          bytes * 1e-6, in_all_reduce * 1e3, ranks[rank].wait_seconds * 1e3,
                          100.0 * hidden);
  }
  return table;
}

// ---- One run: the objective, its optimizer, where the run is, and its logs --------------

class TrainingRun {
 public:
  TrainingRun(const Config& config, const RunOptions& options)
      : config_(config),
        options_(options),
        run_dir_(options.run_dir),
        local_stop_requested_(options.stop_requested ? options.stop_requested
                                                     : StopRequestedFn(&attnlab::StopRequested)),
        writes_files_(options.communicator == nullptr || options.communicator->rank() == 0),
        distributed_(options.communicator != nullptr && options.communicator->size() > 1),
        // With several ranks a stop is decided once per step, by all (StopWasRequested);
        // within a step no rank may stop alone, or the others would wait for it forever.
        stop_requested_(distributed_ ? StopRequestedFn([] { return false; })
                                     : local_stop_requested_) {}

  // Load and PlanRun together: everything before the first step.
  static absl::StatusOr<std::unique_ptr<TrainingRun>> Start(const Config& config,
                                                            const RunOptions& options);

  bool Done() const { return progress_.step >= total_steps_ || early_stopped_; }
  // Whether to stop before the next step; with several ranks, whether any rank was asked.
  absl::StatusOr<bool> StopWasRequested() const {
    return data_parallel_->AnyRankAsks(local_stop_requested_());
  }
  int64_t step() const { return progress_.step; }
  bool evaluation_pending() const { return progress_.evaluation_pending; }
  bool EvaluationDue() const {
    return progress_.step % config_.train().eval_every == 0 || progress_.step == total_steps_;
  }
  bool CheckpointDue() const {
    return progress_.step % config_.train().checkpoint_every == 0 ||
           progress_.step == total_steps_ || early_stopped_;
  }

  absl::StatusOr<bool> TrainStep();
  absl::StatusOr<bool> EvaluateAndKeepBest();
  absl::Status SaveCheckpoint(const std::string& file);
  // checkpoint_last and, with train.ema_decay, checkpoint_ema.
  absl::Status SaveLastCheckpoint();
  // The save every train.checkpoint_every steps (and at the end): with train.keep_last,
  // a checkpoint_step_<N> first (see step_checkpoints.h), then SaveLastCheckpoint().
  absl::Status SaveScheduledCheckpoints();
  absl::StatusOr<TrainResult> StopForResume(bool save_last);
  absl::StatusOr<TrainResult> StopAtStep() {
    ASSIGN_OR_RETURN(TrainResult result, StopForResume(/*save_last=*/!CheckpointDue()));
    result.stopped_at_step = true;
    return result;
  }
  void StartProfileIfDue() const;
  absl::Status WriteProfileIfDue();
  absl::StatusOr<TrainResult> FinishRun();

 private:
  absl::Status Load();
  absl::Status JoinRanks();
  absl::Status StartMovingAverage(const CheckpointContents* resumed, const std::string& path);
  absl::Status SaveEmaCheckpoint();
  absl::Status PlanRun();
  std::vector<int64_t> NextBatch();
  void DropPartialStep(const TrainingProgress& step_start, const GeneratorState& generator);
  absl::StatusOr<bool> SkipNonFiniteStep(double step_loss);
  absl::Status LogStep(double step_loss, int64_t step_weight, double learning_rate);
  absl::StatusOr<bool> RunFinalTest();
  absl::Status WriteResult(double end_seconds);
  // Progress output comes from rank 0 only.
  bool show_progress() const { return options_.show_progress && writes_files_; }
  // A metrics.jsonl record (rank 0; the other ranks write nothing).
  absl::Status WriteRecord(const Json& record) {
    return metrics_log_ ? metrics_log_->Write(record) : absl::OkStatus();
  }
  double Elapsed() const {
    return elapsed_before_ +
           std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  }
  std::string LastGoodText() const {
    return last_good_checkpoint_.empty()
               ? std::string("No checkpoint was saved before it.")
               : absl::StrCat("The last good checkpoint is ", last_good_checkpoint_, " (step ",
                              last_good_step_, ").");
  }

  const Config& config_;
  const RunOptions& options_;
  const fs::path run_dir_;
  const StopRequestedFn local_stop_requested_;  // this process's stop request
  const bool writes_files_;                     // rank 0 (or the only process)
  const bool distributed_;                      // several ranks
  const StopRequestedFn stop_requested_;        // what steps and evaluations ask
  std::unique_ptr<Objective> objective_;
  std::unique_ptr<DataParallel> data_parallel_;
  std::unique_ptr<Optimizer> optimizer_;
  std::unique_ptr<LearningRateSchedule> schedule_;
  std::unique_ptr<ExponentialMovingAverage> ema_;  // train.ema_decay > 0
  std::optional<MetricsLog> metrics_log_;
  ProgressDisplay display_{0};
  TrainingProgress progress_;
  bool resumed_ = false;
  std::vector<std::vector<int64_t>> plan_;  // the batches of epoch progress_.epoch
  int64_t total_steps_ = 0;
  std::string main_metric_;
  bool higher_is_better_ = true;
  bool early_stopped_ = false;
  // The newest checkpoint written (every checkpoint is finite), named when a run diverges.
  std::string last_good_checkpoint_;
  int64_t last_good_step_ = 0;
  ProfileWindow profile_window_;
  std::chrono::steady_clock::time_point start_;
  double elapsed_before_ = 0.0;  // training time of earlier invocations (resumed runs)
  TrainResult result_;
};

absl::StatusOr<std::unique_ptr<TrainingRun>> TrainingRun::Start(const Config& config,
                                                                const RunOptions& options) {
  auto run = std::make_unique<TrainingRun>(config, options);
  RETURN_IF_ERROR(run->Load());
  RETURN_IF_ERROR(run->PlanRun());
  return run;
}

// The objective (data and model; the checkpoint's vocabularies when resuming), its
// optimizer, the dropout stream, and when resuming the checkpoint's state.
absl::Status TrainingRun::Load() {
  const std::string last_path = (run_dir_ / kLastCheckpoint).string();
  std::optional<CheckpointContents> resumed;
  if (options_.resume) {
    ASSIGN_OR_RETURN(resumed, ReadCheckpointMetadata(last_path));
    if (!resumed->derived_from.empty()) {
      return absl::FailedPreconditionError(absl::StrCat(
          "--resume: ", last_path, " holds weights derived from training (", resumed->derived_from,
          "), not a training state: it has no optimizer state; resume from a checkpoint the "
          "trainer wrote"));
    }
    RETURN_IF_ERROR(CheckResumableConfig(config_, resumed->config_toml, last_path));
  }
  ASSIGN_OR_RETURN(objective_, MakeObjective(config_, resumed ? &*resumed : nullptr));
  ASSIGN_OR_RETURN(optimizer_, objective_->MakeOptimizer(config_));
  ManualSeed(static_cast<uint64_t>(config_.experiment().seed));
  if (!resumed) {
    RETURN_IF_ERROR(JoinRanks());
    return StartMovingAverage(nullptr, "");
  }
  ASSIGN_OR_RETURN(const CheckpointContents loaded,
                   LoadCheckpoint(last_path, objective_->module(), optimizer_.get()));
  if (const std::string non_finite = DescribeNonFiniteParameters(objective_->module());
      !non_finite.empty()) {
    return absl::DataLossError(
        absl::StrCat("--resume: ", last_path, " holds ", non_finite, "; it cannot be resumed"));
  }
  progress_ = loaded.progress;
  DefaultGenerator().set_state(loaded.generator_state);
  resumed_ = true;
  last_good_checkpoint_ = last_path;
  last_good_step_ = progress_.step;
  RETURN_IF_ERROR(JoinRanks());
  return StartMovingAverage(&loaded, last_path);
}

// With several ranks: the parameters in flat arenas, rank 0's values on every rank.
absl::Status TrainingRun::JoinRanks() {
  ASSIGN_OR_RETURN(data_parallel_,
                   DataParallel::Create(options_.communicator, objective_->module()));
  return absl::OkStatus();
}

// train.ema_decay > 0: the moving average of the weights, in the parameters' arena when
// they have one. It continues the resumed checkpoint's (`ema.*`) when that has one, and
// otherwise starts at the current weights with no update counted; with train.ema_decay = 0
// a resumed checkpoint's moving average is dropped.
absl::Status TrainingRun::StartMovingAverage(const CheckpointContents* resumed,
                                             const std::string& path) {
  const double decay = config_.train().ema_decay;
  const bool continued = decay > 0 && resumed != nullptr && !resumed->ema_weights.empty();
  if (!continued) progress_.ema_updates = 0;
  if (decay == 0) return absl::OkStatus();
  ema_ = std::make_unique<ExponentialMovingAverage>(objective_->module().NamedParameters(), decay,
                                                    data_parallel_->parameter_arena());
  if (!continued) return absl::OkStatus();
  if (const absl::Status loaded = ema_->Load(resumed->ema_weights); !loaded.ok()) {
    return absl::FailedPreconditionError(absl::StrCat("--resume: ", path, ": ", loaded.message()));
  }
  return absl::OkStatus();
}

// The batches, the step budget and schedule, the main metric; then (every config error
// found) the run directory's config.toml and metrics.jsonl, and the clock starts.
absl::Status TrainingRun::PlanRun() {
  plan_ = objective_->EpochPlan(progress_.epoch);
  total_steps_ = TotalSteps(config_, static_cast<int64_t>(plan_.size()));
  ASSIGN_OR_RETURN(schedule_, objective_->MakeSchedule(config_, total_steps_));
  if (writes_files_) {
    RETURN_IF_ERROR(WriteFileAtomically((run_dir_ / "config.toml").string(), config_.ToToml()));
    ASSIGN_OR_RETURN(MetricsLog log, MetricsLog::Open((run_dir_ / "metrics.jsonl").string(),
                                                      resumed_ ? progress_.step : -1));
    metrics_log_.emplace(std::move(log));
  }

  const std::vector<MetricSpec> metrics = objective_->Metrics();
  main_metric_ = config_.train().early_stopping_metric;
  if (main_metric_.empty()) main_metric_ = metrics.front().name;
  higher_is_better_ = main_metric_ != "loss";
  for (const MetricSpec& spec : metrics) {
    if (spec.name == main_metric_) higher_is_better_ = spec.higher_is_better;
  }
  const int64_t patience = config_.train().patience;
  early_stopped_ = patience > 0 && progress_.evaluations_without_improvement >= patience;
  profile_window_ = ChooseProfileWindow(progress_.step, total_steps_);

  display_ = ProgressDisplay(total_steps_);
  if (show_progress()) {
    display_.Message(
        absl::StrFormat("attnlab: %s, %d threads%s -> %s", objective_->Description(), NumThreads(),
                        distributed_ ? absl::StrFormat(" x %d ranks", data_parallel_->ranks()) : "",
                        options_.run_dir));
    if (resumed_) display_.Message(absl::StrCat("resuming at step ", progress_.step));
  }
  result_.run_dir = options_.run_dir;
  objective_->module().Train();
  start_ = std::chrono::steady_clock::now();
  elapsed_before_ = progress_.elapsed_seconds;
  return absl::OkStatus();
}

// The next batch of the plan, starting the next epoch's plan when this one is used up.
std::vector<int64_t> TrainingRun::NextBatch() {
  if (progress_.batch_in_epoch >= static_cast<int64_t>(plan_.size())) {
    ++progress_.epoch;
    progress_.batch_in_epoch = 0;
    plan_ = objective_->EpochPlan(progress_.epoch);
  }
  return plan_[progress_.batch_in_epoch++];
}

// One optimizer step over train.accumulation batches: forward, backward, clipping, the
// update and its log record. False if a stop request cut it between micro-batches.
absl::StatusOr<bool> TrainingRun::TrainStep() {
  // A stop between two micro-batches abandons the step: the batch position and the
  // dropout stream go back to where the step began, so a resumed run takes it whole.
  const TrainingProgress step_start = progress_;
  const GeneratorState generator_at_step_start = DefaultGenerator().state();
  const StepLoss forward_backward = ForwardBackward(
      *objective_, config_.train().accumulation, [&] { return NextBatch(); }, stop_requested_,
      data_parallel_->shard(), data_parallel_->BackwardHook());
  if (!forward_backward.completed) {
    DropPartialStep(step_start, generator_at_step_start);
    return false;
  }
  // Several ranks: every rank now holds the sum of the ranks' gradients, and the loss is
  // the sum of the ranks' parts of it.
  RETURN_IF_ERROR(data_parallel_->FinishGradientReduce());
  ASSIGN_OR_RETURN(const double step_loss, data_parallel_->SumOverRanks(forward_backward.mean()));
  const double clip_norm = config_.train().clip_norm;
  const float gradient_norm =
      clip_norm > 0 ? ClipGradNorm(optimizer_->parameters(), clip_norm) : 0.0f;
  if (!std::isfinite(step_loss) || !std::isfinite(gradient_norm)) {
    return SkipNonFiniteStep(step_loss);
  }
  progress_.consecutive_skipped_steps = 0;
  const double learning_rate = schedule_->Rate(progress_.step + 1);
  {
    profiler::MarkerScope profile("optimizer.step");
    optimizer_->Step(learning_rate);
    optimizer_->ZeroGrad();
  }
  if (ema_) {
    profiler::MarkerScope profile("ema.update");
    ema_->Update(++progress_.ema_updates);
  }
  ++progress_.step;
  progress_.elapsed_seconds = Elapsed();
  RETURN_IF_ERROR(LogStep(step_loss, forward_backward.weight, learning_rate));
  return true;
}

void TrainingRun::DropPartialStep(const TrainingProgress& step_start,
                                  const GeneratorState& generator) {
  optimizer_->ZeroGrad();
  if (progress_.epoch != step_start.epoch) plan_ = objective_->EpochPlan(step_start.epoch);
  progress_ = step_start;
  DefaultGenerator().set_state(generator);
}

// A non-finite loss or gradient: an error (train.nan_policy = "stop"), or a step that
// changes no parameter but still counts, so evaluation, checkpoints and Ctrl-C keep
// their schedule ("skip"), up to train.max_skipped_steps in a row.
absl::StatusOr<bool> TrainingRun::SkipNonFiniteStep(double step_loss) {
  optimizer_->ZeroGrad();
  if (config_.train().nan_policy != "skip") {
    display_.Finish();
    return absl::DataLossError(absl::StrCat(
        "step ", progress_.step + 1, ": the loss is ", step_loss, "; training stopped. ",
        LastGoodText(), " (train.nan_policy = \"skip\" skips such steps instead)"));
  }
  if (show_progress()) {
    display_.Message(
        absl::StrCat("step ", progress_.step + 1, ": loss is ", step_loss, "; step skipped"));
  }
  RETURN_IF_ERROR(WriteRecord({{"kind", "skipped"}, {"step", progress_.step + 1}}));
  ++progress_.step;
  progress_.elapsed_seconds = Elapsed();
  const int64_t max_skipped = config_.train().max_skipped_steps;
  if (++progress_.consecutive_skipped_steps >= max_skipped) {
    display_.Finish();
    return absl::DataLossError(absl::StrCat(
        "step ", progress_.step, ": ", max_skipped,
        " steps in a row had a non-finite loss (train.max_skipped_steps = ", max_skipped,
        "); training stopped. ", LastGoodText()));
  }
  return true;
}

// The progress bar, and a metrics.jsonl "train" record every train.log_every steps with
// the weighted mean loss since the last one. The log window lives in `progress_`, so a
// resumed run logs what this one would have.
absl::Status TrainingRun::LogStep(double step_loss, int64_t step_weight, double learning_rate) {
  progress_.window_loss += step_loss * static_cast<double>(step_weight);
  progress_.window_tokens += step_weight;
  const bool log_now =
      progress_.step % config_.train().log_every == 0 || progress_.step == total_steps_;
  const double tokens_per_second =
      progress_.window_tokens /
      std::max(1e-9, progress_.elapsed_seconds - progress_.window_start_seconds);
  if (show_progress()) {
    display_.Update(progress_.step, step_loss, tokens_per_second, learning_rate,
                    progress_.elapsed_seconds - elapsed_before_, log_now);
  }
  if (!log_now) return absl::OkStatus();
  Json record = {{"kind", "train"},
                 {"step", progress_.step},
                 {"epoch", progress_.epoch + 1},
                 {"loss", progress_.window_loss / std::max<int64_t>(progress_.window_tokens, 1)},
                 {"lr", learning_rate},
                 {"tokens_per_second", tokens_per_second},
                 {"elapsed_seconds", progress_.elapsed_seconds}};
  if (distributed_) {
    // Rank 0's communication since the last record: what one replica sends and waits for.
    const DataParallel::Communication communication = data_parallel_->TakeCommunication();
    record["ranks"] = data_parallel_->ranks();
    record["all_reduce_bytes"] = communication.all_reduce_bytes;
    record["all_reduce_seconds"] = communication.all_reduce_seconds;
    record["communication_wait_seconds"] = communication.wait_seconds;
  }
  RETURN_IF_ERROR(WriteRecord(record));
  progress_.window_loss = 0.0;
  progress_.window_tokens = 0;
  progress_.window_start_seconds = progress_.elapsed_seconds;
  return absl::OkStatus();
}

// Validation, its record, the best checkpoint and early stopping; false if a stop
// request cut the validation (progress_.evaluation_pending then says to redo it). With
// train.ema_decay the moving average of the weights is evaluated too, its metrics logged
// as ema_<metric> in the same record; the best checkpoint and early stopping follow the
// trained weights' metric alone.
absl::StatusOr<bool> TrainingRun::EvaluateAndKeepBest() {
  progress_.evaluation_pending = true;
  const Evaluation evaluation = objective_->Evaluate("valid", stop_requested_);
  if (evaluation.interrupted) return false;
  std::optional<Evaluation> averaged;
  if (ema_) {
    const AverageSwappedIn swapped(*ema_);
    averaged = objective_->Evaluate("valid", stop_requested_);
    if (averaged->interrupted) return false;
  }
  progress_.evaluation_pending = false;
  std::map<std::string, double> ema_metrics;
  if (averaged) {
    for (const auto& [name, value] : averaged->metrics) ema_metrics["ema_" + name] = value;
  }
  result_.valid_metrics = evaluation.metrics;
  result_.valid_metrics.insert(ema_metrics.begin(), ema_metrics.end());
  // elapsed_seconds: as in the train record of this step (before this evaluation).
  Json record = {{"kind", "eval"},
                 {"split", "valid"},
                 {"step", progress_.step},
                 {"seconds", evaluation.seconds},
                 {"elapsed_seconds", progress_.elapsed_seconds}};
  record.update(MetricsJson(evaluation.metrics));
  if (averaged) {
    record["ema_seconds"] = averaged->seconds;
    record.update(MetricsJson(ema_metrics));
  }
  RETURN_IF_ERROR(WriteRecord(record));
  if (show_progress()) {
    display_.Message(absl::StrCat("step ", progress_.step,
                                  " valid: ", FormatMetrics(evaluation.metrics),
                                  averaged ? "; EMA: " + FormatMetrics(averaged->metrics) : ""));
  }
  const auto metric = evaluation.metrics.find(main_metric_);
  if (metric == evaluation.metrics.end()) {
    return absl::InvalidArgumentError(absl::StrCat("train.early_stopping_metric: no metric '",
                                                   main_metric_, "'; the evaluation gives ",
                                                   FormatMetrics(evaluation.metrics)));
  }
  const int64_t patience = config_.train().patience;
  if (Improved(metric->second, progress_.best_metric, higher_is_better_, progress_.best_step)) {
    progress_.best_metric = metric->second;
    progress_.best_step = progress_.step;
    progress_.evaluations_without_improvement = 0;
    RETURN_IF_ERROR(SaveCheckpoint(kBestCheckpoint));
  } else if (patience > 0 && ++progress_.evaluations_without_improvement >= patience) {
    early_stopped_ = true;
    if (show_progress()) {
      display_.Message(absl::StrCat("early stopping: no improvement of ", main_metric_, " in ",
                                    patience, " evaluations (best ", progress_.best_metric,
                                    " at step ", progress_.best_step, ")"));
    }
  }
  return true;
}

// checkpoint_last or checkpoint_best. SaveCheckpoint refuses a non-finite model
// (DataLoss): the run cannot go on from it.
absl::Status TrainingRun::SaveCheckpoint(const std::string& file) {
  const std::string path = (run_dir_ / file).string();
  if (!writes_files_) {  // rank 0 saves; every rank's parameters are the same
    last_good_checkpoint_ = path;
    last_good_step_ = progress_.step;
    return absl::OkStatus();
  }
  CheckpointContents contents;
  contents.config_toml = config_.ToToml();
  objective_->AddToCheckpoint(contents);
  contents.progress = progress_;
  contents.generator_state = DefaultGenerator().state();
  if (ema_) contents.ema_weights = ema_->average();
  const absl::Status saved =
      experiments::SaveCheckpoint(path, objective_->module(), optimizer_.get(), contents);
  if (absl::IsDataLoss(saved)) {
    display_.Finish();
    return absl::DataLossError(absl::StrCat("step ", progress_.step, ": ", saved.message(),
                                            "; training stopped. ", LastGoodText()));
  }
  RETURN_IF_ERROR(saved);
  last_good_checkpoint_ = path;
  last_good_step_ = progress_.step;
  return absl::OkStatus();
}

// The moving average as a plain model checkpoint (no optimizer state), for evaluate and
// decode: the averaged weights swapped into the model for the save.
absl::Status TrainingRun::SaveEmaCheckpoint() {
  if (!writes_files_) return absl::OkStatus();
  CheckpointContents contents;
  contents.config_toml = config_.ToToml();
  objective_->AddToCheckpoint(contents);
  contents.progress = progress_;
  contents.generator_state = DefaultGenerator().state();
  contents.derived_from = absl::StrFormat(
      "the exponential moving average of the weights (train.ema_decay = %g, bias-corrected) "
      "over %d optimizer steps, at step %d",
      ema_->decay(), progress_.ema_updates, progress_.step);
  const AverageSwappedIn swapped(*ema_);
  return experiments::SaveCheckpoint((run_dir_ / kEmaCheckpoint).string(), objective_->module(),
                                     nullptr, contents);
}

absl::Status TrainingRun::SaveLastCheckpoint() {
  RETURN_IF_ERROR(SaveCheckpoint(kLastCheckpoint));
  return ema_ ? SaveEmaCheckpoint() : absl::OkStatus();
}

// The step checkpoint is written before checkpoint_last: a kill between the two resumes
// from the previous checkpoint_last and writes this step's file again, never losing it.
absl::Status TrainingRun::SaveScheduledCheckpoints() {
  const int64_t keep = config_.train().keep_last;
  if (keep > 0) {
    RETURN_IF_ERROR(SaveCheckpoint(StepCheckpointName(progress_.step)));
    if (writes_files_) {
      RETURN_IF_ERROR(PruneStepCheckpoints(options_.run_dir, progress_.step, keep));
    }
  }
  return SaveLastCheckpoint();
}

// A stop request: checkpoint_last holds the last completed step (saved here, unless it
// already does) and the run returns as interrupted, to be continued with --resume.
absl::StatusOr<TrainResult> TrainingRun::StopForResume(bool save_last) {
  if (save_last) RETURN_IF_ERROR(SaveLastCheckpoint());
  display_.Finish();
  result_.interrupted = true;
  result_.steps = progress_.step;
  result_.train_seconds = progress_.elapsed_seconds;
  return result_;
}

// `--profile` records the steps of profile_window_ (see ChooseProfileWindow).
void TrainingRun::StartProfileIfDue() const {
  if (options_.profile && progress_.step == profile_window_.first) {
    profiler::Start();
    data_parallel_->ForgetCollectives();  // the communication tracks start here too
  }
}

absl::Status TrainingRun::WriteProfileIfDue() {
  if (!options_.profile || !profiler::Enabled() || progress_.step != profile_window_.last) {
    return absl::OkStatus();
  }
  profiler::Recording recording = profiler::Stop();
  std::string communication_table;
  if (distributed_) {  // every rank takes part; rank 0 writes
    ASSIGN_OR_RETURN(const std::vector<DataParallel::RankCommunication> ranks,
                     data_parallel_->GatherCollectives(recording.origin_steady_ns));
    communication_table = AddCommunicationTracks(ranks, recording);
  }
  if (!writes_files_) return absl::OkStatus();
  RETURN_IF_ERROR(profiler::WriteProfileFiles(
                      recording, profile_window_.last - profile_window_.first, options_.run_dir)
                      .status());
  if (!communication_table.empty()) {
    const std::string profile_path = (run_dir_ / "profile.txt").string();
    ASSIGN_OR_RETURN(const std::string tables, ReadTextFile(profile_path));
    RETURN_IF_ERROR(WriteFileAtomically(profile_path, tables + communication_table));
  }
  if (show_progress()) {
    display_.Message(absl::StrCat("profile of steps ", profile_window_.first + 1, "-",
                                  profile_window_.last, ": ", (run_dir_ / "profile.txt").string(),
                                  ", ", (run_dir_ / "trace.json").string()));
  }
  return absl::OkStatus();
}

// The end: with the best checkpoint's parameters, the objective's files and the final
// test, then the report and, last, result.json (which marks the run as finished).
// checkpoint_last holds the final step; a stop from here on leaves the end to --resume.
absl::StatusOr<TrainResult> TrainingRun::FinishRun() {
  display_.Finish();
  result_.steps = progress_.step;
  result_.train_seconds = progress_.elapsed_seconds;
  // Rank 0 tests the best checkpoint and writes the report; the other ranks are done.
  if (!writes_files_) return result_;
  const auto end_start = std::chrono::steady_clock::now();
  if (stop_requested_()) return StopForResume(/*save_last=*/false);
  const std::string best_path = (run_dir_ / kBestCheckpoint).string();
  if (fs::exists(best_path)) {
    RETURN_IF_ERROR(LoadCheckpoint(best_path, objective_->module(), nullptr).status());
  }
  ASSIGN_OR_RETURN(const bool written,
                   objective_->WriteRunFiles(options_.run_dir, stop_requested_));
  if (!written) return StopForResume(/*save_last=*/false);
  ASSIGN_OR_RETURN(const bool tested, RunFinalTest());
  if (!tested) return StopForResume(/*save_last=*/false);
  if (show_progress()) {
    display_.Message(absl::StrCat("test (best checkpoint, step ",
                                  std::max<int64_t>(progress_.best_step, 0),
                                  "): ", FormatMetrics(result_.test_metrics)));
  }
  RETURN_IF_ERROR(WriteRunReport({options_.run_dir}, (run_dir_ / "report.html").string()));
  RETURN_IF_ERROR(WriteResult(
      std::chrono::duration<double>(std::chrono::steady_clock::now() - end_start).count()));
  if (show_progress()) {
    display_.Message(absl::StrCat("report: ", (run_dir_ / "report.html").string()));
  }
  return result_;
}

// The objective's test passes, each a metrics.jsonl "test" record; false if a stop
// request cut one.
absl::StatusOr<bool> TrainingRun::RunFinalTest() {
  for (int64_t pass = 0; pass < objective_->TestPasses(); ++pass) {
    const TestPass test = objective_->Test(pass, stop_requested_);
    if (test.evaluation.interrupted) return false;
    Json record = {{"kind", "test"},
                   {"split", "test"},
                   {"step", progress_.step},
                   {"seconds", test.evaluation.seconds}};
    record.update(test.record_fields);
    record.update(MetricsJson(test.evaluation.metrics));
    RETURN_IF_ERROR(WriteRecord(record));
    for (const auto& [name, value] : test.evaluation.metrics) {
      result_.test_metrics[test.metric_prefix + name] = value;
    }
  }
  return true;
}

absl::Status TrainingRun::WriteResult(double end_seconds) {
  RunResult run_result;
  run_result.steps = result_.steps;
  run_result.train_seconds = result_.train_seconds;
  run_result.wall_seconds = result_.train_seconds + end_seconds;
  run_result.parameters = objective_->module().ParameterCount();
  run_result.test_metrics = result_.test_metrics;
  run_result.valid_metrics = result_.valid_metrics;
  return WriteRunResult((run_dir_ / kRunResultFile).string(), run_result);
}

}  // namespace

std::string DefaultRunDirectory(const Config& config) {
  std::string experiment = config.experiment().name;
  if (experiment.empty()) {
    fs::path path = config.path().empty() ? fs::path("run") : fs::path(config.path());
    path.replace_extension();
    const std::string text = path.lexically_normal().generic_string();
    // Recipes live in experiments/recipes/<task>/; runs are named after <task>/<config>.
    const std::string prefix = text.rfind("experiments/recipes/") != std::string::npos
                                   ? "experiments/recipes/"
                                   : "experiments/";
    const size_t marker = text.rfind(prefix);
    experiment = marker == std::string::npos ? path.filename().string()
                                             : text.substr(marker + prefix.size());
  }
  return (fs::path(config.experiment().runs_dir) / experiment /
          absl::StrCat("seed-", config.experiment().seed))
      .string();
}

absl::StatusOr<TrainResult> Train(const Config& config, const RunOptions& options) {
  // ---- The run directory: locked (by rank 0), checked, or already finished ----
  std::optional<RunDirectoryLock> lock;
  if (options.communicator == nullptr || options.communicator->rank() == 0) {
    absl::StatusOr<RunDirectoryLock> claimed = ClaimRunDirectory(options);
    if (!claimed.ok()) return claimed.status();
    lock.emplace(*std::move(claimed));
  }
  RETURN_IF_ERROR(CheckRunDirectoryContents(options));
  if (options.resume && fs::exists(fs::path(options.run_dir) / kRunResultFile)) {
    return FinishedRun(options);
  }
  if (config.experiment().threads > 0) SetNumThreads(static_cast<int>(config.experiment().threads));
  // train.dtype: training, validation and the final test all run in its precision.
  ASSIGN_OR_RETURN(const DType matmul_inputs, MatmulInputDTypeOf(config));
  const MixedPrecision precision(matmul_inputs);
  // From here on Ctrl-C, SIGTERM and SIGHUP request a stop (framework/core/stop_request.h),
  // read between micro-batches and between evaluation batches.
  const StopRequestScope listen_for_stop_requests;

  // ---- Load: data, model, optimizer, checkpoint; the plan and the run's files ----
  ASSIGN_OR_RETURN(const std::unique_ptr<TrainingRun> run, TrainingRun::Start(config, options));
  if (run->evaluation_pending()) {
    // Interrupted during this step's validation: do it now, and save at once so that a
    // kill before the next checkpoint does not log it twice (with the step's scheduled
    // checkpoints if it has them, which the stop came before).
    ASSIGN_OR_RETURN(const bool evaluated, run->EvaluateAndKeepBest());
    if (!evaluated) return run->StopForResume(/*save_last=*/false);
    RETURN_IF_ERROR(run->CheckpointDue() ? run->SaveScheduledCheckpoints()
                                         : run->SaveLastCheckpoint());
  }
  // A run that ends inside the profile window (early stopping, Ctrl-C, an error) stops
  // recording.
  struct StopProfilerOnExit {
    bool active;
    ~StopProfilerOnExit() {
      if (active && profiler::Enabled()) profiler::Stop();
    }
  } stop_profiler{options.profile};

  // ---- Step, evaluate, checkpoint ----
  while (!run->Done()) {
    ASSIGN_OR_RETURN(const bool stop, run->StopWasRequested());
    if (stop) return run->StopForResume(/*save_last=*/true);
    run->StartProfileIfDue();
    ASSIGN_OR_RETURN(const bool stepped, run->TrainStep());
    if (!stepped) return run->StopForResume(/*save_last=*/true);
    RETURN_IF_ERROR(run->WriteProfileIfDue());
    if (run->EvaluationDue()) {
      ASSIGN_OR_RETURN(const bool evaluated, run->EvaluateAndKeepBest());
      if (!evaluated) return run->StopForResume(/*save_last=*/true);
    }
    if (run->CheckpointDue()) RETURN_IF_ERROR(run->SaveScheduledCheckpoints());
    if (options.after_step) options.after_step(run->step());
    if (options.stop_at_step > 0 && run->step() >= options.stop_at_step && !run->Done()) {
      return run->StopAtStep();
    }
  }

  // ---- Finish: test the best checkpoint, write the report and result.json ----
  return run->FinishRun();
}

}  // namespace attnlab::experiments
