// Data-parallel training end to end: `mpirun -np 2 attnlab train` against one process on
// the same config (train.batch_tokens is the global budget, so both take the same
// batches), with dropout on. Two ranks must train what one process trains, up to the
// order of floating-point additions; the same N twice must be bit-identical; a run
// stopped on 2 ranks must resume on 1; and a rank that dies must end the job quickly
// with a line naming it, leaving a checkpoint that resumes.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "framework/io/safetensors.h"
#include "framework/ops/mixed_precision.h"
#include "gtest/gtest.h"
#include "tests/experiments/cli_runner.h"
#include "tests/support/mpirun_environment.h"
#include "tests/support/temp_dir.h"
#include "tests/support/tensor_bytes.h"
#include "tests/support/tiny_config.h"

namespace attnlab::experiments {
namespace {

namespace fs = std::filesystem;
using testing::CliOutput;

class DataParallelTest : public attnlab::testing::TempDirTest {
 protected:
  void SetUp() override {
    TempDirTest::SetUp();
    std::ofstream(directory_ / "tiny.toml") << testing::TinyConfigToml({});
  }
  // attnlab train tiny.toml on `ranks` ranks (0: a plain process, no mpirun).
  CliOutput Train(int ranks, const std::string& run_dir, const std::string& flags) {
    const std::string attnlab = std::string("'") + ATTNLAB_CLI + "' train tiny.toml --quiet " +
                                "--threads 1 --run_dir " + run_dir + " " + flags + " < /dev/null";
    if (ranks == 0) return testing::RunShell(directory_, attnlab);
    return testing::RunShell(directory_, attnlab::testing::MpirunEnvironment(directory_ / "mpi") +
                                             "mpirun --oversubscribe -np " + std::to_string(ranks) +
                                             " " + attnlab);
  }
  NamedTensors Checkpoint(const std::string& run_dir) {
    absl::StatusOr<SafetensorsContents> contents =
        ReadSafetensors((directory_ / run_dir / "checkpoint_last.safetensors").string());
    EXPECT_TRUE(contents.ok()) << contents.status();
    return contents.ok() ? contents->tensors : NamedTensors();
  }
  std::vector<double> TrainLosses(const std::string& run_dir) {
    std::vector<double> losses;
    std::ifstream metrics(directory_ / run_dir / "metrics.jsonl");
    for (std::string line; std::getline(metrics, line);) {
      const nlohmann::json record = nlohmann::json::parse(line);
      if (record["kind"] == "train") losses.push_back(record["loss"].get<double>());
    }
    return losses;
  }
};

// Every element of every tensor whose name passes `compared` within `tolerance` of the
// other's, relative to max(|value|, 1).
void ExpectClose(const NamedTensors& expected, const NamedTensors& actual, double tolerance,
                 const std::function<bool(const std::string&)>& compared) {
  ASSERT_EQ(expected.size(), actual.size());
  int checked = 0;
  for (size_t t = 0; t < expected.size(); ++t) {
    const auto& [name, tensor] = expected[t];
    ASSERT_EQ(actual[t].first, name);
    if (tensor.dtype() != DType::kF32 || !compared(name)) continue;
    ++checked;
    const std::vector<float> a = tensor.ToFloats(), b = actual[t].second.ToFloats();
    for (size_t i = 0; i < a.size(); ++i) {
      ASSERT_LE(std::abs(a[i] - b[i]), tolerance * std::max(1.0f, std::abs(a[i])))
          << name << "[" << i << "]: " << a[i] << " vs " << b[i];
    }
  }
  EXPECT_GT(checked, 10);
}

void ExpectSameLosses(const std::vector<double>& a, const std::vector<double>& b) {
  ASSERT_EQ(a.size(), b.size());
  ASSERT_FALSE(a.empty());
  for (size_t i = 0; i < a.size(); ++i) EXPECT_NEAR(a[i], b[i], 1e-6 * std::abs(a[i])) << i;
}

// SGD: every parameter, momentum buffer and moving average of a weight (train.ema_decay;
// on 2 ranks one loop over the parameters' arena) within 1e-6 after 5 steps, Transformer
// and RNN; rank 0 writes the step and EMA checkpoints.
TEST_F(DataParallelTest, TwoRanksTrainWhatOneProcessTrains) {
  for (const std::string model : {"transformer", "rnn"}) {
    const std::string flags = "--set model.type=" + model +
                              " --set train.optimizer=sgd --set train.lr=0.05 "
                              "--set train.max_steps=5 --set train.log_every=1 "
                              "--set train.ema_decay=0.9 --set train.keep_last=1";
    const CliOutput one = Train(0, model + "-one", flags);
    ASSERT_EQ(one.exit_code, 0) << one.err;
    const CliOutput two = Train(2, model + "-two", flags);
    ASSERT_EQ(two.exit_code, 0) << two.err;
    ExpectSameLosses(TrainLosses(model + "-one"), TrainLosses(model + "-two"));
    const NamedTensors two_ranks = Checkpoint(model + "-two");
    ExpectClose(Checkpoint(model + "-one"), two_ranks, 1e-6,
                [](const std::string&) { return true; });
    EXPECT_TRUE(std::any_of(two_ranks.begin(), two_ranks.end(),
                            [](const auto& named) { return named.first.rfind("ema.", 0) == 0; }));
    for (const char* file : {"checkpoint_step_5.safetensors", "checkpoint_ema.safetensors"}) {
      EXPECT_TRUE(fs::exists(directory_ / (model + "-two") / file)) << file;
    }
  }
}

// Adam divides each gradient by its own running scale, so a parameter whose true gradient
// is zero gets its rounding noise amplified to full-size steps: the key projections'
// biases (softmax is invariant to a bias added to every key). Those differ between 1 and
// 2 ranks as between two summation orders in one process; every other parameter agrees.
TEST_F(DataParallelTest, WithAdamEveryParameterButTheKeyBiasesAgrees) {
  const std::string flags = "--set train.max_steps=5 --set train.log_every=1";
  ASSERT_EQ(Train(0, "one", flags).exit_code, 0);
  ASSERT_EQ(Train(2, "two", flags).exit_code, 0);
  ExpectSameLosses(TrainLosses("one"), TrainLosses("two"));
  ExpectClose(Checkpoint("one"), Checkpoint("two"), 1e-5, [](const std::string& name) {
    return name.find("k_proj.bias") == std::string::npos;
  });
}

// bf16 mixed precision shards the same way; its matmuls round their inputs, and the
// ranks' matmuls see fewer rows, so the losses agree to bf16's precision, not float's.
TEST_F(DataParallelTest, MixedPrecisionTrainsAlikeOnTwoRanks) {
  if (!CheckMatmulInputDType(DType::kBF16).ok()) GTEST_SKIP() << "no native bf16 on this CPU";
  const std::string flags =
      "--set train.dtype=bf16 --set train.max_steps=10 --set train.log_every=1";
  ASSERT_EQ(Train(0, "one", flags).exit_code, 0);
  const CliOutput two = Train(2, "two", flags);
  ASSERT_EQ(two.exit_code, 0) << two.err;
  const std::vector<double> one_losses = TrainLosses("one"), two_losses = TrainLosses("two");
  ASSERT_EQ(one_losses.size(), two_losses.size());
  for (size_t i = 0; i < one_losses.size(); ++i) {
    EXPECT_NEAR(one_losses[i], two_losses[i], 2e-3 * one_losses[i]) << "step " << i + 1;
  }
}

// --profile on 2 ranks: rank 0's tables end with every rank's communication, and the
// Chrome trace has one communication track per rank with an all_reduce span per collective.
TEST_F(DataParallelTest, TheProfileShowsEveryRanksCommunication) {
  const CliOutput two = Train(2, "profiled", "--profile");
  ASSERT_EQ(two.exit_code, 0) << two.err;
  const std::string tables = attnlab::testing::ReadFile(directory_ / "profiled" / "profile.txt");
  EXPECT_NE(tables.find("communication of the profiled steps (data parallel, 2 ranks"),
            std::string::npos)
      << tables;
  const std::string trace = attnlab::testing::ReadFile(directory_ / "profiled" / "trace.json");
  for (const char* track : {"rank 0 communication", "rank 1 communication", "\"all_reduce\""}) {
    EXPECT_NE(trace.find(track), std::string::npos) << track;
  }
}

TEST_F(DataParallelTest, TheSameNumberOfRanksTwiceIsBitIdentical) {
  const std::string flags = "--set train.max_steps=8";
  ASSERT_EQ(Train(2, "first", flags).exit_code, 0);
  ASSERT_EQ(Train(2, "second", flags).exit_code, 0);
  // Every tensor of the checkpoint (parameters, optimizer state, the generator), byte for byte.
  const auto first =
      attnlab::testing::TensorBytesOf(directory_ / "first" / "checkpoint_last.safetensors");
  const auto second =
      attnlab::testing::TensorBytesOf(directory_ / "second" / "checkpoint_last.safetensors");
  ASSERT_TRUE(first.ok() && second.ok());
  EXPECT_EQ(*first, *second);
  EXPECT_EQ(TrainLosses("first"), TrainLosses("second"));
}

// The data order is the global batch's, so a run may resume on another number of ranks.
TEST_F(DataParallelTest, AStopOnTwoRanksResumesOnOne) {
  const std::string flags =
      "--set train.optimizer=sgd --set train.lr=0.05 --set train.max_steps=20";
  const CliOutput stopped = Train(2, "resumed", flags + " --stop_at_step 10");
  ASSERT_EQ(stopped.exit_code, 0) << stopped.err;
  EXPECT_NE(stopped.out.find("stopped after step 10"), std::string::npos) << stopped.out;
  EXPECT_FALSE(fs::exists(directory_ / "resumed" / "result.json"));
  const CliOutput resumed = Train(0, "resumed", flags + " --resume");
  ASSERT_EQ(resumed.exit_code, 0) << resumed.err;
  ASSERT_EQ(Train(0, "straight", flags).exit_code, 0);
  ExpectSameLosses(TrainLosses("straight"), TrainLosses("resumed"));
  ExpectClose(Checkpoint("straight"), Checkpoint("resumed"), 1e-6,
              [](const std::string&) { return true; });
}

// A rank killed mid-run (SIGKILL: no chance to clean up) ends the whole job within
// seconds, with mpirun's line naming the rank; the last checkpoint, written atomically by
// rank 0, loads, and --resume continues from it.
TEST_F(DataParallelTest, AKilledRankEndsTheJobAndTheCheckpointResumes) {
  const std::string attnlab = std::string("'") + ATTNLAB_CLI + "'";
  // Start a long run, wait for its first checkpoint, SIGKILL rank 1, time the job's end.
  const std::string script =
      "export " + attnlab::testing::MpirunEnvironment(directory_ / "mpi") +
      "\n"
      "mpirun --oversubscribe -np 2 " +
      attnlab +
      " train tiny.toml --quiet --threads 1 --run_dir killed --set train.max_steps=100000 "
      "--set train.checkpoint_every=5 --set train.eval_every=100000 < /dev/null 2> job.err &\n"
      "job=$!\n"
      "for i in $(seq 600); do [ -f killed/checkpoint_last.safetensors ] && break; sleep 0.05; "
      "done\n"
      // Rank 1: the process whose environment says so (no pgrep: the fresh root lacks it).
      "for env in /proc/[0-9]*/environ; do\n"
      "  pid=${env#/proc/}; pid=${pid%/environ}\n"
      "  if tr '\\0' '\\n' < $env 2>/dev/null | grep -qx OMPI_COMM_WORLD_RANK=1 &&\n"
      "     tr '\\0' ' ' < /proc/$pid/cmdline 2>/dev/null | grep -q 'run_dir killed'; then\n"
      "    start=$(date +%s%N); kill -9 $pid; fi\n"
      "done\n"
      "wait $job; status=$?\n"
      "echo \"status $status milliseconds $(( ($(date +%s%N) - start) / 1000000 ))\"\n";
  std::ofstream(directory_ / "kill.sh") << script;
  const CliOutput killed = testing::RunShell(directory_, "bash kill.sh");
  ASSERT_EQ(killed.exit_code, 0) << killed.err;
  int status = 0, milliseconds = 0;
  ASSERT_EQ(std::sscanf(killed.out.c_str(), "status %d milliseconds %d", &status, &milliseconds), 2)
      << killed.out;
  EXPECT_NE(status, 0);
  EXPECT_LT(milliseconds, 10000) << "the job took " << milliseconds << " ms to end after the kill";
  const std::string job_err = attnlab::testing::ReadFile(directory_ / "job.err");
  EXPECT_NE(job_err.find("process rank 1"), std::string::npos) << job_err;
  EXPECT_NE(job_err.find("signal 9"), std::string::npos) << job_err;

  // The checkpoint is whole, and the run continues from it (here for 5 more steps).
  const absl::StatusOr<SafetensorsContents> checkpoint =
      ReadSafetensors((directory_ / "killed" / "checkpoint_last.safetensors").string());
  ASSERT_TRUE(checkpoint.ok()) << checkpoint.status();
  const int64_t saved_step =
      nlohmann::json::parse(checkpoint->metadata.at("progress"))["step"].get<int64_t>();
  EXPECT_GE(saved_step, 5);
  const CliOutput resumed = Train(0, "killed",
                                  "--set train.max_steps=100000 --set train.checkpoint_every=5 "
                                  "--set train.eval_every=100000 --resume --stop_at_step " +
                                      std::to_string(saved_step + 5));
  ASSERT_EQ(resumed.exit_code, 0) << resumed.err;
  EXPECT_NE(resumed.out.find("stopped after step " + std::to_string(saved_step + 5)),
            std::string::npos)
      << resumed.out;
}

}  // namespace
}  // namespace attnlab::experiments
