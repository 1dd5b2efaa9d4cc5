#include "tests/support/piped_process.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <thread>

#include "gtest/gtest.h"

namespace attnlab::testing {
namespace {

using Clock = std::chrono::steady_clock;

int ExitCodeOf(int status) { return WIFEXITED(status) ? WEXITSTATUS(status) : -1; }

}  // namespace

PipedProcess::PipedProcess(const std::vector<std::string>& argv,
                           const std::filesystem::path& directory,
                           const std::filesystem::path& stderr_path) {
  int to_child[2], from_child[2];
  // Close-on-exec, so that no other child started by the test inherits these ends (dup2
  // below gives the child its own copies without the flag).
  if (pipe2(to_child, O_CLOEXEC) != 0 || pipe2(from_child, O_CLOEXEC) != 0) {
    ADD_FAILURE() << "pipe2 failed: errno " << errno;
    return;
  }
  // Everything the child needs is prepared before fork: after it, only async-signal-safe
  // calls until exec.
  std::vector<char*> arguments;
  for (const std::string& argument : argv) arguments.push_back(const_cast<char*>(argument.c_str()));
  arguments.push_back(nullptr);
  const std::string directory_name = directory.string(), stderr_name = stderr_path.string();
  pid_ = fork();
  if (pid_ == 0) {
    const int error = open(stderr_name.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (error < 0 || chdir(directory_name.c_str()) != 0 || dup2(to_child[0], 0) < 0 ||
        dup2(from_child[1], 1) < 0 || dup2(error, 2) < 0) {
      _exit(127);
    }
    execv(arguments[0], arguments.data());
    _exit(127);
  }
  close(to_child[0]);
  close(from_child[1]);
  input_ = to_child[1];
  output_ = from_child[0];
  if (pid_ < 0) ADD_FAILURE() << "fork failed: errno " << errno;
}

PipedProcess::~PipedProcess() {
  CloseInput();
  if (output_ >= 0) close(output_);
  if (pid_ > 0 && !exit_code_) {
    kill(pid_, SIGKILL);
    int status = 0;
    waitpid(pid_, &status, 0);
  }
}

bool PipedProcess::WriteLine(const std::string& line) {
  if (input_ < 0) return false;
  // A process that has exited would answer the write with SIGPIPE, which would end the
  // test binary: block it for this thread and take back a pending one.
  sigset_t pipe_signal, previous;
  sigemptyset(&pipe_signal);
  sigaddset(&pipe_signal, SIGPIPE);
  pthread_sigmask(SIG_BLOCK, &pipe_signal, &previous);
  const std::string bytes = line + "\n";
  size_t written = 0;
  while (written < bytes.size()) {
    const ssize_t result = write(input_, bytes.data() + written, bytes.size() - written);
    if (result < 0 && errno == EINTR) continue;
    if (result < 0) break;
    written += static_cast<size_t>(result);
  }
  const timespec no_wait = {0, 0};
  while (sigtimedwait(&pipe_signal, nullptr, &no_wait) > 0) {
  }
  pthread_sigmask(SIG_SETMASK, &previous, nullptr);
  return written == bytes.size();
}

std::optional<std::string> PipedProcess::ReadLine(std::chrono::milliseconds timeout) {
  const Clock::time_point deadline = Clock::now() + timeout;
  for (;;) {
    const size_t end = pending_.find('\n');
    if (end != std::string::npos) {
      std::string line = pending_.substr(0, end);
      pending_.erase(0, end + 1);
      return line;
    }
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    if (left <= 0 || output_ < 0) return std::nullopt;
    pollfd ready = {output_, POLLIN, 0};
    const int polled = poll(&ready, 1, static_cast<int>(left));
    if (polled < 0 && errno == EINTR) continue;
    if (polled <= 0) return std::nullopt;
    char chunk[4096];
    const ssize_t got = read(output_, chunk, sizeof chunk);
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) return std::nullopt;  // its output ended
    pending_.append(chunk, static_cast<size_t>(got));
  }
}

void PipedProcess::CloseInput() {
  if (input_ >= 0) close(input_);
  input_ = -1;
}

std::optional<int> PipedProcess::Wait(std::chrono::milliseconds timeout) {
  if (exit_code_ || pid_ <= 0) return exit_code_;
  const Clock::time_point deadline = Clock::now() + timeout;
  for (;;) {
    int status = 0;
    const pid_t done = waitpid(pid_, &status, WNOHANG);
    if (done == pid_) {
      exit_code_ = ExitCodeOf(status);
      return exit_code_;
    }
    if (done < 0 && errno != EINTR) return std::nullopt;
    if (Clock::now() >= deadline) return std::nullopt;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

}  // namespace attnlab::testing
