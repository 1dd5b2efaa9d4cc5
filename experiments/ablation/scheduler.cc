#include "experiments/ablation/scheduler.h"

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <cstring>
#include <filesystem>
#include <map>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "experiments/trainer/run_directory_lock.h"
#include "experiments/trainer/run_result.h"
#include "framework/core/stop_request.h"
#include "framework/distributed/launch.h"
#include "framework/io/atomic_file.h"
#include "framework/io/text_file.h"

extern char** environ;

namespace attnlab::experiments {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

// A trainer stopped by a signal saves a checkpoint and exits 128 + the signal's number.
bool ExitedAfterAStopRequest(int status) {
  if (!WIFEXITED(status)) return false;
  const int code = WEXITSTATUS(status);
  return code == 128 + SIGINT || code == 128 + SIGTERM || code == 128 + SIGHUP;
}

// The last non-empty line of a run's log (the trainer's error, or its last progress line).
std::string LastLogLine(const std::string& log_path) {
  absl::StatusOr<std::string> text = ReadTextFile(log_path);
  if (!text.ok()) return "";
  std::string last;
  for (const absl::string_view line : absl::StrSplit(*text, absl::ByAnyChar("\n\r"))) {
    if (!absl::StripAsciiWhitespace(line).empty()) last = std::string(line);
  }
  return last;
}

struct Running {
  size_t index;
  Clock::time_point start;
  bool signalled = false;
};

// Starts one run; returns its pid, or -1 with `error` set. The run starts with the
// signal mask and dispositions of a fresh process: this one blocks the stop signals
// (framework/core/stop_request.h) and ignores SIGXFSZ, and both would be inherited.
pid_t Spawn(const std::vector<std::string>& command, const std::string& log_path,
            std::string* error) {
  posix_spawnattr_t attributes;
  posix_spawnattr_init(&attributes);
  sigset_t none, restore_default = StopSignals();
  sigemptyset(&none);
  sigaddset(&restore_default, SIGXFSZ);
  posix_spawnattr_setsigmask(&attributes, &none);
  posix_spawnattr_setsigdefault(&attributes, &restore_default);
  posix_spawnattr_setflags(&attributes, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, log_path.c_str(),
                                   O_WRONLY | O_CREAT | O_APPEND, 0666);
  posix_spawn_file_actions_adddup2(&actions, STDOUT_FILENO, STDERR_FILENO);
  std::vector<char*> argv;
  for (const std::string& argument : command) argv.push_back(const_cast<char*>(argument.c_str()));
  argv.push_back(nullptr);
  // Under mpirun (a study spread over ranks) the run is still a plain process of its own.
  std::vector<char*> environment;
  for (char** entry = environ; *entry != nullptr; ++entry) {
    if (!distributed::IsMpiLauncherVariable(*entry)) environment.push_back(*entry);
  }
  environment.push_back(nullptr);
  pid_t pid = -1;
  const int status =
      posix_spawn(&pid, argv[0], &actions, &attributes, argv.data(), environment.data());
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attributes);
  if (status != 0) {
    *error = absl::StrCat("cannot start ", command[0], ": ", std::strerror(status));
    return -1;
  }
  return pid;
}

}  // namespace

const char* RunStatusName(RunStatus status) {
  switch (status) {
    case RunStatus::kSkipped:
      return "skipped";
    case RunStatus::kFinished:
      return "finished";
    case RunStatus::kFailed:
      return "failed";
    case RunStatus::kInterrupted:
      return "interrupted";
    case RunStatus::kNotStarted:
      return "not started";
  }
  return "?";
}

std::string RunSpecPath(const PlannedRun& run) {
  return (fs::path(run.run_dir) / kRunSpecFile).string();
}

absl::Status WriteRunSpec(const PlannedRun& run) {
  return WriteFileAtomically(RunSpecPath(run), run.config.ToToml());
}

std::vector<std::string> TrainCommand(const PlannedRun& run, const SchedulerOptions& options) {
  std::vector<std::string> command = {options.executable,
                                      "train",
                                      RunSpecPath(run),
                                      "--run_dir",
                                      run.run_dir,
                                      "--threads",
                                      absl::StrCat(options.threads_per_run)};
  if (run.action == RunAction::kResume) command.push_back("--resume");
  return command;
}

