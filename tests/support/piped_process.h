// A child process that a test talks to through pipes, a line at a time, as a user of a
// pipe would: write a line to its standard input, read its answer from its standard
// output, and only then write the next. Every read and wait has a timeout, so a test of
// a command that does not answer fails instead of hanging.
//
//   PipedProcess decode({binary, "decode", "--checkpoint", path}, directory, "decode.err");
//   decode.WriteLine("1 2 3");
//   std::optional<std::string> answer = decode.ReadLine(std::chrono::seconds(30));
//   decode.CloseInput();
//   std::optional<int> exit_code = decode.Wait(std::chrono::seconds(30));
#pragma once

#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace attnlab::testing {

class PipedProcess {
 public:
  // Starts argv[0] (a path) with the rest of argv in `directory`; its standard error goes
  // to the file `stderr_path`. A failure to start fails the running test.
  PipedProcess(const std::vector<std::string>& argv, const std::filesystem::path& directory,
               const std::filesystem::path& stderr_path);
  // Kills the process if it is still running, and reaps it.
  ~PipedProcess();
  PipedProcess(const PipedProcess&) = delete;
  PipedProcess& operator=(const PipedProcess&) = delete;

  // Writes `line` and '\n' to its standard input; false if it cannot (e.g. it exited).
  bool WriteLine(const std::string& line);
  // Its next output line (without '\n'); nullopt when none arrives within `timeout` or
  // its output ends first.
  std::optional<std::string> ReadLine(std::chrono::milliseconds timeout);
  // Ends its standard input.
  void CloseInput();
  // Its exit code once it exits within `timeout` (-1 if a signal ended it); nullopt if
  // it is still running then.
  std::optional<int> Wait(std::chrono::milliseconds timeout);

 private:
  pid_t pid_ = -1;
  int input_ = -1;       // write end of its standard input
  int output_ = -1;      // read end of its standard output
  std::string pending_;  // output read past the last line returned
  std::optional<int> exit_code_;
};

}  // namespace attnlab::testing
