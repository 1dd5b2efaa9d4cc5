#include "experiments/trainer/trainer.h"

#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <optional>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "experiments/pooling/seed_pooling.h"
#include "experiments/report/report.h"
#include "experiments/trainer/checkpoint.h"
#include "experiments/trainer/evaluation.h"
#include "experiments/trainer/experiment_data.h"
#include "experiments/trainer/metrics_log.h"
#include "experiments/trainer/model_factory.h"
#include "experiments/trainer/progress.h"
#include "experiments/trainer/run_directory_lock.h"
#include "experiments/trainer/run_result.h"
#include "experiments/trainer/train_step.h"
#include "framework/core/stop_request.h"
#include "framework/io/atomic_file.h"
#include "framework/io/safetensors.h"
#include "framework/ops/mixed_precision.h"
#include "framework/ops/ops.h"
#include "framework/optim/clip.h"
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
  if (config.GetInt("train.max_steps") > 0) return config.GetInt("train.max_steps");
  const int64_t accumulation = config.GetInt("train.accumulation");
  return config.GetInt("train.epochs") * ((batches_per_epoch + accumulation - 1) / accumulation);
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

// samples.txt: the first `count` validation examples with reference and prediction.
absl::Status WriteSamples(const std::string& path, const std::vector<Example>& examples,
                          const std::vector<std::string>& predictions, int64_t count) {
  std::string text;
  for (int64_t i = 0; i < std::min<int64_t>(count, static_cast<int64_t>(examples.size())); ++i) {
    const bool correct = std::find(examples[i].references.begin(), examples[i].references.end(),
                                   predictions[i]) != examples[i].references.end();
    absl::StrAppend(&text, "source:     ", examples[i].source,
                    "\nreference:  ", examples[i].references[0], "\nprediction: ", predictions[i],
                    correct ? "   (correct)" : "   (wrong)", "\n\n");
  }
  return WriteFileAtomically(path, text);
}

// attention.safetensors: attention maps of the first validation examples, for the report.
absl::Status WriteAttentionPlots(const std::string& path, nn::Seq2SeqModel& model,
                                 const ExperimentData& data, int64_t count, bool all_layers) {
  NamedTensors tensors;
  SafetensorsMetadata metadata;
  for (int64_t i = 0; i < std::min<int64_t>(count, static_cast<int64_t>(data.valid.size())); ++i) {
    const Batch batch = MakeBatch(data.valid, {i});
    const auto plots = AttentionForPlots(model, batch.source, batch.target_input, all_layers);
    for (const auto& [name, weights] : plots) {
      tensors.emplace_back(absl::StrCat("example", i, ".", name), weights);
    }
    std::vector<std::string> source_tokens, target_tokens;
    for (int32_t id : data.valid[i].source)
      source_tokens.push_back(data.source_vocabulary.Token(id));
    target_tokens.push_back(data.target_vocabulary.Token(Vocabulary::kBos));
    for (size_t t = 0; t + 1 < data.valid[i].target.size(); ++t) {
      target_tokens.push_back(data.target_vocabulary.Token(data.valid[i].target[t]));
    }
    // Rows of the maps are decoder inputs (bos, y1, ...); columns are source tokens.
    metadata[absl::StrCat("example", i, ".source_tokens")] = Json(source_tokens).dump();
    metadata[absl::StrCat("example", i, ".target_tokens")] = Json(target_tokens).dump();
  }
  if (tensors.empty()) return absl::OkStatus();
  return WriteSafetensors(path, tensors, metadata);
}

// Keys a resumed run must keep: they fix the data, the model's shapes, the batches the
// saved position points into (seed, batch sizes) and the optimizer state's layout.
bool FixedWhenResuming(const std::string& key) {
  return key.rfind("task.", 0) == 0 || key.rfind("model.", 0) == 0 || key == "experiment.seed" ||
         key == "train.batch_tokens" || key == "train.max_batch_size" || key == "train.optimizer";
}

