// `attnlab ablate STUDY.toml`: runs an ablation study (experiments/ablation/), each cell x
// seed a training run of its own process, and writes the summary table and report.
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <thread>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "experiments/ablation/plan.h"
#include "experiments/ablation/scheduler.h"
#include "experiments/ablation/study.h"
#include "experiments/ablation/study_outputs.h"
#include "experiments/trainer/run_directory_lock.h"
#include "experiments/trainer/run_result.h"
#include "framework/core/error.h"
#include "framework/core/stop_request.h"
#include "framework/distributed/communicator.h"
#include "tools/cli/command.h"
#include "tools/cli/flags.h"

namespace attnlab::cli {
namespace {

namespace fs = std::filesystem;

std::vector<FlagSpec> AblateFlags() {
  return {{"jobs", "runs side by side (default 1)"},
          {"threads",
           "threads for the whole study, split evenly between the --jobs runs "
           "(default: OMP_NUM_THREADS or all cores)"},
          {"dry_run",
           "list the runs and what would happen to each (run, resume, rerun, skip); "
           "start nothing",
           false},
          {"runs_dir",
           "where the study directory goes (default: the base config's "
           "experiment.runs_dir, usually runs)"},
          {"seeds", "comma-separated seeds replacing the study's (e.g. 1 for a first look)"}};
}

absl::StatusOr<std::vector<int64_t>> ParseSeeds(const std::string& text) {
  std::vector<int64_t> seeds;
  for (const absl::string_view part : absl::StrSplit(text, ',', absl::SkipWhitespace())) {
    int64_t seed;
    if (!absl::SimpleAtoi(part, &seed) || seed < 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("--seeds: '", std::string(part), "' is not a non-negative integer"));
    }
    seeds.push_back(seed);
  }
  if (seeds.empty()) return absl::InvalidArgumentError("--seeds needs at least one seed");
  return seeds;
}

int DefaultThreads() {
  if (const char* env = std::getenv("OMP_NUM_THREADS")) {
    int threads;
    if (absl::SimpleAtoi(env, &threads) && threads > 0) return threads;
  }
  return std::max(1u, std::thread::hardware_concurrency());
}

// The plan with only rank `rank`'s share of the runs still to do (the others skipped):
// the j-th run to do goes to rank j % ranks.
experiments::StudyPlan RunsOfRank(const experiments::StudyPlan& plan, int rank, int ranks) {
  experiments::StudyPlan mine = plan;
  int to_do = 0;
  for (experiments::PlannedRun& run : mine.runs) {
    if (run.action == experiments::RunAction::kSkip) continue;
    if (to_do++ % ranks != rank) run.action = experiments::RunAction::kSkip;
  }
  return mine;
}

std::string FormatMetrics(const std::vector<std::string>& names, const std::string& run_dir) {
  absl::StatusOr<experiments::RunResult> result =
      experiments::ReadRunResult((fs::path(run_dir) / experiments::kRunResultFile).string());
  if (!result.ok()) return "";
  std::vector<std::string> parts;
  for (const std::string& name : names) {
    const auto it = result->test_metrics.find(name);
    if (it != result->test_metrics.end())
      parts.push_back(absl::StrFormat("%s %.4g", name, it->second));
  }
  return absl::StrJoin(parts, "  ");
}

absl::Status RunAblate(const std::vector<std::string>& args) {
  ASSIGN_OR_RETURN(const ParsedFlags flags, ParseFlags(args, AblateFlags()));
  if (flags.positional().size() != 1) {
    return absl::InvalidArgumentError("expected one study file (see attnlab ablate --help)");
  }
  ASSIGN_OR_RETURN(const int64_t jobs, flags.GetInt("jobs", 1));
  ASSIGN_OR_RETURN(const int64_t threads, flags.GetInt("threads", DefaultThreads()));
  if (jobs < 1 || jobs > 256) {
    return absl::InvalidArgumentError(absl::StrCat("--jobs must be in [1, 256], got ", jobs));
  }
  if (threads < 1 || threads > 1024) {
    return absl::InvalidArgumentError(
        absl::StrCat("--threads must be in [1, 1024], got ", threads));
  }
  experiments::PlanOptions plan_options;
  plan_options.runs_dir = flags.Get("runs_dir");
  if (flags.Has("seeds")) {
    ASSIGN_OR_RETURN(plan_options.seeds, ParseSeeds(flags.Get("seeds")));
  }
  ASSIGN_OR_RETURN(const experiments::Study study, experiments::LoadStudy(flags.positional()[0]));
  ASSIGN_OR_RETURN(const experiments::StudyPlan plan, experiments::PlanStudy(study, plan_options));

  // Under mpirun the ranks share the study (on one machine or many, with the runs
  // directory on a shared file system): rank r takes the r-th, (r + R)-th, ... run still to
  // do, each still its own process; rank 0 writes the summary once every rank is done.
  // Collectives wait without limit: one rank's runs may take hours longer than another's.
  ASSIGN_OR_RETURN(const std::unique_ptr<distributed::Communicator> communicator,
                   distributed::Communicator::Create());
  const int rank = communicator->rank(), ranks = communicator->size();
  const experiments::StudyPlan my_plan = ranks > 1 ? RunsOfRank(plan, rank, ranks) : plan;
  const std::string rank_prefix = ranks > 1 ? absl::StrFormat("rank %d/%d ", rank, ranks) : "";

  experiments::SchedulerOptions options;
  options.executable = fs::read_symlink("/proc/self/exe").string();
  options.jobs = static_cast<int>(jobs);
  options.threads_per_run = static_cast<int>(std::max<int64_t>(1, threads / jobs));

  size_t to_do = 0;
  std::map<experiments::RunAction, int> counts;
  for (const experiments::PlannedRun& run : plan.runs) {
    ++counts[run.action];
    if (run.action != experiments::RunAction::kSkip) ++to_do;
  }
  size_t my_to_do = 0;  // this rank's share
  for (const experiments::PlannedRun& run : my_plan.runs) {
    my_to_do += run.action != experiments::RunAction::kSkip;
  }
  if (rank == 0) {
    std::printf("study %s (%s): %zu cells x %zu seeds = %zu runs in %s\n", plan.study.name.c_str(),
                plan.study.path.c_str(), plan.cells.size(), plan.study.seeds.size(),
                plan.runs.size(), plan.study_dir.c_str());
    std::printf("to run %d, resume %d, rerun %d, skip %d (finished); %d job%s x %d thread%s\n",
                counts[experiments::RunAction::kRun], counts[experiments::RunAction::kResume],
                counts[experiments::RunAction::kRerun], counts[experiments::RunAction::kSkip],
                options.jobs, options.jobs == 1 ? "" : "s", options.threads_per_run,
                options.threads_per_run == 1 ? "" : "s");
    if (ranks > 1) std::printf("shared by %d ranks\n", ranks);
  }

  if (flags.Has("dry_run") && rank == 0) {
    size_t width = 4;
    for (const experiments::Cell& cell : plan.cells) width = std::max(width, cell.name.size());
    std::printf("\n  %-*s  %-5s %-7s %s\n", static_cast<int>(width), "cell", "seed", "action",
                "why");
    for (const experiments::PlannedRun& run : plan.runs) {
      std::printf("  %-*s  %-5lld %-7s %s\n", static_cast<int>(width),
                  plan.cells[run.cell].name.c_str(), static_cast<long long>(run.seed),
                  experiments::RunActionName(run.action), run.reason.c_str());
    }
    for (const experiments::PlannedRun& run : plan.runs) {
      if (run.action == experiments::RunAction::kSkip) continue;
      std::printf(
          "\nthe first run's command (its run spec, the resolved config, is written to %s when "
          "it starts):\n  %s\n",
          experiments::RunSpecPath(run).c_str(),
          absl::StrJoin(experiments::TrainCommand(run, options), " ").c_str());
      break;
    }
    std::printf("\ndry run: nothing was started\n");
  }
  if (flags.Has("dry_run")) return absl::OkStatus();

  // One runner per study: a second one would start the same runs again.
  std::error_code error;
  fs::create_directories(plan.study_dir, error);
  if (error) return absl::InternalError(absl::StrCat(plan.study_dir, ": ", error.message()));
  std::optional<experiments::RunDirectoryLock> study_lock;
  if (rank == 0) {
    absl::StatusOr<experiments::RunDirectoryLock> lock =
        experiments::RunDirectoryLock::Acquire(plan.study_dir);
    if (!lock.ok()) return lock.status();
    study_lock.emplace(*std::move(lock));
  }
  // Ctrl-C, SIGTERM and SIGHUP request a stop (framework/core/stop_request.h), which the
  // scheduler passes on to the running trainers.
  const StopRequestScope listen_for_stop_requests;
  options.stop_requested = [] { return StopRequested(); };
  size_t started = 0;
  std::map<size_t, size_t> ordinal;  // plan index -> 1-based position among this invocation's runs
  auto label = [&](size_t index, const experiments::PlannedRun& run) {
    return absl::StrFormat("%s[%*d/%d] %s seed %d", rank_prefix,
                           static_cast<int>(absl::StrCat(my_to_do).size()), ordinal[index],
                           my_to_do, plan.cells[run.cell].name, run.seed);
  };
  options.on_start = [&](size_t index, const experiments::PlannedRun& run) {
    ordinal[index] = ++started;
    std::printf("%s: %s%s -> %s/train.log\n", label(index, run).c_str(),
                experiments::RunActionName(run.action),
                run.action == experiments::RunAction::kRun
                    ? ""
                    : absl::StrCat(" (", run.reason, ")").c_str(),
                run.run_dir.c_str());
    std::fflush(stdout);
  };
  options.on_end = [&](size_t index, const experiments::PlannedRun& run,
                       const experiments::RunOutcome& outcome) {
    if (outcome.status == experiments::RunStatus::kFinished) {
      std::printf("%s: finished in %.1f s: %s\n", label(index, run).c_str(), outcome.seconds,
                  FormatMetrics(plan.study.metrics, run.run_dir).c_str());
    } else {
      std::printf("%s: %s after %.1f s%s%s\n", label(index, run).c_str(),
                  experiments::RunStatusName(outcome.status), outcome.seconds,
                  outcome.message.empty() ? "" : ": ", outcome.message.c_str());
    }
    std::fflush(stdout);
  };
  const std::vector<experiments::RunOutcome> outcomes = experiments::ExecuteStudy(my_plan, options);

  // Every rank's counts, summed: also the point where rank 0 knows all runs are done.
  float counts_of_ranks[2] = {0.0f, 0.0f};  // failed, unfinished
  for (const experiments::RunOutcome& outcome : outcomes) {
    counts_of_ranks[0] += outcome.status == experiments::RunStatus::kFailed;
    counts_of_ranks[1] += outcome.status == experiments::RunStatus::kInterrupted ||
                          outcome.status == experiments::RunStatus::kNotStarted;
  }
  RETURN_IF_ERROR(communicator->AllReduce(counts_of_ranks, distributed::ReduceOp::kSum));
  const int failed = static_cast<int>(counts_of_ranks[0]);
  const int unfinished = static_cast<int>(counts_of_ranks[1]);
  if (rank == 0) {
    ASSIGN_OR_RETURN(const std::string markdown, experiments::WriteStudyOutputs(plan));
    std::printf("\n%s\nwrote %s/summary.md, summary.csv and report.html\n", markdown.c_str(),
                plan.study_dir.c_str());
  }
  if (StopRequested()) {
    return absl::CancelledError(absl::StrCat("interrupted: ", unfinished,
                                             " runs left; rerun the same command to continue"));
  }
  if (failed > 0) {
    return absl::InternalError(
        absl::StrCat(failed, " of ", plan.runs.size(),
                     " runs failed (see their train.log); rerun the same command to retry them"));
  }
  return absl::OkStatus();
}

const std::string kUsage = absl::StrCat(
    "usage: attnlab ablate STUDY.toml [flags]\n\n"
    "Runs an ablation study: every cell x seed of STUDY (see\n"
    "experiments/recipes/studies/README.md) is a training run of its own process, started\n"
    "from its run spec (its resolved config, written to D/config.toml):\n"
    "`attnlab train D/config.toml --run_dir D` with D = <runs_dir>/<study>/<cell>/seed-<n>,\n"
    "logging to D/train.log. The study is checked\n"
    "completely (keys, values, metrics, names) before anything runs. Finished runs are\n"
    "skipped, interrupted ones resumed from their checkpoint, so rerunning the command\n"
    "continues a study. Ctrl-C stops it cleanly (the running runs save a checkpoint).\n"
    "At the end it prints and writes <runs_dir>/<study>/summary.md and summary.csv (mean ±\n"
    "sample std over seeds of each metric, difference to the base cell, parameters, wall\n"
    "time, tokens/s) and report.html (the cells' validation curves overlaid).\n\nflags:\n",
    FlagsHelp(AblateFlags()),
    "\nexamples:\n"
    "  attnlab ablate experiments/recipes/studies/attention_variants.toml --dry_run\n"
    "  attnlab ablate experiments/recipes/studies/attention_variants.toml --jobs 2 --threads 2\n"
    "  mpirun -np 8 --hostfile H attnlab ablate STUDY --jobs 1 --threads 2 --runs_dir /shared\n"
    "    (the ranks share the runs; rank 0 writes the summary)\n");

ATTNLAB_COMMAND(ablate, "ablate", "run an ablation study (cells x seeds) and tabulate it",
                kUsage.c_str(), RunAblate);

}  // namespace
}  // namespace attnlab::cli
