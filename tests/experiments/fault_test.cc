// The fault suite: the attnlab binary under what a hostile world does to a training run
// — many SIGTERM/SIGINT during long steps, SIGKILL at random points, a file-size limit,
// a full disk, two trainers on one run directory, temporaries of killed processes, a
// diverging model. Each case checks what the README promises: no crash, one clear line
// and a non-zero exit for an error, 130/143 after saving for a signal, the last
// checkpoint intact and finite, and --resume identical to an uninterrupted run.
// Its own binary with ctest label `fault` (ctest -L fault); every run is a few seconds of
// the tiny copy model.
#include <signal.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "experiments/trainer/checkpoint.h"
#include "framework/io/safetensors.h"
#include "gtest/gtest.h"
#include "tests/experiments/cli_runner.h"
#include "tests/support/file_contents.h"
#include "tests/support/temp_dir.h"
#include "tests/support/tensor_bytes.h"
#include "tests/support/tiny_config.h"

namespace attnlab::experiments {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;
using attnlab::testing::ReadFile;

// A started `attnlab` process: its pid and where its output goes.
struct Process {
  pid_t pid = -1;
  fs::path out, err;
};

struct Ended {
  int exit_code = -1;  // -1: killed by a signal
  int signal = 0;
  std::string out, err;
};

class FaultTest : public attnlab::testing::TempDirTest {
 protected:
  void SetUp() override {
    std::ofstream(directory_ / "tiny.toml") << testing::TinyConfigToml(testing::kShortRun);
  }
  void TearDown() override {
    // A failed assertion may leave a run going (some never end on their own).
    for (const pid_t pid : unfinished_) {
      ::kill(pid, SIGKILL);
      waitpid(pid, nullptr, 0);
    }
    if (mounted_) ::umount2(mounted_path_.c_str(), MNT_DETACH);
  }

  // `attnlab train CONFIG --quiet --threads 1 ARGUMENTS...` in the test directory, with a
  // file-size limit (bytes) if given. Started with fork + exec, so the test can signal it.
  Process StartTrain(const std::vector<std::string>& arguments, rlim_t file_size_limit = 0,
                     const std::string& config = "tiny.toml") {
    static int count = 0;
    Process process;
    process.out = directory_ / absl::StrCat(".out.", count);
    process.err = directory_ / absl::StrCat(".err.", count++);
    std::vector<std::string> argv = {ATTNLAB_CLI, "train", config, "--quiet", "--threads", "1"};
    argv.insert(argv.end(), arguments.begin(), arguments.end());
    std::vector<char*> c_argv;
    for (std::string& argument : argv) c_argv.push_back(argument.data());
    c_argv.push_back(nullptr);
    process.pid = fork();
    if (process.pid == 0) {
      if (chdir(directory_.c_str()) != 0 || !freopen(process.out.c_str(), "w", stdout) ||
          !freopen(process.err.c_str(), "w", stderr) || !freopen("/dev/null", "r", stdin)) {
        _exit(127);
      }
      if (file_size_limit > 0) {
        const rlimit limit = {file_size_limit, file_size_limit};
        setrlimit(RLIMIT_FSIZE, &limit);
      }
      execv(c_argv[0], c_argv.data());
      _exit(127);
    }
    unfinished_.insert(process.pid);
    return process;
  }

  Ended Wait(const Process& process) {
    int status = 0;
    waitpid(process.pid, &status, 0);
    unfinished_.erase(process.pid);
    Ended ended;
    if (WIFEXITED(status)) ended.exit_code = WEXITSTATUS(status);
    if (WIFSIGNALED(status)) ended.signal = WTERMSIG(status);
    ended.out = ReadFile(process.out);
    ended.err = ReadFile(process.err);
    return ended;
  }

  Ended Train(const std::vector<std::string>& arguments, rlim_t file_size_limit = 0) {
    return Wait(StartTrain(arguments, file_size_limit));
  }

