#include "tools/cli/model_loading.h"

#include "absl/strings/str_cat.h"
#include "experiments/trainer/checkpoint.h"
#include "experiments/trainer/model_factory.h"
#include "framework/core/error.h"

namespace attnlab::cli {
namespace {

// A checkpoint of a diverged run scores as loss nan and decodes garbage; say which
// tensors are broken instead.
absl::Status CheckFiniteParameters(const std::string& checkpoint_path, const nn::Module& model) {
  const std::string broken = experiments::DescribeNonFiniteParameters(model);
  if (broken.empty()) return absl::OkStatus();
  return absl::DataLossError(absl::StrCat(checkpoint_path, ": ", broken,
                                          "; a diverged run wrote it: use an earlier checkpoint"));
}

absl::StatusOr<experiments::Config> SavedConfig(const std::string& checkpoint_path,
                                                const experiments::CheckpointContents& contents,
                                                const std::vector<std::string>& overrides) {
  return experiments::Config::Parse(contents.config_toml, checkpoint_path + " (saved config)",
                                    overrides);
}

}  // namespace

absl::StatusOr<LoadedModel> LoadTrainedModel(const std::string& checkpoint_path,
                                             const std::vector<std::string>& overrides) {
  ASSIGN_OR_RETURN(const experiments::CheckpointContents contents,
                   experiments::ReadCheckpointMetadata(checkpoint_path));
  ASSIGN_OR_RETURN(experiments::Config config, SavedConfig(checkpoint_path, contents, overrides));
  if (experiments::HasRegisteredObjective(config.task().name)) {
    return absl::FailedPreconditionError(absl::StrCat(
        checkpoint_path, ": task '", config.task().name,
        "' trains a model of its own, not a sequence-to-sequence model; `attnlab evaluate` "
        "scores it, decoding and dumping do not apply"));
  }
  ASSIGN_OR_RETURN(experiments::ExperimentData data,
                   experiments::LoadExperimentData(config, &contents.source_vocabulary,
                                                   &contents.target_vocabulary));
  ASSIGN_OR_RETURN(std::shared_ptr<nn::Seq2SeqModel> model,
                   experiments::BuildModel(config, data.source_vocabulary.size(),
                                           data.target_vocabulary.size()));
  RETURN_IF_ERROR(experiments::LoadCheckpoint(checkpoint_path, *model, nullptr).status());
  RETURN_IF_ERROR(CheckFiniteParameters(checkpoint_path, *model));
  model->Eval();
  return LoadedModel{std::move(config), std::move(data), std::move(model)};
}

absl::StatusOr<LoadedObjective> LoadTrainedObjective(const std::string& checkpoint_path,
                                                     const std::vector<std::string>& overrides) {
  ASSIGN_OR_RETURN(const experiments::CheckpointContents contents,
                   experiments::ReadCheckpointMetadata(checkpoint_path));
  ASSIGN_OR_RETURN(experiments::Config config, SavedConfig(checkpoint_path, contents, overrides));
  ASSIGN_OR_RETURN(std::unique_ptr<experiments::Objective> objective,
                   experiments::MakeObjective(config, &contents));
  RETURN_IF_ERROR(
      experiments::LoadCheckpoint(checkpoint_path, objective->module(), nullptr).status());
  RETURN_IF_ERROR(CheckFiniteParameters(checkpoint_path, objective->module()));
  objective->module().Eval();
  return LoadedObjective{std::move(config), std::move(objective)};
}

}  // namespace attnlab::cli
