// The attnlab binary given what a hostile or careless user gives it (issue 13): sizes
// that overflow or cannot fit in memory, NaN and inf, control characters, sequences
// longer than the model's positions, invalid UTF-8, directories where files go, a step
// budget of zero and checkpoints with non-finite weights or an absurd saved config.
// Each must end in one line on stderr naming the key, file:line or input line, and a
// non-zero exit: never a crash, an internal error, or a silent success.
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "absl/strings/str_replace.h"
#include "framework/io/safetensors.h"
#include "gtest/gtest.h"
#include "tests/experiments/cli_runner.h"
#include "tests/support/temp_dir.h"
#include "tests/support/tiny_config.h"

namespace attnlab::experiments {
namespace {

namespace fs = std::filesystem;
using testing::CliOutput;

// The tiny config, with 50 training examples, 2 steps and model.max_len 64.
const std::vector<std::string> kHostileTiny = {"task.train_size=50", "model.max_len=64",
                                               "train.max_steps=2"};

class HostileInputTest : public ::testing::Test {
 protected:
  // One directory, config and freshly initialised checkpoint for the suite.
  static void SetUpTestSuite() {
    directory_ = new attnlab::testing::ScratchDirectory("hostile");
    std::ofstream(*directory_ / "tiny.toml") << testing::TinyConfigToml(kHostileTiny);
    init_ = new CliOutput(Run("init --config tiny.toml --out init.safetensors"));
  }
  static void TearDownTestSuite() {
    delete directory_;
    delete init_;
  }

  static CliOutput Run(const std::string& arguments) {
    return testing::RunAttnlab(directory_->path(), arguments);
  }
  static CliOutput Shell(const std::string& command_line) {
    return testing::RunShell(directory_->path(), command_line);
  }
  static std::string Attnlab() { return std::string("'") + ATTNLAB_CLI + "'"; }
  static fs::path Path(const std::string& name) { return *directory_ / name; }

  // Exit code 1 (not a signal, not 0), nothing on stdout, one stderr line starting with
  // "attnlab" that is not an internal error and contains every one of `parts`.
  static ::testing::AssertionResult FailsWith(const CliOutput& output,
                                              const std::vector<std::string>& parts) {
    if (output.exit_code != 1) {
      return ::testing::AssertionFailure()
             << "exit code " << output.exit_code << ", stderr: " << output.err;
    }
    if (!output.out.empty()) return ::testing::AssertionFailure() << "stdout: " << output.out;
    if (output.err.rfind("attnlab", 0) != 0 || output.err.back() != '\n' ||
        output.err.find('\n') != output.err.size() - 1 ||
        output.err.find("internal error") != std::string::npos) {
      return ::testing::AssertionFailure() << "not one clear line: '" << output.err << "'";
    }
    for (const std::string& part : parts) {
      if (output.err.find(part) == std::string::npos) {
        return ::testing::AssertionFailure() << "'" << output.err << "' lacks '" << part << "'";
      }
    }
    return ::testing::AssertionSuccess();
  }

  // A copy of the initial checkpoint, changed by `edit`.
  static std::string EditedCheckpoint(const std::string& name,
                                      void (*edit)(SafetensorsContents& contents)) {
    absl::StatusOr<SafetensorsContents> contents =
        ReadSafetensors(Path("init.safetensors").string());
    EXPECT_TRUE(contents.ok()) << contents.status();
    edit(*contents);
    EXPECT_TRUE(WriteSafetensors(Path(name).string(), contents->tensors, contents->metadata).ok());
    return name;
  }

