// `attnlab ablate` end to end: a tiny study (two cells x two seeds of a 20-step copy
// model) through the binary — dry run, the run itself with its summary files, a rerun
// that skips everything, Ctrl-C and resume, a failing cell, and a bad study rejected
// with its line before anything runs.
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>

#include "experiments/trainer/run_directory_lock.h"
#include "gtest/gtest.h"
#include "tests/experiments/cli_runner.h"
#include "tests/support/file_contents.h"
#include "tests/support/mpirun_environment.h"
#include "tests/support/temp_dir.h"
#include "tests/support/tiny_config.h"

extern char** environ;

namespace attnlab::experiments {
namespace {

namespace fs = std::filesystem;
using attnlab::testing::ReadFile;
using testing::CliOutput;

using testing::TinyConfigToml;

class AblationCliTest : public attnlab::testing::TempDirTest {
 protected:
  void SetUp() override {
    std::ofstream(directory_ / "tiny.toml") << TinyConfigToml(testing::kShortRun);
    std::ofstream(directory_ / "study.toml") << testing::kTinyStudy;
  }

  // `attnlab ARGUMENTS` in the test directory.
  CliOutput Run(const std::string& arguments) { return testing::RunAttnlab(directory_, arguments); }
};

// Under mpirun the ranks share the runs (each still its own `attnlab train` process, a
// plain one: it must not take itself for a rank) and rank 0 writes the one summary.
TEST_F(AblationCliTest, RanksOfAnMpiJobShareTheRunsAndRankZeroSummarises) {
  const CliOutput output =
      testing::RunShell(directory_, attnlab::testing::MpirunEnvironment(directory_ / "mpi") +
                                        "mpirun --oversubscribe -np 2 '" + ATTNLAB_CLI +
                                        "' ablate study.toml --jobs 1 --threads 1 < /dev/null");
  ASSERT_EQ(output.exit_code, 0) << output.out << output.err;
  for (const std::string cell : {"scaled_dot", "dot"}) {
    for (const std::string seed : {"1", "2"}) {
      const fs::path run = directory_ / "runs" / "tiny" / cell / ("seed-" + seed);
      EXPECT_TRUE(fs::exists(run / "result.json")) << run;
    }
  }
  // Two runs each, and one summary, by rank 0.
  for (const std::string rank :
       {"rank 0/2 [1/2]", "rank 0/2 [2/2]", "rank 1/2 [1/2]", "rank 1/2 [2/2]"}) {
    EXPECT_NE(output.out.find(rank), std::string::npos) << rank << " in\n" << output.out;
  }
  EXPECT_NE(output.out.find("shared by 2 ranks"), std::string::npos) << output.out;
  size_t summaries = 0;
  for (size_t at = output.out.find("wrote runs/tiny/summary.md"); at != std::string::npos;
       at = output.out.find("wrote runs/tiny/summary.md", at + 1)) {
    ++summaries;
  }
  EXPECT_EQ(summaries, 1u) << output.out;
  const std::string summary = ReadFile(directory_ / "runs" / "tiny" / "summary.md");
  EXPECT_NE(summary.find("dot"), std::string::npos) << summary;
}

TEST_F(AblationCliTest, DryRunListsTheRunsAndStartsNothing) {
  const CliOutput output = Run("ablate study.toml --dry_run --jobs 2 --threads 2");
  ASSERT_EQ(output.exit_code, 0) << output.err;
  EXPECT_NE(output.out.find("study tiny (study.toml): 2 cells x 2 seeds = 4 runs in runs/tiny"),
            std::string::npos)
      << output.out;
  EXPECT_NE(output.out.find("to run 4, resume 0, rerun 0, skip 0 (finished); 2 jobs x 1 thread"),
            std::string::npos)
      << output.out;
  EXPECT_NE(output.out.find("  dot         2     run     not started"), std::string::npos)
      << output.out;
  // A run starts from its spec (its resolved config), not from --set flags.
  EXPECT_NE(output.out.find("train runs/tiny/scaled_dot/seed-1/config.toml --run_dir "
                            "runs/tiny/scaled_dot/seed-1 --threads 1\n"),
            std::string::npos)
      << output.out;
  EXPECT_EQ(output.out.find("--set"), std::string::npos) << output.out;
  EXPECT_FALSE(fs::exists(directory_ / "runs"));
}

TEST_F(AblationCliTest, RunsTheStudyWritesItsSummaryAndSkipsItWhenRerun) {
  CliOutput output = Run("ablate study.toml --jobs 2 --threads 2");
  ASSERT_EQ(output.exit_code, 0) << output.out << output.err;
  EXPECT_NE(output.out.find("scaled_dot seed 2: finished in"), std::string::npos) << output.out;
  EXPECT_NE(output.out.find("| **scaled_dot** (base) | 2 |"), std::string::npos) << output.out;
  const fs::path study_dir = directory_ / "runs" / "tiny";
  for (const char* file : {"summary.md", "summary.csv", "report.html"}) {
    EXPECT_TRUE(fs::is_regular_file(study_dir / file)) << file;
  }
  EXPECT_NE(output.out.find(ReadFile(study_dir / "summary.md")), std::string::npos);
  const std::string csv = ReadFile(study_dir / "summary.csv");
  EXPECT_EQ(csv.substr(0, csv.find('\n')),
            "cell,base,seeds_finished,seeds_planned,exact_match_mean,exact_match_std,"
            "exact_match_delta,loss_mean,loss_std,loss_delta,parameters,wall_seconds_mean,"
            "tokens_per_second_mean");
  EXPECT_NE(csv.find("\ndot,false,2,2,"), std::string::npos) << csv;
  for (const char* run : {"scaled_dot/seed-1", "dot/seed-2"}) {
    EXPECT_TRUE(fs::is_regular_file(study_dir / run / "result.json")) << run;
    EXPECT_TRUE(fs::is_regular_file(study_dir / run / "train.log")) << run;
  }
  EXPECT_NE(ReadFile(study_dir / "report.html").find("Validation exact_match"), std::string::npos);

  output = Run("ablate study.toml");
  ASSERT_EQ(output.exit_code, 0) << output.err;
  EXPECT_NE(output.out.find("to run 0, resume 0, rerun 0, skip 4"), std::string::npos)
      << output.out;
  EXPECT_EQ(output.out.find("finished in"), std::string::npos) << output.out;
}

TEST_F(AblationCliTest, CtrlCStopsTheStudyAndARerunResumesIt) {
  // Runs long enough to be caught in the middle.
  std::ofstream(directory_ / "study.toml", std::ios::app)
      << "[set]\ntrain.max_steps = 1000000\ntrain.checkpoint_every = 5\n";
  const std::string out = (directory_ / "stdout").string();
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, out.c_str(),
                                   O_WRONLY | O_CREAT | O_TRUNC, 0666);
  posix_spawn_file_actions_addopen(&actions, STDERR_FILENO, (directory_ / "stderr").c_str(),
                                   O_WRONLY | O_CREAT | O_TRUNC, 0666);
  const std::string study = (directory_ / "study.toml").string();
  const std::string runs = (directory_ / "runs").string();
  const char* argv[] = {ATTNLAB_CLI,  "ablate",    study.c_str(), "--runs_dir",
                        runs.c_str(), "--threads", "1",           nullptr};
  pid_t pid;
  ASSERT_EQ(posix_spawn(&pid, ATTNLAB_CLI, &actions, nullptr, const_cast<char**>(argv), environ),
            0);
  posix_spawn_file_actions_destroy(&actions);
  const fs::path checkpoint =
      directory_ / "runs/tiny/scaled_dot/seed-1/checkpoint_last.safetensors";
  for (int i = 0; i < 500 && !fs::exists(checkpoint); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ASSERT_TRUE(fs::exists(checkpoint));
  // SIGINT to the study alone (a terminal would send it to the runs too): it tells its
  // running run to save and stop, starts nothing more, and says how to continue.
  ::kill(pid, SIGINT);
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 130);  // stopped by SIGINT, after the runs saved
  const std::string printed = ReadFile(out);
  EXPECT_NE(printed.find("scaled_dot seed 1: interrupted after"), std::string::npos) << printed;
  EXPECT_EQ(printed.find("seed 2: run"), std::string::npos) << printed;
  EXPECT_NE(ReadFile(directory_ / "stderr")
                .find("interrupted: 4 runs left; rerun the same command to continue"),
            std::string::npos);
  const CliOutput dry = Run("ablate study.toml --dry_run");
  ASSERT_EQ(dry.exit_code, 0) << dry.err;
  EXPECT_NE(dry.out.find("to run 3, resume 1, rerun 0, skip 0"), std::string::npos) << dry.out;
  EXPECT_NE(dry.out.find("scaled_dot  1     resume  interrupted at step"), std::string::npos)
      << dry.out;
}

TEST_F(AblationCliTest, LockedDirectoriesAreRefusedNamingTheHoldersPid) {
  const std::string pid = "pid " + std::to_string(getpid());
  // A study directory in use by another runner: nothing starts.
  fs::create_directories(directory_ / "runs/tiny");
  {
    absl::StatusOr<RunDirectoryLock> study_lock =
        RunDirectoryLock::Acquire((directory_ / "runs/tiny").string());
    ASSERT_TRUE(study_lock.ok()) << study_lock.status();
    const CliOutput refused = Run("ablate study.toml --runs_dir runs --seeds 1 --threads 1");
    EXPECT_EQ(refused.exit_code, 1);
    EXPECT_NE(refused.err.find(pid), std::string::npos) << refused.err;
    EXPECT_FALSE(fs::exists(directory_ / "runs/tiny/dot"));
  }
  // One run directory in use (say by a trainer started by hand): that run fails, naming
  // the holder, and is left alone; the other runs.
  fs::create_directories(directory_ / "runs/tiny/dot/seed-1");
  absl::StatusOr<RunDirectoryLock> run_lock =
      RunDirectoryLock::Acquire((directory_ / "runs/tiny/dot/seed-1").string());
  ASSERT_TRUE(run_lock.ok()) << run_lock.status();
  const CliOutput output = Run("ablate study.toml --runs_dir runs --seeds 1 --threads 1");
  EXPECT_EQ(output.exit_code, 1);
  EXPECT_NE(output.out.find(pid), std::string::npos) << output.out;
  EXPECT_TRUE(fs::exists(directory_ / "runs/tiny/scaled_dot/seed-1/result.json"));
  EXPECT_FALSE(fs::exists(directory_ / "runs/tiny/dot/seed-1/metrics.jsonl"));
}

TEST_F(AblationCliTest, AFailingCellFailsTheStudyButNotTheOtherRuns) {
  std::ofstream(directory_ / "study.toml", std::ios::app)
      << "[[axis]]\nkey = \"model.heads\"\nvalues = [2, 3]\n";  // 3 does not divide 16
  const CliOutput output = Run("ablate study.toml --seeds 1 --jobs 2 --threads 2");
  EXPECT_EQ(output.exit_code, 1);
  EXPECT_NE(output.out.find("dot+heads-2 seed 1: finished"), std::string::npos) << output.out;
  EXPECT_NE(output.out.find("dot+heads-3 seed 1: failed"), std::string::npos) << output.out;
  EXPECT_EQ(output.err,
            "attnlab ablate: 2 of 4 runs failed (see their train.log); rerun the same command "
            "to retry them\n");
}

TEST_F(AblationCliTest, ABadStudyIsRejectedWithItsLineBeforeAnythingRuns) {
  std::ofstream(directory_ / "study.toml", std::ios::app)
      << "[[axis]]\nkey = \"model.dropout\"\nvalues = [0.1, \"high\"]\n";
  const CliOutput output = Run("ablate study.toml");
  EXPECT_EQ(output.exit_code, 1);
  EXPECT_EQ(output.out, "");
  EXPECT_EQ(output.err, "attnlab ablate: study.toml:13: 'model.dropout' must be a float\n");
  EXPECT_FALSE(fs::exists(directory_ / "runs"));
}

}  // namespace
}  // namespace attnlab::experiments
