#include "experiments/ablation/plan.h"

#include <algorithm>
#include <filesystem>
#include <map>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "experiments/tasks/task.h"
#include "experiments/trainer/checkpoint.h"
#include "experiments/trainer/objective.h"
#include "experiments/trainer/run_result.h"
#include "framework/core/error.h"

namespace attnlab::experiments {
namespace {

namespace fs = std::filesystem;

// A resolved config as "table.key" -> value text, from Config::ToToml.
std::map<std::string, std::string> Flatten(const Config& config) {
  std::map<std::string, std::string> flat;
  std::string table;
  for (const absl::string_view line : absl::StrSplit(config.ToToml(), '\n')) {
    if (line.empty()) continue;
    if (line.front() == '[') {
      table = std::string(line.substr(1, line.size() - 2));
      continue;
    }
    const size_t equals = line.find(" = ");
    flat[absl::StrCat(table, ".", line.substr(0, equals))] = std::string(line.substr(equals + 3));
  }
  return flat;
}

// The keys (other than experiment.threads, which follows --jobs) on which two configs differ,
// as "key: old -> new".
std::vector<std::string> Differences(const Config& previous, const Config& current) {
  std::vector<std::string> differences;
  const auto before = Flatten(previous), after = Flatten(current);
  for (const auto& [key, value] : after) {
    if (key == "experiment.threads") continue;
    const auto it = before.find(key);
    if (it != before.end() && it->second != value) {
      differences.push_back(absl::StrCat(key, ": ", it->second, " -> ", value));
    }
  }
  return differences;
}

absl::StatusOr<Config> CellConfig(const Study& study, const Cell& cell, int64_t seed) {
  absl::StatusOr<Config> config = Config::Load(study.base_config);
  if (!config.ok()) {
    return absl::Status(
        config.status().code(),
        absl::StrCat(study.base_where, ": base config: ", config.status().message()));
  }
  for (const KeyAssignment& assignment : cell.assignments) {
    RETURN_IF_ERROR(config->SetValue(assignment.key, assignment.value, assignment.where));
  }
  RETURN_IF_ERROR(config->SetValue("experiment.seed", seed, study.path));
  return config;
}

// What to do with one run directory (see plan.h).
absl::Status DecideAction(const Config& config, PlannedRun* run) {
  const fs::path dir(run->run_dir);
  std::error_code error;
  if (!fs::exists(dir, error)) {
    run->action = RunAction::kRun;
    run->reason = "not started";
    return absl::OkStatus();
  }
  if (fs::exists(dir / "config.toml", error)) {
    absl::StatusOr<Config> previous = Config::Load((dir / "config.toml").string());
    if (!previous.ok()) {
      return absl::Status(
          previous.status().code(),
          absl::StrCat(run->run_dir, ": its config.toml does not load (",
                       previous.status().message(), "); delete the directory to rerun it"));
    }
    const std::vector<std::string> differences = Differences(*previous, config);
    if (!differences.empty()) {
      return absl::FailedPreconditionError(absl::StrCat(
          run->run_dir, " was trained with a different config (", absl::StrJoin(differences, ", "),
          "): the study changed since it ran. Delete ",
          fs::path(run->run_dir).parent_path().string(),
          " to rerun the cell, or give the study another name"));
    }
  }
  if (fs::exists(dir / kRunResultFile, error)) {
    absl::StatusOr<RunResult> result = ReadRunResult((dir / kRunResultFile).string());
    if (!result.ok()) {
      return absl::Status(
          result.status().code(),
          absl::StrCat(result.status().message(), "; delete ", run->run_dir, " to rerun it"));
    }
    run->action = RunAction::kSkip;
    run->reason = absl::StrCat("finished (", result->steps, " steps)");
    return absl::OkStatus();
  }
  const fs::path checkpoint = dir / "checkpoint_last.safetensors";
  if (fs::exists(checkpoint, error)) {
    absl::StatusOr<CheckpointContents> contents = ReadCheckpointMetadata(checkpoint.string());
    if (contents.ok()) {
      run->action = RunAction::kResume;
      run->reason = absl::StrCat("interrupted at step ", contents->progress.step);
      return absl::OkStatus();
    }
    run->action = RunAction::kRerun;
    run->reason = absl::StrCat("its checkpoint does not load (", contents.status().message(), ")");
    return absl::OkStatus();
  }
  if (fs::exists(dir / "metrics.jsonl", error)) {
    run->action = RunAction::kRerun;
    run->reason = "stopped before its first checkpoint";
    return absl::OkStatus();
  }
  run->action = RunAction::kRun;
  run->reason = "not started";
  return absl::OkStatus();
}

}  // namespace

const char* RunActionName(RunAction action) {
  switch (action) {
    case RunAction::kSkip:
      return "skip";
    case RunAction::kResume:
      return "resume";
    case RunAction::kRun:
      return "run";
    case RunAction::kRerun:
      return "rerun";
  }
  return "?";
}

absl::StatusOr<std::vector<std::string>> AvailableMetrics(const Config& config) {
  ASSIGN_OR_RETURN(const ReportedMetrics reported, ObjectiveReportedMetrics(config));
  return reported.test;
}

absl::StatusOr<std::vector<MetricSpec>> ValidationMetrics(const Config& config) {
  ASSIGN_OR_RETURN(const ReportedMetrics reported, ObjectiveReportedMetrics(config));
  return reported.validation;
}

namespace {

// Checks each `time_to` metric against a cell's validation metrics and records its
// direction; every cell must agree on it.
absl::Status ResolveTimeTargets(const Config& config, const std::string& cell, bool first,
                                std::vector<TimeTarget>* targets) {
  if (targets->empty()) return absl::OkStatus();
  ASSIGN_OR_RETURN(const std::vector<MetricSpec> specs, ValidationMetrics(config));
  std::vector<std::string> names;
  for (const MetricSpec& spec : specs) names.push_back(spec.name);
  for (TimeTarget& target : *targets) {
    const auto spec = std::find_if(specs.begin(), specs.end(),
                                   [&](const MetricSpec& s) { return s.name == target.metric; });
    if (spec == specs.end()) {
      return absl::InvalidArgumentError(absl::StrCat(
          target.where, ": time_to: unknown validation metric '", target.metric, "' (cell '", cell,
          "' ", names.empty() ? "has no validation evaluations" : "evaluates ",
          absl::StrJoin(names, ", "), ")"));
    }
    if (!first && spec->higher_is_better != target.higher_is_better) {
      return absl::InvalidArgumentError(
          absl::StrCat(target.where, ": time_to: cells disagree on whether a higher '",
                       target.metric, "' is better (cell '", cell, "')"));
    }
    target.higher_is_better = spec->higher_is_better;
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<StudyPlan> PlanStudy(const Study& study, const PlanOptions& options) {
  StudyPlan plan;
  plan.study = study;
  if (!options.seeds.empty()) plan.study.seeds = options.seeds;
  ASSIGN_OR_RETURN(plan.cells, ExpandCells(study));
  for (size_t c = 0; c < plan.cells.size(); ++c) {
    if (plan.cells[c].base) plan.base_cell = c;
    ASSIGN_OR_RETURN(Config config, CellConfig(study, plan.cells[c], plan.study.seeds.front()));
    ASSIGN_OR_RETURN(const std::vector<std::string> available, AvailableMetrics(config));
    for (const std::string& metric : study.metrics) {
      if (std::find(available.begin(), available.end(), metric) == available.end()) {
        return absl::InvalidArgumentError(
            absl::StrCat(study.metrics_where, ": unknown metric '", metric, "' (cell '",
                         plan.cells[c].name, "' reports ", absl::StrJoin(available, ", "), ")"));
      }
    }
    RETURN_IF_ERROR(ResolveTimeTargets(config, plan.cells[c].name, c == 0, &plan.study.time_to));
    plan.configs.push_back(std::move(config));
  }
  const std::string runs_dir =
      options.runs_dir.empty() ? plan.configs.front().experiment().runs_dir : options.runs_dir;
  plan.study_dir = (fs::path(runs_dir) / study.name).string();
  for (size_t c = 0; c < plan.cells.size(); ++c) {
    for (const int64_t seed : plan.study.seeds) {
      PlannedRun run;
      run.cell = c;
      run.seed = seed;
      run.run_dir =
          (fs::path(plan.study_dir) / plan.cells[c].name / absl::StrCat("seed-", seed)).string();
      ASSIGN_OR_RETURN(run.config, CellConfig(study, plan.cells[c], seed));
      RETURN_IF_ERROR(DecideAction(run.config, &run));
      plan.runs.push_back(std::move(run));
    }
  }
  return plan;
}

}  // namespace attnlab::experiments