  // Waits until `path` exists (the trainer writes config.toml once it listens for stop
  // requests and holds the run directory); false after 30 s.
  static bool WaitForFile(const fs::path& path) {
    const auto deadline = Clock::now() + std::chrono::seconds(30);
    while (!fs::exists(path)) {
      if (Clock::now() > deadline) return false;
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    return true;
  }

  std::set<pid_t> unfinished_;  // started, not yet waited for
  bool mounted_ = false;
  std::string mounted_path_;
};

std::vector<std::string> Lines(const std::string& text) {
  return absl::StrSplit(text, '\n', absl::SkipEmpty());
}

// Name -> bytes of every tensor of a safetensors file; empty if it does not load.
std::map<std::string, std::string> TensorsOf(const fs::path& path) {
  absl::StatusOr<std::map<std::string, std::string>> tensors =
      attnlab::testing::TensorBytesOf(path);
  return tensors.ok() ? *tensors : std::map<std::string, std::string>{};
}

std::vector<std::string> TemporaryFiles(const fs::path& directory) {
  std::vector<std::string> temporaries;
  for (const auto& entry : fs::directory_iterator(directory)) {
    const std::string name = entry.path().filename().string();
    if (name.find(".tmp") != std::string::npos) temporaries.push_back(name);
  }
  return temporaries;
}

// ---- Signals ----------------------------------------------------------------------------

// Signals land while oneDNN's JIT kernels run (long steps of 50 micro-batches); before
// signals were taken on their own thread, a burst of them corrupted the heap.
TEST_F(FaultTest, BurstsOfSigtermAndSigintDuringLongStepsSaveAndExit143Or130) {
  for (const int signal : {SIGTERM, SIGINT, SIGTERM, SIGINT}) {
    static int round = 0;
    const std::string run = absl::StrCat("run", round++);
    SCOPED_TRACE(absl::StrCat(run, ": ", sigabbrev_np(signal)));
    const Process process = StartTrain(
        {"--run_dir", run, "--set", "train.accumulation=50", "--set", "train.max_steps=1000"});
    ASSERT_TRUE(WaitForFile(directory_ / run / "config.toml"));
    std::this_thread::sleep_for(std::chrono::milliseconds(100 * (round % 3)));
    for (int i = 0; i < 10; ++i) {
      ::kill(process.pid, signal);
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    const Ended ended = Wait(process);
    ASSERT_EQ(ended.signal, 0) << "crashed: " << ended.err;
    EXPECT_EQ(ended.exit_code, 128 + signal) << ended.err;
    EXPECT_NE(ended.err.find("continue with --resume"), std::string::npos) << ended.err;
    EXPECT_FALSE(TensorsOf(directory_ / run / "checkpoint_last.safetensors").empty());
    EXPECT_TRUE(TemporaryFiles(directory_ / run).empty());
  }
  // A stopped run resumes (here with short steps, to finish quickly).
  const Ended resumed = Train({"--run_dir", "run0", "--resume", "--set", "train.max_steps=4"});
  EXPECT_EQ(resumed.exit_code, 0) << resumed.err;
  EXPECT_TRUE(fs::exists(directory_ / "run0" / "result.json"));
}

// The reproduction: the shipped copy Transformer (931k parameters) in one endless
// step, ten SIGTERMs 100 ms apart. With a signal handler that ran on whichever thread the
// kernel chose, 3 of 4 such runs aborted ("corrupted size vs. prev_size") or segfaulted.
TEST_F(FaultTest, SigtermsInsideOneDnnKernelsNeverCorruptTheHeap) {
  const std::string config =
      std::string(ATTNLAB_SOURCE_DIR) + "/experiments/recipes/copy/transformer.toml";
  for (int round = 0; round < 3; ++round) {
    const std::string run = absl::StrCat("run", round);
    SCOPED_TRACE(run);
    const Process process = StartTrain(
        {"--run_dir", run, "--set", "train.accumulation=1000000000", "--set", "task.train_size=200",
         "--set", "task.valid_size=20", "--set", "task.test_size=20"},
        /*file_size_limit=*/0, config);
    ASSERT_TRUE(WaitForFile(directory_ / run / "config.toml"));
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    for (int i = 0; i < 10; ++i) {
      ::kill(process.pid, SIGTERM);
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    const Ended ended = Wait(process);
    ASSERT_EQ(ended.signal, 0) << "crashed: " << ended.err;
    EXPECT_EQ(ended.exit_code, 143) << ended.err;
    EXPECT_TRUE(
        ReadCheckpointMetadata((directory_ / run / "checkpoint_last.safetensors").string()).ok());
  }
}

// SIGKILL cannot be caught: whatever instant it lands, every checkpoint on disk loads,
// and --resume ends exactly where an uninterrupted run does.
TEST_F(FaultTest, SigkillAtRandomPointsLeavesLoadableCheckpointsAndResumeMatches) {
  const std::vector<std::string> settings = {"--set", "train.checkpoint_every=2", "--set",
                                             "train.accumulation=8"};
  auto with = [&](std::vector<std::string> arguments) {
    arguments.insert(arguments.end(), settings.begin(), settings.end());
    return arguments;
  };
  const Ended reference = Train(with({"--run_dir", "reference"}));
  ASSERT_EQ(reference.exit_code, 0) << reference.err;
  const auto expected = TensorsOf(directory_ / "reference" / "checkpoint_last.safetensors");
  ASSERT_FALSE(expected.empty());

  std::mt19937 random(13);
  std::uniform_int_distribution<int> delay_ms(0, 1200);
  for (int attempt = 0; attempt < 3; ++attempt) {
    const std::string run = absl::StrCat("killed", attempt);
    const int delay = delay_ms(random);
    SCOPED_TRACE(absl::StrCat(run, ": SIGKILL ", delay, " ms after start"));
    const Process process = StartTrain(with({"--run_dir", run}));
    ASSERT_TRUE(WaitForFile(directory_ / run / "config.toml"));
    std::this_thread::sleep_for(std::chrono::milliseconds(delay));
    ::kill(process.pid, SIGKILL);
    Wait(process);
    for (const char* file : {"checkpoint_last.safetensors", "checkpoint_best.safetensors"}) {
      if (fs::exists(directory_ / run / file)) {
        EXPECT_TRUE(ReadCheckpointMetadata((directory_ / run / file).string()).ok()) << file;
      }
    }
    if (!fs::exists(directory_ / run / "checkpoint_last.safetensors")) continue;
    const Ended resumed = Train(with({"--run_dir", run, "--resume"}));
    ASSERT_EQ(resumed.exit_code, 0) << resumed.err;
    EXPECT_TRUE(TensorsOf(directory_ / run / "checkpoint_last.safetensors") == expected);
    EXPECT_TRUE(TemporaryFiles(directory_ / run).empty());
  }
}

// ---- Disk limits ------------------------------------------------------------------------

// A run stopped after step 10 (result.json removed) resumes under a file-size limit
// smaller than a checkpoint: the save fails with one line, the old checkpoints stay.
void ExpectAFailedSaveKeepsTheOldCheckpoints(const fs::path& run_dir, const Ended& ended,
                                             const std::string& reason,
                                             const std::string& last_before,
                                             const std::string& best_before) {
  ASSERT_EQ(ended.signal, 0) << "killed by signal " << ended.signal;
  EXPECT_EQ(ended.exit_code, 1) << ended.err;
  ASSERT_EQ(Lines(ended.err).size(), 1u) << ended.err;
  EXPECT_NE(ended.err.find(reason), std::string::npos) << ended.err;
  EXPECT_NE(ended.err.find("checkpoint_"), std::string::npos) << ended.err;  // names the file
  EXPECT_TRUE(ReadFile(run_dir / "checkpoint_last.safetensors") == last_before);
  EXPECT_TRUE(ReadFile(run_dir / "checkpoint_best.safetensors") == best_before);
  EXPECT_TRUE(TemporaryFiles(run_dir).empty());
}

TEST_F(FaultTest, AFileSizeLimitIsOneClearLineAndKeepsTheOldCheckpoints) {
  const fs::path run_dir = directory_ / "run";
  ASSERT_EQ(Train({"--run_dir", "run", "--set", "train.max_steps=10"}).exit_code, 0);
  fs::remove(run_dir / "result.json");
  const std::string last = ReadFile(run_dir / "checkpoint_last.safetensors");
  const std::string best = ReadFile(run_dir / "checkpoint_best.safetensors");
  const Ended ended = Train({"--run_dir", "run", "--resume", "--set", "train.max_steps=20"},
                            /*file_size_limit=*/last.size() / 2);
  ExpectAFailedSaveKeepsTheOldCheckpoints(run_dir, ended, "ulimit -f", last, best);
}

TEST_F(FaultTest, AFullDiskIsOneClearLineAndKeepsTheOldCheckpoints) {
  if (geteuid() != 0) GTEST_SKIP() << "mounting a small tmpfs needs root";
  mounted_path_ = (directory_ / "disk").string();
  fs::create_directories(mounted_path_);
  if (::mount("tmpfs", mounted_path_.c_str(), "tmpfs", 0, "size=2m") != 0) {
    GTEST_SKIP() << "cannot mount a tmpfs here: " << std::strerror(errno);
  }
  mounted_ = true;
  const fs::path run_dir = fs::path(mounted_path_) / "run";
  ASSERT_EQ(Train({"--run_dir", run_dir.string(), "--set", "train.max_steps=10"}).exit_code, 0);
  fs::remove(run_dir / "result.json");
  const std::string last = ReadFile(run_dir / "checkpoint_last.safetensors");
  const std::string best = ReadFile(run_dir / "checkpoint_best.safetensors");
  // Fill the disk, then leave 16 KiB: enough for the small files, not for a checkpoint.
  {
    std::ofstream filler(fs::path(mounted_path_) / "filler", std::ios::binary);
    const std::string block(4096, 'x');
    while (filler.write(block.data(), block.size()) && filler.flush()) {
    }
  }
  const uintmax_t filled = fs::file_size(fs::path(mounted_path_) / "filler");
  fs::resize_file(fs::path(mounted_path_) / "filler", filled - 16384);
  ASSERT_LT(16384u, last.size());
  const Ended ended =
      Train({"--run_dir", run_dir.string(), "--resume", "--set", "train.max_steps=20"});
  ExpectAFailedSaveKeepsTheOldCheckpoints(run_dir, ended, "No space left on device", last, best);
}

// ---- One process per run directory ------------------------------------------------------

TEST_F(FaultTest, ASecondTrainerOrResumeOnALockedDirectoryIsRefusedNamingThePid) {
  const Process first = StartTrain(
      {"--run_dir", "run", "--set", "train.accumulation=50", "--set", "train.max_steps=1000"});
  ASSERT_TRUE(WaitForFile(directory_ / "run" / "config.toml"));
  for (const std::vector<std::string>& second :
       {std::vector<std::string>{"--run_dir", "run"},
        std::vector<std::string>{"--run_dir", "run", "--resume"}}) {
    const Ended refused = Train(second);
    EXPECT_EQ(refused.exit_code, 1) << refused.err;
    ASSERT_EQ(Lines(refused.err).size(), 1u) << refused.err;
    EXPECT_NE(refused.err.find(absl::StrCat("pid ", first.pid)), std::string::npos) << refused.err;
  }
  ::kill(first.pid, SIGINT);
  const Ended ended = Wait(first);
  EXPECT_EQ(ended.exit_code, 130) << ended.err;
  // Its metrics.jsonl is its own: no second run's records.
  for (const std::string& line : Lines(ReadFile(directory_ / "run" / "metrics.jsonl"))) {
    EXPECT_EQ(line.find("\"step\":0,"), std::string::npos) << line;
  }
  // The lock died with its holder.
  EXPECT_EQ(Train({"--run_dir", "run", "--resume", "--set", "train.max_steps=2", "--set",
                   "train.accumulation=1"})
                .exit_code,
            0);
}

// ---- Leftovers and divergence -----------------------------------------------------------

TEST_F(FaultTest, TemporariesOfKilledProcessesAreRemovedOnStartAndResume) {
  const pid_t dead = fork();
  if (dead == 0) _exit(0);
  waitpid(dead, nullptr, 0);
  const std::string stale = absl::StrCat("checkpoint_last.safetensors.tmp.", dead, ".0");
  fs::create_directories(directory_ / "fresh");
  std::ofstream(directory_ / "fresh" / stale) << "partial";
  ASSERT_EQ(Train({"--run_dir", "fresh", "--set", "train.max_steps=2"}).exit_code, 0);
  EXPECT_FALSE(fs::exists(directory_ / "fresh" / stale));

  fs::remove(directory_ / "fresh" / "result.json");
  std::ofstream(directory_ / "fresh" / stale) << "partial";
  ASSERT_EQ(Train({"--run_dir", "fresh", "--resume", "--set", "train.max_steps=3"}).exit_code, 0);
  EXPECT_FALSE(fs::exists(directory_ / "fresh" / stale));
}

TEST_F(FaultTest, ADivergingRunNamesOnlyAFiniteCheckpointThatExists) {
  const Ended ended = Train({"--run_dir", "run", "--set", "train.optimizer=\"sgd\"", "--set",
                             "train.schedule=\"constant\"", "--set", "train.lr=1e6", "--set",
                             "train.checkpoint_every=1"});
  EXPECT_EQ(ended.exit_code, 1) << ended.err;
  ASSERT_EQ(Lines(ended.err).size(), 1u) << ended.err;
  for (const char* file : {"checkpoint_last.safetensors", "checkpoint_best.safetensors"}) {
    const fs::path path = directory_ / "run" / file;
    if (ended.err.find(file) != std::string::npos) {
      EXPECT_TRUE(fs::exists(path)) << ended.err;
    }
    if (!fs::exists(path)) continue;
    for (const auto& [name, bytes] : TensorsOf(path)) {
      const float* values = reinterpret_cast<const float*>(bytes.data());
      for (size_t i = 0; i < bytes.size() / sizeof(float); ++i) {
        ASSERT_TRUE(std::isfinite(values[i])) << file << " " << name << "[" << i << "]";
      }
    }
  }
}

TEST_F(FaultTest, ResumingAFinishedRunSaysSoAndAddsNoRecord) {
  ASSERT_EQ(Train({"--run_dir", "run", "--set", "train.max_steps=2"}).exit_code, 0);
  const std::string metrics = ReadFile(directory_ / "run" / "metrics.jsonl");
  const Ended again = Train({"--run_dir", "run", "--resume", "--set", "train.max_steps=2"});
  EXPECT_EQ(again.exit_code, 0) << again.err;
  EXPECT_NE(again.out.find("is finished"), std::string::npos) << again.out;
  EXPECT_EQ(ReadFile(directory_ / "run" / "metrics.jsonl"), metrics);
}

TEST_F(FaultTest, ResumingWithAnotherVocabularySizeIsRefusedNamingTheKey) {
  ASSERT_EQ(Train({"--run_dir", "run", "--set", "train.max_steps=2"}).exit_code, 0);
  fs::remove(directory_ / "run" / "result.json");
  const Ended refused = Train({"--run_dir", "run", "--resume", "--set", "task.vocab_size=7"});
  EXPECT_EQ(refused.exit_code, 1) << refused.err;
  ASSERT_EQ(Lines(refused.err).size(), 1u) << refused.err;
  EXPECT_NE(refused.err.find("task.vocab_size 5 -> 7"), std::string::npos) << refused.err;
}

}  // namespace
}  // namespace attnlab::experiments
