// `attnlab report RUN_DIR... [--out=FILE]`: one self-contained HTML page for one or more
// training runs (see experiments/report/report.h for what it shows and reads).
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "experiments/report/report.h"
#include "framework/core/error.h"
#include "tools/cli/command.h"

namespace attnlab::cli {
namespace {

absl::Status RunReport(const std::vector<std::string>& args) {
  std::vector<std::string> run_dirs;
  std::string output;
  for (const std::string& arg : args) {
    if (arg.rfind("--out=", 0) == 0) {
      output = arg.substr(6);
      if (output.empty()) return absl::InvalidArgumentError("--out needs a file name");
      continue;
    }
    if (arg.rfind("--", 0) == 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("unknown flag '", arg, "' (see attnlab report --help)"));
    }
    run_dirs.push_back(arg);
  }
  if (run_dirs.empty()) {
    return absl::InvalidArgumentError(
        "no run directory given (usage: attnlab report RUN_DIR... [--out=FILE])");
  }
  if (output.empty()) {
    output = run_dirs.size() == 1 ? (std::filesystem::path(run_dirs[0]) / "report.html").string()
                                  : "report.html";
  }
  RETURN_IF_ERROR(experiments::WriteRunReport(run_dirs, output));
  std::printf("wrote %s\n", output.c_str());
  return absl::OkStatus();
}

}  // namespace

ATTNLAB_COMMAND(
    report, "report", "write an HTML report of one or more training runs",
    "usage: attnlab report RUN_DIR... [--out=FILE]\n\n"
    "Writes one self-contained HTML page (no external files, no JavaScript) for the\n"
    "run directories (runs/<experiment>/<run>/) written by `attnlab train`:\n"
    "  - the resolved config (config.toml) and, for several runs, the keys that differ\n"
    "  - training loss, learning rate and throughput curves, and a curve per\n"
    "    validation metric (metrics.jsonl); several runs overlay, one colour each\n"
    "  - the final validation and test metrics\n"
    "  - validation samples: source, reference, prediction (samples.txt)\n"
    "  - attention heatmaps of validation examples (attention.safetensors)\n"
    "Missing samples or attention files leave their section out.\n\n"
    "  --out=FILE   where to write the page; default RUN_DIR/report.html for one run,\n"
    "               ./report.html for several\n\n"
    "examples:\n"
    "  attnlab report runs/copy/transformer-1\n"
    "  attnlab report runs/copy/* --out=copy.html",
    RunReport);

}  // namespace attnlab::cli
