// `attnlab profile CONFIG`: profiles training steps of the model and data a config
// describes (its objective, experiments/trainer/objective.h), as the trainer runs them,
// and writes the tables and a Chrome trace.
#include <cstdio>
#include <filesystem>

#include "absl/strings/str_cat.h"
#include "experiments/config/config.h"
#include "experiments/trainer/objective.h"
#include "experiments/trainer/train_step.h"
#include "framework/core/error.h"
#include "framework/ops/mixed_precision.h"
#include "framework/optim/clip.h"
#include "framework/parallel/parallel_for.h"
#include "framework/profiler/profile_files.h"
#include "framework/profiler/profiler.h"
#include "framework/random/generator.h"
#include "tools/cli/command.h"
#include "tools/cli/flags.h"

namespace attnlab::cli {
namespace {

std::vector<FlagSpec> ProfileFlags() {
  return {{"set", "override a config key: table.key=value", true, true},
          {"steps", "training steps to profile (default 10)"},
          {"warmup", "unprofiled steps first, to fill caches (default 3)"},
          {"out", "directory for profile.txt and trace.json (default: profile)"},
          ThreadsFlag()};
}

absl::Status RunProfile(const std::vector<std::string>& args) {
  ASSIGN_OR_RETURN(const ParsedFlags flags, ParseFlags(args, ProfileFlags()));
  if (flags.positional().size() != 1) {
    return absl::InvalidArgumentError("expected one config file (see attnlab profile --help)");
  }
  ASSIGN_OR_RETURN(const int64_t steps, flags.GetInt("steps", 10));
  ASSIGN_OR_RETURN(const int64_t warmup, flags.GetInt("warmup", 3));
  if (steps < 1 || warmup < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("--steps must be >= 1 and --warmup >= 0, got ", steps, " and ", warmup));
  }
  std::vector<std::string> overrides = flags.GetAll("set");
  if (flags.Has("threads"))
    overrides.push_back(absl::StrCat("experiment.threads=", flags.Get("threads")));
  ASSIGN_OR_RETURN(const experiments::Config config,
                   experiments::Config::Load(flags.positional()[0], overrides));
  RETURN_IF_ERROR(ApplyThreadsFlag(flags));
  if (config.experiment().threads > 0) SetNumThreads(static_cast<int>(config.experiment().threads));
  const std::string out_dir = flags.Get("out", "profile");
  std::error_code error;
  std::filesystem::create_directories(out_dir, error);
  if (error) return absl::InternalError(absl::StrCat(out_dir, ": ", error.message()));

  // The objective, optimizer, batches and step of the trainer (experiments/trainer/trainer.cc).
  ASSIGN_OR_RETURN(const std::unique_ptr<experiments::Objective> objective,
                   experiments::MakeObjective(config));
  ASSIGN_OR_RETURN(const std::unique_ptr<Optimizer> optimizer, objective->MakeOptimizer(config));
  ManualSeed(static_cast<uint64_t>(config.experiment().seed));
  ASSIGN_OR_RETURN(const auto schedule, objective->MakeSchedule(config, warmup + steps));
  ASSIGN_OR_RETURN(const DType matmul_inputs, experiments::MatmulInputDTypeOf(config));
  const MixedPrecision precision(matmul_inputs);
  const std::vector<std::vector<int64_t>> plan = objective->EpochPlan(0);
  if (plan.empty()) return absl::InvalidArgumentError("the training split has no batches");
  const int64_t accumulation = config.train().accumulation;
  const double clip_norm = config.train().clip_norm;
  size_t next = 0;
  auto next_batch = [&] { return plan[next++ % plan.size()]; };
  objective->module().Train();
  auto train_step = [&](int64_t step) {
    experiments::ForwardBackward(*objective, accumulation, next_batch);
    if (clip_norm > 0) ClipGradNorm(optimizer->parameters(), clip_norm);
    profiler::MarkerScope profile("optimizer.step");
    optimizer->Step(schedule->Rate(step));
    optimizer->ZeroGrad();
  };

  for (int64_t step = 1; step <= warmup; ++step) train_step(step);
  profiler::Start();
  for (int64_t step = warmup + 1; step <= warmup + steps; ++step) {
    profiler::MarkerScope profile(profiler::InternName(absl::StrCat("step ", step)));
    train_step(step);
  }
  const profiler::Recording recording = profiler::Stop();
  ASSIGN_OR_RETURN(const std::string tables,
                   profiler::WriteProfileFiles(recording, steps, out_dir));
  std::printf("%s\n", tables.c_str());
  const std::filesystem::path dir(out_dir);
  std::printf("tables: %s\ntrace:  %s  (open in https://ui.perfetto.dev or chrome://tracing)\n",
              (dir / "profile.txt").c_str(), (dir / "trace.json").c_str());
  return absl::OkStatus();
}

const std::string kUsage = absl::StrCat(
    "usage: attnlab profile CONFIG [flags]\n\n"
    "Builds the model and data of CONFIG as `attnlab train` does, runs --warmup training\n"
    "steps (forward, backward, optimizer step), then profiles --steps more: prints the time\n"
    "per op (forward and backward separately), per layer and per thread, and writes them to\n"
    "OUT/profile.txt with a Chrome trace OUT/trace.json (framework/profiler/README.md).\n\n"
    "flags:\n",
    FlagsHelp(ProfileFlags()));

ATTNLAB_COMMAND(profile, "profile", "profile training steps: op, layer and thread tables, trace",
                kUsage.c_str(), RunProfile);

}  // namespace
}  // namespace attnlab::cli
