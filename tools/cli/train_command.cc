// `attnlab train CONFIG`: trains the experiment a config describes.
#include <cstdio>
#include <cstring>
#include <filesystem>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "experiments/config/config.h"
#include "experiments/trainer/trainer.h"
#include "framework/core/error.h"
#include "framework/core/stop_request.h"
#include "framework/distributed/communicator.h"
#include "tools/cli/command.h"
#include "tools/cli/flags.h"

namespace attnlab::cli {
namespace {

std::vector<FlagSpec> TrainFlags() {
  return {{"set", "override a config key: table.key=value", true, true},
          {"run_dir", "run directory (default: <runs_dir>/<experiment>/seed-<seed>)"},
          {"resume", "continue the run in the run directory from its last checkpoint", false},
          {"seed", "shorthand for --set experiment.seed=N"},
          {"quiet", "no progress output", false},
          {"profile",
           "profile training steps 11-20 (or the second half of a shorter run); writes "
           "profile.txt and trace.json into the run directory",
           false},
          {"stop_at_step",
           "stop after this step as Ctrl-C would (checkpoint saved; continue with --resume, "
           "with any number of ranks)"},
          ThreadsFlag()};
}

absl::Status RunTrain(const std::vector<std::string>& args) {
  ASSIGN_OR_RETURN(const ParsedFlags flags, ParseFlags(args, TrainFlags()));
  if (flags.positional().size() != 1) {
    return absl::InvalidArgumentError("expected one config file (see attnlab train --help)");
  }
  std::vector<std::string> overrides = flags.GetAll("set");
  if (flags.Has("seed")) overrides.push_back(absl::StrCat("experiment.seed=", flags.Get("seed")));
  if (flags.Has("threads"))
    overrides.push_back(absl::StrCat("experiment.threads=", flags.Get("threads")));
  ASSIGN_OR_RETURN(const experiments::Config config,
                   experiments::Config::Load(flags.positional()[0], overrides));
  RETURN_IF_ERROR(ApplyThreadsFlag(flags));
  experiments::RunOptions options;
  options.run_dir = flags.Get("run_dir");
  if (options.run_dir.empty()) {
    // The default directory; a new run never reuses an occupied one (seed-1, seed-1.2, ...).
    const std::string base = experiments::DefaultRunDirectory(config);
    options.run_dir = base;
    for (int attempt = 2; !flags.Has("resume") && std::filesystem::exists(options.run_dir);
         ++attempt) {
      options.run_dir = absl::StrCat(base, ".", attempt);
    }
  }
  options.resume = flags.Has("resume");
  options.show_progress = !flags.Has("quiet");
  options.profile = flags.Has("profile");
  ASSIGN_OR_RETURN(options.stop_at_step, flags.GetInt("stop_at_step", 0));
  if (options.stop_at_step < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("--stop_at_step must be a positive step, got ", options.stop_at_step));
  }
  // Under mpirun: the job's ranks train one model (data parallel); else one process. A
  // collective that waits longer than this for a peer (one that hangs, not one that dies:
  // mpirun ends the job then) fails with a line naming the rank.
  ASSIGN_OR_RETURN(const std::unique_ptr<distributed::Communicator> communicator,
                   distributed::Communicator::Create({.collective_timeout = absl::Minutes(30)}));
  if (communicator->size() > 1) options.communicator = communicator.get();
  absl::StatusOr<experiments::TrainResult> trained = experiments::Train(config, options);
  if (!trained.ok() && communicator->size() > 1) {
    return absl::Status(trained.status().code(),
                        absl::StrCat("rank ", communicator->rank(), " of ", communicator->size(),
                                     ": ", trained.status().message()));
  }
  ASSIGN_OR_RETURN(const experiments::TrainResult result, std::move(trained));
  if (communicator->rank() != 0) return absl::OkStatus();  // rank 0 reports
  if (result.stopped_at_step) {
    std::printf("run: %s stopped after step %lld (--stop_at_step); continue with --resume\n",
                result.run_dir.c_str(), static_cast<long long>(result.steps));
    return absl::OkStatus();
  }
  if (result.interrupted) {
    // Also with --quiet: the user (or a script) must learn where the run can continue.
    std::fprintf(stderr,
                 "attnlab train: stopped by SIG%s at step %lld; saved "
                 "%s/checkpoint_last.safetensors (continue with --resume)\n",
                 sigabbrev_np(StopSignal()), static_cast<long long>(result.steps),
                 result.run_dir.c_str());
    return absl::OkStatus();  // main exits 128 + the signal's number
  }
  if (result.already_finished) {
    std::printf("run: %s is finished (%lld steps, result.json); nothing to resume\n",
                result.run_dir.c_str(), static_cast<long long>(result.steps));
    return absl::OkStatus();
  }
  std::printf("run: %s  (%lld steps, %s of training)\n", result.run_dir.c_str(),
              static_cast<long long>(result.steps),
              absl::StrFormat("%.1f s", result.train_seconds).c_str());
  for (const auto& [name, value] : result.test_metrics)
    std::printf("test %-22s %.4f\n", name.c_str(), value);
  std::printf("report: %s/report.html\n", result.run_dir.c_str());
  return absl::OkStatus();
}

const std::string kUsage = absl::StrCat(
    "usage: attnlab train CONFIG [flags]\n\n"
    "Trains the model of CONFIG (a TOML file, see experiments/CONFIG.md) on its task: shows\n"
    "progress, evaluates on the validation split every train.eval_every steps, keeps the\n"
    "best and last checkpoints, and at the end scores the best checkpoint on the test split\n"
    "and writes report.html. Ctrl-C (or SIGTERM, SIGHUP) saves a checkpoint and stops with\n"
    "exit code 130 (143, 129); --resume continues. A run directory is used by one process\n"
    "at a time.\n\n"
    "Under mpirun (mpirun -np N [--hostfile H] attnlab train CONFIG ...) the N ranks train\n"
    "one model: each takes its share of every batch, gradients are summed over ranks, and\n"
    "rank 0 writes the run directory (which every rank reads on --resume).\n\nflags:\n",
    FlagsHelp(TrainFlags()));

ATTNLAB_COMMAND(train, "train", "train an experiment from its config", kUsage.c_str(), RunTrain);

}  // namespace
}  // namespace attnlab::cli
