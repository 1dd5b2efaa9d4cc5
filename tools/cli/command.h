// The attnlab CLI: one binary, one subcommand per file. A subcommand registers itself
// with ATTNLAB_COMMAND and receives its own arguments (after the subcommand name).
#pragma once

#include <string>
#include <vector>

#include "absl/status/status.h"

namespace attnlab::cli {

struct Command {
  const char* name;
  const char* summary;  // one line for `attnlab --help`
  const char* usage;    // full text for `attnlab NAME --help`
  absl::Status (*run)(const std::vector<std::string>& args);
};

std::vector<Command>& Commands();

struct CommandRegistration {
  explicit CommandRegistration(Command command) { Commands().push_back(command); }
};

}  // namespace attnlab::cli

#define ATTNLAB_COMMAND(identifier, ...)                           \
  static ::attnlab::cli::CommandRegistration command_##identifier( \
      ::attnlab::cli::Command{__VA_ARGS__})