std::string ValueText(const Config& config, const ConfigKey& key) {
  switch (key.type) {
    case ValueType::kInt:
      return FormatConfigValue(config.GetInt(key.name));
    case ValueType::kFloat:
      return FormatConfigValue(config.GetFloat(key.name));
    case ValueType::kBool:
      return FormatConfigValue(config.GetBool(key.name));
    case ValueType::kString:
      return FormatConfigValue(config.GetString(key.name));
  }
  return "";
}

// --resume with a config that changes what the checkpoint was trained on is refused,
// naming every changed key, instead of training another experiment on top of it.
absl::Status CheckResumableConfig(const Config& config, const std::string& saved_toml,
                                  const std::string& checkpoint_path) {
  ASSIGN_OR_RETURN(const Config saved, Config::Parse(saved_toml, checkpoint_path));
  std::vector<std::string> changed;
  for (const ConfigKey& key : ConfigSchema()) {
    if (!FixedWhenResuming(key.name)) continue;
    const std::string before = ValueText(saved, key);
    const std::string after = ValueText(config, key);
    if (before != after) changed.push_back(absl::StrCat(key.name, " ", before, " -> ", after));
  }
  if (changed.empty()) return absl::OkStatus();
  return absl::FailedPreconditionError(
      absl::StrCat("--resume: ", checkpoint_path, " was trained with another ",
                   absl::StrJoin(changed, ", "), "; resume with its settings or start a new run"));
}

// seed_pooling is not sequence-to-sequence: it trains an attention-pooling student to
// match a hidden teacher (experiments/pooling/seed_pooling.h). Its records go to the
// same metrics.jsonl and report as every run.
absl::StatusOr<TrainResult> TrainSeedPooling(const Config& config, const TrainOptions& options) {
  PoolingOptions pooling;
  pooling.student_score = config.GetString("model.attention");
  pooling.teacher_score = config.GetString("task.teacher_score");
  pooling.teacher_sharpness = config.GetFloat("task.teacher_sharpness");
  pooling.train_size = config.GetInt("task.train_size");
  pooling.test_size = config.GetInt("task.test_size");
  pooling.steps = config.GetInt("train.max_steps");
  pooling.batch_size = config.GetInt("train.max_batch_size");
  pooling.learning_rate = config.GetFloat("train.lr");
  pooling.data_seed = static_cast<uint64_t>(config.GetInt("task.seed"));
  pooling.teacher_seed = static_cast<uint64_t>(config.GetInt("task.seed")) + 1;
  pooling.student_seed = static_cast<uint64_t>(config.GetInt("experiment.seed"));
  if (pooling.student_score != "additive" && pooling.student_score != "dot") {
    return absl::InvalidArgumentError(absl::StrCat(
        config.Origin("model.attention"),
        ": seed_pooling scores with \"additive\" or \"dot\", not \"", pooling.student_score, "\""));
  }
  const auto start = std::chrono::steady_clock::now();
  ASSIGN_OR_RETURN(const PoolingResult pooled, RunSeedPooling(pooling));
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();

  const fs::path run_dir(options.run_dir);
  RETURN_IF_ERROR(WriteFileAtomically((run_dir / "config.toml").string(), config.ToToml()));
  ASSIGN_OR_RETURN(MetricsLog log, MetricsLog::Open((run_dir / "metrics.jsonl").string(), -1));
  const int64_t log_every = config.GetInt("train.log_every");
  for (size_t step = 1; step <= pooled.step_losses.size(); ++step) {
    if (step % log_every == 0 || step == pooled.step_losses.size()) {
      RETURN_IF_ERROR(log.Write({{"kind", "train"},
                                 {"step", step},
                                 {"loss", pooled.step_losses[step - 1]},
                                 {"lr", pooling.learning_rate}}));
    }
  }
  TrainResult result;
  result.run_dir = options.run_dir;
  result.steps = static_cast<int64_t>(pooled.step_losses.size());
  result.train_seconds = seconds;
  result.test_metrics = {{"mse", pooled.final_test_loss},
                         {"initial_mse", pooled.initial_test_loss},
                         {"weight_difference", pooled.final_weight_difference},
                         {"initial_weight_difference", pooled.initial_weight_difference}};
  Json record = {{"kind", "test"}, {"split", "test"}, {"step", result.steps}};
  record.update(MetricsJson(result.test_metrics));
  RETURN_IF_ERROR(log.Write(record));
  RETURN_IF_ERROR(WriteRunReport({options.run_dir}, (run_dir / "report.html").string()));
  RunResult run_result;
  run_result.steps = result.steps;
  run_result.train_seconds = run_result.wall_seconds = seconds;
  run_result.test_metrics = result.test_metrics;
  RETURN_IF_ERROR(WriteRunResult((run_dir / kRunResultFile).string(), run_result));
  if (options.show_progress) {
    std::fprintf(stderr,
                 "seed_pooling: test MSE %.4g -> %.4g, |student - teacher| weights %.4f -> %.4f\n",
                 pooled.initial_test_loss, pooled.final_test_loss, pooled.initial_weight_difference,
                 pooled.final_weight_difference);
  }
  return result;
}

}  // namespace