  static attnlab::testing::ScratchDirectory* directory_;
  static CliOutput* init_;
};

attnlab::testing::ScratchDirectory* HostileInputTest::directory_ = nullptr;
CliOutput* HostileInputTest::init_ = nullptr;

TEST_F(HostileInputTest, HugeSizesAreOutOfRangeNotACrash) {
  for (const char* assignment :
       {"model.d_model=9223372036854775807", "model.d_model=2305843009213693952",
        "model.d_model=4611686018427387904", "model.encoder_layers=1000000000",
        "model.d_ff=1000000000", "model.key_size=1000000000", "model.max_len=1000000000000",
        "task.train_size=1000000000000"}) {
    EXPECT_TRUE(FailsWith(Run(std::string("train tiny.toml --quiet --run_dir run --set ") +
                              assignment + " --set model.heads=1"),
                          {"--set", "is out of range"}))
        << assignment;
  }
  EXPECT_FALSE(fs::exists(Path("run") / "metrics.jsonl"));
}

TEST_F(HostileInputTest, AModelTooLargeForMemoryIsRefusedWithTheSizes) {
  EXPECT_TRUE(FailsWith(Run("init --config tiny.toml --out big.safetensors --set "
                            "model.d_model=65536 --set model.heads=1 --set model.d_ff=1048576 "
                            "--set model.encoder_layers=1024"),
                        {"model.d_model = 65536 (--set)", "needs at least", "available"}));
  EXPECT_FALSE(fs::exists(Path("big.safetensors")));
}

TEST_F(HostileInputTest, NanIsInvalidForFloatKeys) {
  EXPECT_TRUE(FailsWith(Run("train tiny.toml --quiet --run_dir run --set train.lr=nan"),
                        {"'train.lr' = nan is not a finite number"}));
  std::ofstream(Path("nan.toml")) << "base = \"tiny.toml\"\n[model]\ndropout = nan\n";
  EXPECT_TRUE(FailsWith(Run("train nan.toml --quiet --run_dir run"),
                        {"nan.toml:3: 'model.dropout' = nan is not a finite number"}));
}

TEST_F(HostileInputTest, DirectoriesAndZeroStepsAreNotSilentlyAccepted) {
  EXPECT_TRUE(FailsWith(Run("train . --quiet --run_dir run"), {"is a directory"}));
  std::ofstream(Path("dot_base.toml")) << "base = \".\"\n";
  EXPECT_TRUE(FailsWith(Run("train dot_base.toml --quiet --run_dir run"),
                        {"dot_base.toml:1", "is a directory"}));
  EXPECT_TRUE(FailsWith(Run("train tiny.toml --quiet --run_dir run --set train.max_steps=0"),
                        {"train.max_steps = 0 (--set)", "no step"}));
  EXPECT_TRUE(FailsWith(Run("evaluate --checkpoint ."), {"."}));
  EXPECT_FALSE(fs::exists(Path("run") / "metrics.jsonl"));
}

TEST_F(HostileInputTest, ControlCharacterInTheExperimentNameIsRejected) {
  std::ofstream(Path("nul.toml")) << "base = \"tiny.toml\"\n[experiment]\nname = \"ab\\u0000cd\"\n";
  EXPECT_TRUE(FailsWith(Run("train nul.toml --quiet"),
                        {"nul.toml:3: 'experiment.name'", "control character"}));
  EXPECT_FALSE(fs::exists(Path("runs")));
}

TEST_F(HostileInputTest, HeadsNotDividingDModelNamesTheKeys) {
  EXPECT_TRUE(FailsWith(Run("train tiny.toml --quiet --run_dir run --set model.heads=3"),
                        {"model.d_model = 16 (tiny.toml:", "model.heads = 3 (--set)"}));
}

TEST_F(HostileInputTest, DataLongerThanMaxLenIsAnErrorBeforeTraining) {
  EXPECT_TRUE(FailsWith(Run("train tiny.toml --quiet --run_dir run --set task.max_length=100 "
                            "--set task.min_length=100"),
                        {"task copy, train example 1: the source is 101 tokens long",
                         "model.max_len = 64 (tiny.toml:"}));
  EXPECT_FALSE(fs::exists(Path("run") / "metrics.jsonl"));
  std::ofstream(Path("data.tsv")) << "ab\tba\n" << std::string(300, 'a') << "\tb\n";
  EXPECT_TRUE(FailsWith(Run("init --config tiny.toml --out files.safetensors --set task.name=files "
                            "--set task.train_path=data.tsv --set task.valid_path=data.tsv "
                            "--set task.test_path=data.tsv"),
                        {"data.tsv:2: the source is 301 tokens long"}));
}

TEST_F(HostileInputTest, DecodeNamesTheInputLineThatIsTooLongOrNotUtf8) {
  ASSERT_EQ(init_->exit_code, 0) << init_->err;
  const std::string long_line = absl::StrReplaceAll(std::string(100, 'x'), {{"x", "1 "}});
  std::ofstream(Path("long.txt")) << "1 2\n" << long_line << "\n";
  EXPECT_TRUE(FailsWith(Run("decode --checkpoint init.safetensors --input long.txt"),
                        {"long.txt:2: the source is 101 tokens long", "model.max_len = 64"}));
  // From standard input each line is answered as it comes: line 1's prediction, an empty
  // line for line 2 and its error on stderr, then the count of bad lines and exit 1.
  const CliOutput piped = Shell("printf '1 2\\n" + long_line + "\\n' | " + Attnlab() +
                                " decode --checkpoint init.safetensors");
  EXPECT_EQ(piped.exit_code, 1);
  EXPECT_EQ(std::count(piped.out.begin(), piped.out.end(), '\n'), 2) << piped.out;
  EXPECT_TRUE(piped.out.ends_with("\n\n")) << piped.out;
  EXPECT_EQ(piped.err.rfind("attnlab decode: stdin:2: the source is 101 tokens long", 0), 0u)
      << piped.err;
  EXPECT_NE(piped.err.find("\nattnlab decode: 1 of 2 input lines were not answered"),
            std::string::npos)
      << piped.err;
  std::ofstream(Path("latin1.txt")) << "1 2\n3 \xe9\n";
  EXPECT_TRUE(FailsWith(Run("decode --checkpoint init.safetensors --input latin1.txt"),
                        {"latin1.txt:2: invalid UTF-8 (byte 3 of the line)"}));
  EXPECT_TRUE(
      FailsWith(Run("decode --checkpoint init.safetensors --input ."), {".: is a directory"}));
  EXPECT_TRUE(FailsWith(Run("decode --checkpoint init.safetensors --max_len 9223372036854775807"),
                        {"--max_len must be in [0, 1048576]"}));
  // Lines that fit decode, one output line each.
  const CliOutput fine =
      Shell("printf '1 2\\n3 4\\n' | " + Attnlab() + " decode --checkpoint init.safetensors");
  EXPECT_EQ(fine.exit_code, 0) << fine.err;
  EXPECT_EQ(std::count(fine.out.begin(), fine.out.end(), '\n'), 2) << fine.out;
}

TEST_F(HostileInputTest, ScoreNamesTheInputLineWithoutATabTooLongOrNotUtf8) {
  ASSERT_EQ(init_->exit_code, 0) << init_->err;
  std::ofstream(Path("no_tab.tsv")) << "1 2\t2 1\n3 4\n";
  EXPECT_TRUE(FailsWith(Run("score --checkpoint init.safetensors --input no_tab.tsv"),
                        {"no_tab.tsv:2: no tab between source and target"}));
  const std::string long_line = absl::StrReplaceAll(std::string(100, 'x'), {{"x", "1 "}});
  std::ofstream(Path("long_target.tsv")) << "1 2\t" << long_line << "\n";
  EXPECT_TRUE(
      FailsWith(Run("score --checkpoint init.safetensors --input long_target.tsv"),
                {"long_target.tsv:1: the target is 101 tokens long", "model.max_len = 64"}));
  std::ofstream(Path("latin1.tsv")) << "1\t3 \xe9\n";
  EXPECT_TRUE(FailsWith(Run("score --checkpoint init.safetensors --input latin1.tsv"),
                        {"latin1.tsv:1: invalid UTF-8 (byte 5 of the line)"}));
  EXPECT_TRUE(
      FailsWith(Run("score --checkpoint init.safetensors --input ."), {".: is a directory"}));
  // Lines that fit are scored, one output line each.
  const CliOutput fine =
      Shell("printf '1 2\\t2 1\\n3\\t\\n' | " + Attnlab() + " score --checkpoint init.safetensors");
  EXPECT_EQ(fine.exit_code, 0) << fine.err;
  EXPECT_EQ(std::count(fine.out.begin(), fine.out.end(), '\n'), 2) << fine.out;
}

TEST_F(HostileInputTest, HugeBeamsAreRefused) {
  ASSERT_EQ(init_->exit_code, 0) << init_->err;
  EXPECT_TRUE(FailsWith(Run("evaluate --checkpoint init.safetensors --beam 1000000"),
                        {"--beam must be in [1, 64]"}));
  EXPECT_TRUE(FailsWith(Run("decode --checkpoint init.safetensors --beam 1000000"),
                        {"--beam must be in [1, 64]"}));
  EXPECT_TRUE(FailsWith(Run("decode --checkpoint init.safetensors --beam 2 --nbest 1000000"),
                        {"--nbest must be in [1, 64]"}));
}

TEST_F(HostileInputTest, CheckpointWithNonFiniteWeightsNamesTheTensors) {
  ASSERT_EQ(init_->exit_code, 0) << init_->err;
  const std::string path = EditedCheckpoint("nan.safetensors", [](SafetensorsContents& contents) {
    for (auto& [name, tensor] : contents.tensors) {
      if (name == "generator.bias") tensor.data<float>()[1] = std::nanf("");
      if (name.ends_with("linear1.weight")) tensor.data<float>()[0] = INFINITY;
    }
  });
  const CliOutput evaluate = Run("evaluate --checkpoint " + path);
  EXPECT_TRUE(
      FailsWith(evaluate, {"nan.safetensors: ", "non-finite weights", "generator.bias (1 of"}));
  EXPECT_TRUE(FailsWith(Run("decode --checkpoint " + path), {"non-finite weights"}));
  EXPECT_TRUE(FailsWith(Run("score --checkpoint " + path), {"non-finite weights"}));
}

TEST_F(HostileInputTest, CheckpointWithAnAbsurdSavedConfigIsRefused) {
  ASSERT_EQ(init_->exit_code, 0) << init_->err;
  const std::string path = EditedCheckpoint("huge.safetensors", [](SafetensorsContents& contents) {
    std::string& config = contents.metadata.at("config");
    config = absl::StrReplaceAll(
        config, {{"d_model = 16", "d_model = 4611686018427387904"}, {"heads = 2", "heads = 1"}});
  });
  EXPECT_TRUE(FailsWith(Run("evaluate --checkpoint " + path),
                        {"huge.safetensors (saved config):", "'model.d_model'", "out of range"}));
  EXPECT_TRUE(FailsWith(Run("decode --checkpoint " + path), {"out of range"}));
}

}  // namespace
}  // namespace attnlab::experiments
