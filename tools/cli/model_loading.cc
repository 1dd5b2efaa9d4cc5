#include "tools/cli/model_loading.h"

#include "experiments/trainer/checkpoint.h"
#include "experiments/trainer/model_factory.h"
#include "framework/core/error.h"

namespace attnlab::cli {

absl::StatusOr<LoadedModel> LoadTrainedModel(const std::string& checkpoint_path,
                                             const std::vector<std::string>& overrides) {
  ASSIGN_OR_RETURN(const experiments::CheckpointContents contents,
                   experiments::ReadCheckpointMetadata(checkpoint_path));
  ASSIGN_OR_RETURN(experiments::Config config,
                   experiments::Config::Parse(contents.config_toml,
                                              checkpoint_path + " (saved config)", overrides));
  ASSIGN_OR_RETURN(experiments::ExperimentData data,
                   experiments::LoadExperimentData(config, &contents.source_vocabulary,
                                                   &contents.target_vocabulary));
  ASSIGN_OR_RETURN(std::shared_ptr<nn::Seq2SeqModel> model,
                   experiments::BuildModel(config, data.source_vocabulary.size(),
                                           data.target_vocabulary.size()));
  ASSIGN_OR_RETURN(const auto loaded,
                   experiments::LoadCheckpoint(checkpoint_path, *model, nullptr));
  (void)loaded;
  model->Eval();
  return LoadedModel{std::move(config), std::move(data), std::move(model)};
}

}  // namespace attnlab::cli