std::string DefaultRunDirectory(const Config& config) {
  std::string experiment = config.GetString("experiment.name");
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
  return (fs::path(config.GetString("experiment.runs_dir")) / experiment /
          absl::StrCat("seed-", config.GetInt("experiment.seed")))
      .string();
}

absl::StatusOr<TrainResult> Train(const Config& config, const TrainOptions& options) {
  const fs::path run_dir(options.run_dir);
  const std::string last_path = (run_dir / "checkpoint_last.safetensors").string();
  const std::string best_path = (run_dir / "checkpoint_best.safetensors").string();
  const absl::Status no_checkpoint =
      absl::NotFoundError(absl::StrCat("--resume: no checkpoint at ", last_path));
  if (options.resume && !fs::exists(run_dir)) return no_checkpoint;  // and nothing created
  std::error_code error;
  fs::create_directories(run_dir, error);
  if (error) return absl::InternalError(absl::StrCat(options.run_dir, ": ", error.message()));
  // The directory is this process's until Train returns: two trainers (or a trainer and
  // an ablation runner) would interleave metrics.jsonl and overwrite each other's files.
  ASSIGN_OR_RETURN(const RunDirectoryLock lock, RunDirectoryLock::Acquire(options.run_dir));
  const std::vector<std::string> stale = RemoveStaleTemporaryFiles(options.run_dir);
  if (options.show_progress && !stale.empty()) {
    std::fprintf(stderr, "attnlab: removed %zu temporary files of killed processes (%s)\n",
                 stale.size(), absl::StrJoin(stale, ", ").c_str());
  }
  if (options.resume && !fs::exists(last_path)) return no_checkpoint;
  if (options.resume && fs::exists(run_dir / kRunResultFile)) {
    // A finished run has nothing to resume; training it "again" would log a second end.
    ASSIGN_OR_RETURN(const RunResult finished, ReadRunResult((run_dir / kRunResultFile).string()));
    TrainResult result;
    result.run_dir = options.run_dir;
    result.already_finished = true;
    result.steps = finished.steps;
    result.train_seconds = finished.train_seconds;
    result.test_metrics = finished.test_metrics;
    result.valid_metrics = finished.valid_metrics;
    return result;
  }
  // A run that stopped before its first checkpoint (e.g. a NaN at step 2) has a
  // metrics.jsonl but no checkpoint: a new run must not append its records to that log.
  for (const char* existing : {"checkpoint_last.safetensors", "metrics.jsonl"}) {
    if (!options.resume && fs::exists(run_dir / existing)) {
      return absl::AlreadyExistsError(absl::StrCat(options.run_dir, " already holds a run (",
                                                   existing,
                                                   "); pass --resume to "
                                                   "continue it, or choose another run directory"));
    }
  }

  if (config.GetInt("experiment.threads") > 0)
    SetNumThreads(static_cast<int>(config.GetInt("experiment.threads")));
  // train.dtype: training, validation and the final test all run in its precision.
  ASSIGN_OR_RETURN(const DType matmul_inputs, MatmulInputDTypeOf(config));
  const MixedPrecision precision(matmul_inputs);
  if (config.GetString("task.name") == "seed_pooling") return TrainSeedPooling(config, options);

  // From here on Ctrl-C, SIGTERM and SIGHUP request a stop (framework/core/stop_request.h),
  // read between micro-batches and between evaluation batches.
  const StopRequestScope listen_for_stop_requests;
  const std::function<bool()> stop_requested =
      options.stop_requested ? options.stop_requested : [] { return StopRequested(); };

  // ---- Data and vocabularies (from the checkpoint when resuming) ----
  std::optional<CheckpointContents> resumed;
  if (options.resume) {
    ASSIGN_OR_RETURN(resumed, ReadCheckpointMetadata(last_path));
    RETURN_IF_ERROR(CheckResumableConfig(config, resumed->config_toml, last_path));
  }
  ASSIGN_OR_RETURN(
      ExperimentData data,
      resumed ? LoadExperimentData(config, &resumed->source_vocabulary, &resumed->target_vocabulary)
              : LoadExperimentData(config));
  ASSIGN_OR_RETURN(
      std::shared_ptr<nn::Seq2SeqModel> model,
      BuildModel(config, data.source_vocabulary.size(), data.target_vocabulary.size()));
  ASSIGN_OR_RETURN(std::unique_ptr<Optimizer> optimizer,
                   MakeOptimizer(config, model->NamedParameters()));

  const uint64_t seed = static_cast<uint64_t>(config.GetInt("experiment.seed"));
  ManualSeed(seed);
  TrainingProgress progress;
  // The newest checkpoint written (every checkpoint is finite), named when a run diverges.
  std::string last_good_checkpoint;
  int64_t last_good_step = 0;
  if (resumed) {
    ASSIGN_OR_RETURN(CheckpointContents loaded, LoadCheckpoint(last_path, *model, optimizer.get()));
    if (const std::string non_finite = DescribeNonFiniteParameters(*model); !non_finite.empty()) {
      return absl::DataLossError(
          absl::StrCat("--resume: ", last_path, " holds ", non_finite, "; it cannot be resumed"));
    }
    progress = loaded.progress;
    DefaultGenerator().set_state(loaded.generator_state);
    last_good_checkpoint = last_path;
    last_good_step = progress.step;
  }

  const int64_t batch_tokens = config.GetInt("train.batch_tokens");
  const int64_t max_batch_size = config.GetInt("train.max_batch_size");
  const int64_t accumulation = config.GetInt("train.accumulation");
  const float label_smoothing = static_cast<float>(config.GetFloat("train.label_smoothing"));
  // The batch order of epoch e is a function of (seed, e) only, so a resumed run sees
  // exactly the batches the uninterrupted run would have.
  auto epoch_plan = [&](int64_t epoch) {
    return MakeBatchPlan(data.train, batch_tokens, max_batch_size, /*shuffle=*/true,
                         seed * 1000003ull + static_cast<uint64_t>(epoch));
  };
  std::vector<std::vector<int64_t>> plan = epoch_plan(progress.epoch);
  const int64_t total_steps = TotalSteps(config, static_cast<int64_t>(plan.size()));
  ASSIGN_OR_RETURN(const auto schedule, MakeSchedule(config, total_steps));
  // Only now, with every config error found, does the run directory get its files.
  RETURN_IF_ERROR(WriteFileAtomically((run_dir / "config.toml").string(), config.ToToml()));
  ASSIGN_OR_RETURN(MetricsLog metrics_log, MetricsLog::Open((run_dir / "metrics.jsonl").string(),
                                                            resumed ? progress.step : -1));

  const std::vector<MetricSpec> task_metrics = data.task->Metrics();
  std::string main_metric = config.GetString("train.early_stopping_metric");
  if (main_metric.empty()) main_metric = task_metrics.front().name;
  bool higher_is_better = main_metric != "loss";
  for (const MetricSpec& spec : task_metrics) {
    if (spec.name == main_metric) higher_is_better = spec.higher_is_better;
  }

  EvaluationOptions eval_options;
  eval_options.batch_tokens = batch_tokens;
  eval_options.max_batch_size = max_batch_size;
  eval_options.max_decode_length = config.GetInt("eval.max_decode_length");
  eval_options.length_penalty = static_cast<float>(config.GetFloat("eval.length_penalty"));
  eval_options.stop_requested = stop_requested;

  ProgressDisplay display(total_steps);
  if (options.show_progress) {
    display.Message(absl::StrFormat(
        "attnlab: %s on task %s: %d parameters, %d/%d/%d examples, vocabularies %d/%d, %d threads "
        "-> %s",
        config.GetString("model.type"), config.GetString("task.name"), model->ParameterCount(),
        data.train.size(), data.valid.size(), data.test.size(), data.source_vocabulary.size(),
        data.target_vocabulary.size(), NumThreads(), options.run_dir));
    if (resumed) display.Message(absl::StrCat("resuming at step ", progress.step));
  }

  auto last_good_text = [&] {
    return last_good_checkpoint.empty()
               ? std::string("No checkpoint was saved before it.")
               : absl::StrCat("The last good checkpoint is ", last_good_checkpoint, " (step ",
                              last_good_step, ").");
  };
  // SaveCheckpoint refuses a non-finite model (DataLoss): the run cannot go on from it.
  auto save = [&](const std::string& path) -> absl::Status {
    CheckpointContents contents;
    contents.config_toml = config.ToToml();
    contents.source_vocabulary = data.source_vocabulary.tokens();
    contents.target_vocabulary = data.target_vocabulary.tokens();
    contents.progress = progress;
    contents.generator_state = DefaultGenerator().state();
    const absl::Status saved = SaveCheckpoint(path, *model, optimizer.get(), contents);
    if (absl::IsDataLoss(saved)) {
      display.Finish();
      return absl::DataLossError(absl::StrCat("step ", progress.step, ": ", saved.message(),
                                              "; training stopped. ", last_good_text()));
    }
    RETURN_IF_ERROR(saved);
    last_good_checkpoint = path;
    last_good_step = progress.step;
    return absl::OkStatus();
  };

  TrainResult result;
  result.run_dir = options.run_dir;
  // A stop request: checkpoint_last holds the last completed step (saved here, unless it
  // already does) and the run returns as interrupted, to be continued with --resume.
  auto stop_for_resume = [&](bool save_last) -> absl::StatusOr<TrainResult> {
    if (save_last) RETURN_IF_ERROR(save(last_path));
    display.Finish();
    result.interrupted = true;
    result.steps = progress.step;
    result.train_seconds = progress.elapsed_seconds;
    return result;
  };

  model->Train();
  const auto start = std::chrono::steady_clock::now();
  const double elapsed_before = progress.elapsed_seconds;
  auto elapsed = [&] {
    return elapsed_before +
           std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  };
  const int64_t patience = config.GetInt("train.patience");
  bool early_stopped = patience > 0 && progress.evaluations_without_improvement >= patience;

  // ---- Evaluation, best checkpoint, early stopping; false if a stop request cut it ----
  auto evaluate_and_keep_best = [&]() -> absl::StatusOr<bool> {
    const EvaluationResult evaluation = Evaluate(*model, data, "valid", eval_options);
    if (evaluation.interrupted) return false;
    progress.evaluation_pending = false;
    result.valid_metrics = evaluation.metrics;
    // elapsed_seconds: as in the train record of this step (before this evaluation).
    Json record = {{"kind", "eval"},
                   {"split", "valid"},
                   {"step", progress.step},
                   {"seconds", evaluation.seconds},
                   {"elapsed_seconds", progress.elapsed_seconds}};
    record.update(MetricsJson(evaluation.metrics));
    RETURN_IF_ERROR(metrics_log.Write(record));
    if (options.show_progress) {
      display.Message(
          absl::StrCat("step ", progress.step, " valid: ", FormatMetrics(evaluation.metrics)));
    }
    const auto metric = evaluation.metrics.find(main_metric);
    if (metric == evaluation.metrics.end()) {
      return absl::InvalidArgumentError(absl::StrCat("train.early_stopping_metric: no metric '",
                                                     main_metric, "'; the evaluation gives ",
                                                     FormatMetrics(evaluation.metrics)));
    }
    if (Improved(metric->second, progress.best_metric, higher_is_better, progress.best_step)) {
      progress.best_metric = metric->second;
      progress.best_step = progress.step;
      progress.evaluations_without_improvement = 0;
      RETURN_IF_ERROR(save(best_path));
    } else if (patience > 0 && ++progress.evaluations_without_improvement >= patience) {
      early_stopped = true;
      if (options.show_progress) {
        display.Message(absl::StrCat("early stopping: no improvement of ", main_metric, " in ",
                                     patience, " evaluations (best ", progress.best_metric,
                                     " at step ", progress.best_step, ")"));
      }
    }
    return true;
  };
  if (progress.evaluation_pending) {
    // Interrupted during this step's validation: do it now, and save at once so that a
    // kill before the next checkpoint does not log it twice.
    ASSIGN_OR_RETURN(const bool evaluated, evaluate_and_keep_best());
    if (!evaluated) return stop_for_resume(/*save_last=*/false);
    RETURN_IF_ERROR(save(last_path));
  }

  const ProfileWindow profile_window = ChooseProfileWindow(progress.step, total_steps);
  // A run that ends inside the window (early stopping, Ctrl-C, an error) stops recording.
  struct StopProfilerOnExit {
    bool active;
    ~StopProfilerOnExit() {
      if (active && profiler::Enabled()) profiler::Stop();
    }
  } stop_profiler{options.profile};

  while (progress.step < total_steps && !early_stopped) {
    if (stop_requested()) return stop_for_resume(/*save_last=*/true);
    // ---- One optimizer step over `accumulation` batches ----
    if (options.profile && progress.step == profile_window.first) profiler::Start();
    // A stop between two micro-batches abandons the step: the batch position and the
    // dropout stream go back to where the step began, so a resumed run takes it whole.
    const TrainingProgress step_start = progress;
    const GeneratorState generator_at_step_start = DefaultGenerator().state();
    const StepLoss forward_backward = ForwardBackward(
        *model, accumulation,
        [&] {
          if (progress.batch_in_epoch >= static_cast<int64_t>(plan.size())) {
            ++progress.epoch;
            progress.batch_in_epoch = 0;
            plan = epoch_plan(progress.epoch);
          }
          return MakeBatch(data.train, plan[progress.batch_in_epoch++]);
        },
        label_smoothing, stop_requested);
    if (!forward_backward.completed) {
      optimizer->ZeroGrad();
      if (progress.epoch != step_start.epoch) plan = epoch_plan(step_start.epoch);
      progress = step_start;
      DefaultGenerator().set_state(generator_at_step_start);
      return stop_for_resume(/*save_last=*/true);
    }
    const double step_loss = forward_backward.mean();
    const int64_t step_tokens = forward_backward.target_tokens;
    const double clip_norm = config.GetFloat("train.clip_norm");
    const float gradient_norm =
        clip_norm > 0 ? ClipGradNorm(optimizer->parameters(), clip_norm) : 0.0f;
    if (!std::isfinite(step_loss) || !std::isfinite(gradient_norm)) {
      optimizer->ZeroGrad();
      if (config.GetString("train.nan_policy") != "skip") {
        display.Finish();
        return absl::DataLossError(absl::StrCat(
            "step ", progress.step + 1, ": the loss is ", step_loss, "; training stopped. ",
            last_good_text(), " (train.nan_policy = \"skip\" skips such steps instead)"));
      }
      // A skipped step changes no parameter but still counts: evaluation, checkpoints and
      // Ctrl-C below keep their schedule.
      if (options.show_progress) {
        display.Message(
            absl::StrCat("step ", progress.step + 1, ": loss is ", step_loss, "; step skipped"));
      }
      RETURN_IF_ERROR(metrics_log.Write({{"kind", "skipped"}, {"step", progress.step + 1}}));
      ++progress.step;
      progress.elapsed_seconds = elapsed();
      const int64_t max_skipped = config.GetInt("train.max_skipped_steps");
      if (++progress.consecutive_skipped_steps >= max_skipped) {
        display.Finish();
        return absl::DataLossError(absl::StrCat(
            "step ", progress.step, ": ", max_skipped,
            " steps in a row had a non-finite loss (train.max_skipped_steps = ", max_skipped,
            "); training stopped. ", last_good_text()));
      }
    } else {
      progress.consecutive_skipped_steps = 0;
      const double learning_rate = schedule->Rate(progress.step + 1);
      {
        profiler::MarkerScope profile("optimizer.step");
        optimizer->Step(learning_rate);
        optimizer->ZeroGrad();
      }
      ++progress.step;
      progress.elapsed_seconds = elapsed();

      // The log window lives in `progress`, so a resumed run logs what this one would have.
      progress.window_loss += step_loss * static_cast<double>(step_tokens);
      progress.window_tokens += step_tokens;
      const bool log_now =
          progress.step % config.GetInt("train.log_every") == 0 || progress.step == total_steps;
      const double tokens_per_second =
          progress.window_tokens /
          std::max(1e-9, progress.elapsed_seconds - progress.window_start_seconds);
      if (options.show_progress) {
        display.Update(progress.step, step_loss, tokens_per_second, learning_rate,
                       progress.elapsed_seconds - elapsed_before, log_now);
      }
      if (log_now) {
        RETURN_IF_ERROR(metrics_log.Write(
            {{"kind", "train"},
             {"step", progress.step},
             {"epoch", progress.epoch + 1},
             {"loss", progress.window_loss / std::max<int64_t>(progress.window_tokens, 1)},
             {"lr", learning_rate},
             {"tokens_per_second", tokens_per_second},
             {"elapsed_seconds", progress.elapsed_seconds}}));
        progress.window_loss = 0.0;
        progress.window_tokens = 0;
        progress.window_start_seconds = progress.elapsed_seconds;
      }
    }

    if (options.profile && profiler::Enabled() && progress.step == profile_window.last) {
      RETURN_IF_ERROR(profiler::WriteProfileFiles(profiler::Stop(),
                                                  profile_window.last - profile_window.first,
                                                  options.run_dir)
                          .status());
      if (options.show_progress) {
        display.Message(absl::StrCat("profile of steps ", profile_window.first + 1, "-",
                                     profile_window.last, ": ", (run_dir / "profile.txt").string(),
                                     ", ", (run_dir / "trace.json").string()));
      }
    }

    if (progress.step % config.GetInt("train.eval_every") == 0 || progress.step == total_steps) {
      progress.evaluation_pending = true;
      ASSIGN_OR_RETURN(const bool evaluated, evaluate_and_keep_best());
      if (!evaluated) return stop_for_resume(/*save_last=*/true);
    }
    if (progress.step % config.GetInt("train.checkpoint_every") == 0 ||
        progress.step == total_steps || early_stopped) {
      RETURN_IF_ERROR(save(last_path));
    }
    if (options.after_step) options.after_step(progress.step);
  }
  display.Finish();
  result.steps = progress.step;
  result.train_seconds = progress.elapsed_seconds;
  const auto end_phase_start = std::chrono::steady_clock::now();

  // ---- The end: test metrics of the best checkpoint, samples, attention, report ----
  // checkpoint_last holds the final step; a stop from here on leaves the end to --resume.
  if (stop_requested()) return stop_for_resume(/*save_last=*/false);
  if (fs::exists(best_path)) {
    ASSIGN_OR_RETURN(CheckpointContents best, LoadCheckpoint(best_path, *model, nullptr));
    (void)best;
  }
  const EvaluationResult valid = Evaluate(*model, data, "valid", eval_options);
  if (valid.interrupted) return stop_for_resume(/*save_last=*/false);
  RETURN_IF_ERROR(WriteSamples((run_dir / "samples.txt").string(), data.splits.valid,
                               valid.predictions, config.GetInt("eval.samples")));
  RETURN_IF_ERROR(WriteAttentionPlots((run_dir / "attention.safetensors").string(), *model, data,
                                      config.GetInt("eval.attention_plots"),
                                      config.GetBool("eval.all_heads")));
  const EvaluationResult test = Evaluate(*model, data, "test", eval_options);
  if (test.interrupted) return stop_for_resume(/*save_last=*/false);
  result.test_metrics = test.metrics;
  Json record = {{"kind", "test"},
                 {"split", "test"},
                 {"step", progress.step},
                 {"decoder", "greedy"},
                 {"seconds", test.seconds}};
  record.update(MetricsJson(test.metrics));
  RETURN_IF_ERROR(metrics_log.Write(record));
  if (config.GetInt("eval.beam_size") > 1) {
    EvaluationOptions beam_options = eval_options;
    beam_options.beam_size = config.GetInt("eval.beam_size");
    const EvaluationResult beam = Evaluate(*model, data, "test", beam_options);
    if (beam.interrupted) return stop_for_resume(/*save_last=*/false);
    Json beam_record = {{"kind", "test"},
                        {"split", "test"},
                        {"step", progress.step},
                        {"decoder", absl::StrCat("beam", beam_options.beam_size)},
                        {"seconds", beam.seconds}};
    beam_record.update(MetricsJson(beam.metrics));
    RETURN_IF_ERROR(metrics_log.Write(beam_record));
    for (const auto& [name, value] : beam.metrics) result.test_metrics["beam_" + name] = value;
  }
  if (options.show_progress) {
    display.Message(absl::StrCat("test (best checkpoint, step ",
                                 std::max<int64_t>(progress.best_step, 0),
                                 "): ", FormatMetrics(result.test_metrics)));
  }
  RETURN_IF_ERROR(WriteRunReport({options.run_dir}, (run_dir / "report.html").string()));
  // Last: result.json marks the run as finished (see run_result.h).
  RunResult run_result;
  run_result.steps = result.steps;
  run_result.train_seconds = result.train_seconds;
  run_result.wall_seconds =
      result.train_seconds +
      std::chrono::duration<double>(std::chrono::steady_clock::now() - end_phase_start).count();
  run_result.parameters = model->ParameterCount();
  run_result.test_metrics = result.test_metrics;
  run_result.valid_metrics = result.valid_metrics;
  RETURN_IF_ERROR(WriteRunResult((run_dir / kRunResultFile).string(), run_result));
  if (options.show_progress) {
    display.Message(absl::StrCat("report: ", (run_dir / "report.html").string()));
  }
  return result;
}

}  // namespace attnlab::experiments