std::vector<RunOutcome> ExecuteStudy(const StudyPlan& plan, const SchedulerOptions& options) {
  std::vector<RunOutcome> outcomes(plan.runs.size());
  std::vector<size_t> pending;
  for (size_t i = 0; i < plan.runs.size(); ++i) {
    if (plan.runs[i].action == RunAction::kSkip) {
      outcomes[i].status = RunStatus::kSkipped;
    } else {
      pending.push_back(i);
    }
  }
  std::map<pid_t, Running> running;
  size_t next = 0;
  bool stopping = false;
  const auto finish = [&](size_t index, RunOutcome outcome) {
    outcomes[index] = std::move(outcome);
    if (options.on_end) options.on_end(index, plan.runs[index], outcomes[index]);
  };
  while (next < pending.size() || !running.empty()) {
    if (!stopping && options.stop_requested()) {
      stopping = true;
      // The terminal sends Ctrl-C to the whole process group, but a stop may come from
      // elsewhere (SIGTERM to this process, a test): tell every run to save and stop.
      for (auto& [pid, run] : running) {
        if (!run.signalled) ::kill(pid, SIGINT);
        run.signalled = true;
      }
    }
    while (!stopping && next < pending.size() &&
           static_cast<int>(running.size()) < std::max(1, options.jobs)) {
      const size_t index = pending[next++];
      const PlannedRun& run = plan.runs[index];
      // A run directory in use by another process (a trainer started by hand, another
      // study) is neither deleted nor trained into.
      if (const absl::Status unlocked = RunDirectoryLock::CheckUnlocked(run.run_dir);
          !unlocked.ok()) {
        if (options.on_start) options.on_start(index, run);
        finish(index, {RunStatus::kFailed, 0.0, std::string(unlocked.message())});
        continue;
      }
      std::error_code ignored;
      if (run.action == RunAction::kRerun) fs::remove_all(run.run_dir, ignored);
      fs::create_directories(run.run_dir, ignored);
      if (options.on_start) options.on_start(index, run);
      if (const absl::Status written = WriteRunSpec(run); !written.ok()) {
        finish(index, {RunStatus::kFailed, 0.0, std::string(written.message())});
        continue;
      }
      std::string error;
      const pid_t pid =
          Spawn(TrainCommand(run, options), (fs::path(run.run_dir) / "train.log").string(), &error);
      if (pid < 0) {
        finish(index, {RunStatus::kFailed, 0.0, error});
        continue;
      }
      running[pid] = {index, Clock::now()};
    }
    if (running.empty()) break;
    int status = 0;
    const pid_t pid = ::waitpid(-1, &status, WNOHANG);
    if (pid <= 0) {
      // Nothing ended yet: poll, so that a stop request is seen within a fraction of a second.
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
      continue;
    }
    const auto it = running.find(pid);
    if (it == running.end()) continue;  // not one of ours
    const Running ended = it->second;
    running.erase(it);
    const PlannedRun& run = plan.runs[ended.index];
    RunOutcome outcome;
    outcome.seconds = std::chrono::duration<double>(Clock::now() - ended.start).count();
    const bool finished = fs::exists(fs::path(run.run_dir) / kRunResultFile);
    const std::string log = (fs::path(run.run_dir) / "train.log").string();
    if ((WIFEXITED(status) && WEXITSTATUS(status) == 0) || ExitedAfterAStopRequest(status)) {
      outcome.status = finished ? RunStatus::kFinished : RunStatus::kInterrupted;
    } else if (stopping && WIFSIGNALED(status)) {
      outcome.status = RunStatus::kInterrupted;  // stopped before it could catch the signal
    } else {
      outcome.status = RunStatus::kFailed;
      outcome.message = WIFSIGNALED(status)
                            ? absl::StrCat("killed by signal ", WTERMSIG(status), " (",
                                           strsignal(WTERMSIG(status)), "); see ", log)
                            : absl::StrCat(LastLogLine(log), " (", log, ")");
    }
    finish(ended.index, std::move(outcome));
  }
  return outcomes;
}

}  // namespace attnlab::experiments
