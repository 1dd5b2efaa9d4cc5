// `attnlab init --config C --out P`: a freshly initialised checkpoint of C's model, so
// that another framework can load exactly attnlab's starting weights.
#include <cstdio>

#include "absl/strings/str_cat.h"
#include "experiments/trainer/checkpoint.h"
#include "experiments/trainer/experiment_data.h"
#include "experiments/trainer/model_factory.h"
#include "framework/core/error.h"
#include "tools/cli/command.h"
#include "tools/cli/flags.h"

namespace attnlab::cli {
namespace {

std::vector<FlagSpec> InitFlags() {
  return {{"config", "experiment config (TOML)"},
          {"out", "checkpoint to write (.safetensors)"},
          {"set", "override a config key: table.key=value", true, true}};
}

absl::Status RunInit(const std::vector<std::string>& args) {
  ASSIGN_OR_RETURN(const ParsedFlags flags, ParseFlags(args, InitFlags()));
  if (!flags.Has("config") || !flags.Has("out") || !flags.positional().empty()) {
    return absl::InvalidArgumentError(
        "expected --config=FILE --out=FILE (see attnlab init --help)");
  }
  ASSIGN_OR_RETURN(const experiments::Config config,
                   experiments::Config::Load(flags.Get("config"), flags.GetAll("set")));
  // The vocabularies come from the task's training split, as in `attnlab train`.
  ASSIGN_OR_RETURN(const experiments::ExperimentData data, experiments::LoadExperimentData(config));
  ASSIGN_OR_RETURN(const auto model, experiments::BuildModel(config, data.source_vocabulary.size(),
                                                             data.target_vocabulary.size()));
  experiments::CheckpointContents contents;
  contents.config_toml = config.ToToml();
  contents.source_vocabulary = data.source_vocabulary.tokens();
  contents.target_vocabulary = data.target_vocabulary.tokens();
  RETURN_IF_ERROR(experiments::SaveCheckpoint(flags.Get("out"), *model, nullptr, contents));
  std::printf("%s: %lld parameters in %zu tensors\n", flags.Get("out").c_str(),
              static_cast<long long>(model->ParameterCount()), model->NamedParameters().size());
  return absl::OkStatus();
}

const std::string kUsage = absl::StrCat(
    "usage: attnlab init --config=FILE --out=FILE [--set key=value]...\n\n"
    "Writes the freshly initialised model of a config (weights drawn from\n"
    "experiment.seed) as a safetensors checkpoint with dotted parameter names, e.g.\n"
    "encoder.layers.0.self_attn.q_proj.weight, Linear weights [out, in] as in PyTorch.\n\nflags:\n",
    FlagsHelp(InitFlags()));

ATTNLAB_COMMAND(init, "init", "write a freshly initialised checkpoint", kUsage.c_str(), RunInit);

}  // namespace
}  // namespace attnlab::cli
