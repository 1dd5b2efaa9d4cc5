// Running the attnlab binary from a test: one shell command in a directory, its exit code,
// standard output and standard error. Shared by the CLI tests of every command.
#pragma once

#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <string>

#include "tests/support/file_contents.h"

#ifndef ATTNLAB_CLI
#error "ATTNLAB_CLI (the attnlab binary) must be defined by the build"
#endif

namespace attnlab::experiments::testing {

// What the binary wrote, read back (tests/support/file_contents.h); also as
// testing::ReadFile for the CLI tests, which reach it through this header.
using attnlab::testing::ReadFile;

struct CliOutput {
  int exit_code = -1;  // -1: killed by a signal (a crash)
  std::string out, err;
};

// Runs `command_line` with the shell in `directory`. The output goes through files named
// per process and call (removed afterwards), so concurrent tests never share them.
inline CliOutput RunShell(const std::filesystem::path& directory, const std::string& command_line) {
  static int counter = 0;
  const std::string id = std::to_string(::getpid()) + "." + std::to_string(counter++);
  const std::filesystem::path out = directory / (".attnlab_stdout." + id);
  const std::filesystem::path err = directory / (".attnlab_stderr." + id);
  const std::string full = "cd '" + directory.string() + "' && { " + command_line + " ; } > '" +
                           out.string() + "' 2> '" + err.string() + "'";
  const int status = std::system(full.c_str());
  CliOutput output;
  output.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  output.out = ReadFile(out);
  output.err = ReadFile(err);
  std::filesystem::remove(out);
  std::filesystem::remove(err);
  return output;
}

// `attnlab ARGUMENTS` in `directory`, with standard input from /dev/null.
inline CliOutput RunAttnlab(const std::filesystem::path& directory, const std::string& arguments) {
  return RunShell(directory, std::string("'") + ATTNLAB_CLI + "' " + arguments + " < /dev/null");
}

}  // namespace attnlab::experiments::testing
