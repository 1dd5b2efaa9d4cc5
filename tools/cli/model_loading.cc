#include "tools/cli/model_loading.h"

#include <cmath>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "experiments/trainer/checkpoint.h"
#include "experiments/trainer/model_factory.h"
#include "framework/core/error.h"

namespace attnlab::cli {
namespace {

// A checkpoint of a diverged run scores as loss nan and decodes garbage; say which
// tensors are broken instead. Parameters are f32 (bf16 is only a matmul input format).
absl::Status CheckFiniteParameters(const std::string& checkpoint_path,
                                   const nn::Seq2SeqModel& model) {
  std::vector<std::string> broken;
  int64_t broken_values = 0;
  for (const auto& [name, parameter] : model.NamedParameters()) {
    if (parameter.dtype() != DType::kF32) continue;
    const Tensor values = parameter.contiguous();
    const float* data = values.data<float>();
    int64_t non_finite = 0;
    for (int64_t i = 0, n = values.numel(); i < n; ++i) non_finite += !std::isfinite(data[i]);
    if (non_finite == 0) continue;
    broken_values += non_finite;
    broken.push_back(absl::StrCat(name, " (", non_finite, " of ", values.numel(), ")"));
  }
  if (broken.empty()) return absl::OkStatus();
  constexpr size_t kNamesShown = 3;
  const size_t shown = std::min(broken.size(), kNamesShown);
  return absl::DataLossError(absl::StrCat(
      checkpoint_path, ": ", broken_values, " non-finite weights (NaN or inf) in ", broken.size(),
      " tensors: ",
      absl::StrJoin(broken.begin(), broken.begin() + static_cast<std::ptrdiff_t>(shown), ", "),
      broken.size() > shown ? ", ..." : "",
      "; a diverged run wrote it: use an earlier checkpoint"));
}

}  // namespace

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
  RETURN_IF_ERROR(CheckFiniteParameters(checkpoint_path, *model));
  model->Eval();
  return LoadedModel{std::move(config), std::move(data), std::move(model)};
}

}  // namespace attnlab::cli
