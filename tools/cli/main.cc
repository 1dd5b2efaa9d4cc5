// attnlab: the command-line entry point. Dispatches to a subcommand, and turns every
// error into one line on stderr and a non-zero exit code. A command stopped by a signal
// (Ctrl-C, SIGTERM, SIGHUP; see framework/core/stop_request.h) exits 128 + the signal's
// number, as a shell reports a process killed by it: 130, 143, 129.
#include <algorithm>
#include <cstdio>
#include <cstring>
#include <exception>
#include <string>
#include <vector>

#include "framework/core/error.h"
#include "framework/core/stop_request.h"
#include "tools/cli/command.h"

namespace attnlab::cli {

std::vector<Command>& Commands() {
  static std::vector<Command>* commands = new std::vector<Command>();
  return *commands;
}

namespace {

void PrintOverview() {
  std::printf(
      "attnlab: a CPU research framework for attention models\n\n"
      "usage: attnlab COMMAND [ARGS...]   (attnlab COMMAND --help for details)\n\n"
      "commands:\n");
  std::vector<Command> sorted = Commands();
  std::sort(sorted.begin(), sorted.end(),
            [](const Command& a, const Command& b) { return std::strcmp(a.name, b.name) < 0; });
  for (const Command& command : sorted) std::printf("  %-10s %s\n", command.name, command.summary);
}

}  // namespace
}  // namespace attnlab::cli

int main(int argc, char** argv) {
  // First, before anything starts a thread: every thread then inherits the blocked mask.
  attnlab::StartSignalThread();
  using attnlab::cli::Command;
  using attnlab::cli::Commands;
  if (argc < 2 || std::strcmp(argv[1], "--help") == 0 || std::strcmp(argv[1], "-h") == 0) {
    attnlab::cli::PrintOverview();
    return argc < 2 ? 2 : 0;
  }
  const std::string name = argv[1];
  auto it = std::find_if(Commands().begin(), Commands().end(),
                         [&](const Command& command) { return name == command.name; });
  if (it == Commands().end()) {
    std::fprintf(stderr, "attnlab: unknown command '%s' (attnlab --help lists them)\n",
                 name.c_str());
    return 2;
  }
  std::vector<std::string> args(argv + 2, argv + argc);
  if (std::find(args.begin(), args.end(), "--help") != args.end()) {
    std::printf("%s\n", it->usage);
    return 0;
  }
  try {
    const absl::Status status = it->run(args);
    if (!status.ok()) {
      std::fprintf(stderr, "attnlab %s: %s\n", it->name, std::string(status.message()).c_str());
    }
    // A stopped command has saved what it could (its message says where); an error while
    // stopping (e.g. a full disk) is still an error.
    const int stop_signal = attnlab::StopSignal();
    if (stop_signal != 0 && (status.ok() || absl::IsCancelled(status))) return 128 + stop_signal;
    if (!status.ok()) return 1;
  } catch (const attnlab::Error& error) {
    std::fprintf(stderr, "attnlab %s: internal error: %s\n", it->name, error.what());
    return 1;
  } catch (const std::exception& error) {
    std::fprintf(stderr, "attnlab %s: %s\n", it->name, error.what());
    return 1;
  }
  return 0;
}
