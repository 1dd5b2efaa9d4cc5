#include "experiments/trainer/checkpoint.h"

#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>
#include <string_view>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "framework/io/safetensors.h"

namespace attnlab::experiments {
namespace {

using Json = nlohmann::json;

absl::StatusOr<std::string> Field(const SafetensorsMetadata& metadata, const std::string& key,
                                  const std::string& path) {
  auto it = metadata.find(key);
  if (it == metadata.end()) {
    return absl::DataLossError(
        absl::StrCat(path, ": not an attnlab checkpoint (no '", key, "' in its metadata)"));
  }
  return it->second;
}

absl::StatusOr<std::vector<std::string>> ParseTokens(const std::string& text,
                                                     const std::string& what,
                                                     const std::string& path) {
  const Json parsed = Json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (!parsed.is_array()) return absl::DataLossError(absl::StrCat(path, ": corrupt ", what));
  std::vector<std::string> tokens;
  for (const Json& token : parsed) {
    if (!token.is_string()) return absl::DataLossError(absl::StrCat(path, ": corrupt ", what));
    tokens.push_back(token.get<std::string>());
  }
  return tokens;
}

}  // namespace

std::string DescribeNonFiniteParameters(const nn::Module& model) {
  NamedTensors tensors = model.NamedParameters();
  for (auto& named : model.NamedBuffers()) tensors.push_back(named);
  int64_t values = 0;
  std::vector<std::string> broken;  // "name (bad of size)"
  for (const auto& [name, tensor] : tensors) {
    if (tensor.dtype() != DType::kF32) continue;
    int64_t bad = 0;
    for (const float value : tensor.ToFloats()) bad += !std::isfinite(value);
    if (bad == 0) continue;
    values += bad;
    broken.push_back(absl::StrCat(name, " (", bad, " of ", tensor.numel(), ")"));
  }
  if (values == 0) return "";
  constexpr size_t kNamesShown = 3;
  const size_t shown = std::min(broken.size(), kNamesShown);
  return absl::StrCat(
      values, " non-finite weights (NaN or inf) in ", broken.size(), " of ", tensors.size(),
      " tensors: ",
      absl::StrJoin(broken.begin(), broken.begin() + static_cast<std::ptrdiff_t>(shown), ", "),
      broken.size() > shown ? ", ..." : "");
}

bool IsTrainingState(const std::string& tensor_name) {
  return tensor_name.rfind(kOptimizerStatePrefix, 0) == 0 || tensor_name.rfind(kEmaPrefix, 0) == 0;
}

absl::Status WriteCheckpointFile(const std::string& path, const NamedTensors& tensors,
                                 const CheckpointContents& contents) {
  const TrainingProgress& progress = contents.progress;
  const Json progress_json = {
      {"step", progress.step},
      {"epoch", progress.epoch},
      {"batch_in_epoch", progress.batch_in_epoch},
      {"best_metric", progress.best_metric},
      {"best_step", progress.best_step},
      {"evaluations_without_improvement", progress.evaluations_without_improvement},
      {"elapsed_seconds", progress.elapsed_seconds},
      {"window_loss", progress.window_loss},
      {"window_tokens", progress.window_tokens},
      {"window_start_seconds", progress.window_start_seconds},
      {"evaluation_pending", progress.evaluation_pending},
      {"consecutive_skipped_steps", progress.consecutive_skipped_steps},
      {"ema_updates", progress.ema_updates},
      // Seeds and offsets are 64-bit: kept as decimal strings so JSON readers that use
      // doubles do not round them.
      {"generator_seed", absl::StrCat(contents.generator_state.seed)},
      {"generator_offset", absl::StrCat(contents.generator_state.offset)}};
  SafetensorsMetadata metadata = {
      {"format", "attnlab-checkpoint"},
      {"format_version", kCheckpointFormatVersion},
      {"config", contents.config_toml},
      {"source_vocabulary", Json(contents.source_vocabulary).dump()},
      {"target_vocabulary", Json(contents.target_vocabulary).dump()},
      {"progress", progress_json.dump()},
  };
  if (!contents.derived_from.empty()) metadata["derived_from"] = contents.derived_from;
  return WriteSafetensors(path, tensors, metadata);
}

absl::Status SaveCheckpoint(const std::string& path, const nn::Module& model, Optimizer* optimizer,
                            const CheckpointContents& contents) {
  if (const std::string non_finite = DescribeNonFiniteParameters(model); !non_finite.empty()) {
    return absl::DataLossError(absl::StrCat(path, ": not saved: the model has ", non_finite));
  }
  NamedTensors tensors = model.NamedParameters();
  for (auto& named : model.NamedBuffers()) tensors.push_back(named);
  if (optimizer != nullptr) {
    for (auto& named : optimizer->NamedState()) tensors.push_back(named);
  }
  for (const auto& [name, average] : contents.ema_weights) {
    tensors.emplace_back(absl::StrCat(kEmaPrefix, name), average);
  }
  return WriteCheckpointFile(path, tensors, contents);
}

absl::StatusOr<CheckpointContents> CheckpointMetadataOf(const SafetensorsContents& file,
                                                        const std::string& path) {
  CheckpointContents contents;
  ASSIGN_OR_RETURN(const std::string version, Field(file.metadata, "format_version", path));
  if (version != kCheckpointFormatVersion) {
    return absl::FailedPreconditionError(absl::StrCat(path, ": checkpoint format version ", version,
                                                      ", this attnlab reads version ",
                                                      kCheckpointFormatVersion));
  }
  ASSIGN_OR_RETURN(contents.config_toml, Field(file.metadata, "config", path));
  ASSIGN_OR_RETURN(const std::string source, Field(file.metadata, "source_vocabulary", path));
  ASSIGN_OR_RETURN(const std::string target, Field(file.metadata, "target_vocabulary", path));
  ASSIGN_OR_RETURN(contents.source_vocabulary, ParseTokens(source, "source vocabulary", path));
  ASSIGN_OR_RETURN(contents.target_vocabulary, ParseTokens(target, "target vocabulary", path));
  ASSIGN_OR_RETURN(const std::string progress_text, Field(file.metadata, "progress", path));
  const Json progress = Json::parse(progress_text, nullptr, /*allow_exceptions=*/false);
  try {
    TrainingProgress& p = contents.progress;
    p.step = progress.at("step").get<int64_t>();
    p.epoch = progress.at("epoch").get<int64_t>();
    p.batch_in_epoch = progress.at("batch_in_epoch").get<int64_t>();
    p.best_metric = progress.at("best_metric").get<double>();
    p.best_step = progress.at("best_step").get<int64_t>();
    p.evaluations_without_improvement =
        progress.at("evaluations_without_improvement").get<int64_t>();
    p.elapsed_seconds = progress.at("elapsed_seconds").get<double>();
    // Absent from checkpoints written before the log window was saved.
    p.window_loss = progress.value("window_loss", 0.0);
    p.window_tokens = progress.value("window_tokens", int64_t{0});
    p.window_start_seconds = progress.value("window_start_seconds", p.elapsed_seconds);
    p.evaluation_pending = progress.value("evaluation_pending", false);
    p.consecutive_skipped_steps = progress.value("consecutive_skipped_steps", int64_t{0});
    p.ema_updates = progress.value("ema_updates", int64_t{0});
    const std::string seed = progress.at("generator_seed").get<std::string>();
    const std::string offset = progress.at("generator_offset").get<std::string>();
    if (!absl::SimpleAtoi(seed, &contents.generator_state.seed) ||
        !absl::SimpleAtoi(offset, &contents.generator_state.offset) || p.step < 0 ||
        p.ema_updates < 0) {
      return absl::DataLossError(absl::StrCat(path, ": corrupt training progress"));
    }
  } catch (const Json::exception&) {
    return absl::DataLossError(absl::StrCat(path, ": corrupt training progress"));
  }
  if (const auto derived = file.metadata.find("derived_from"); derived != file.metadata.end()) {
    contents.derived_from = derived->second;
  }
  return contents;
}

absl::StatusOr<CheckpointContents> ReadCheckpointMetadata(const std::string& path) {
  ASSIGN_OR_RETURN(const SafetensorsContents file, ReadSafetensors(path));
  return CheckpointMetadataOf(file, path);
}

absl::StatusOr<CheckpointContents> LoadCheckpoint(const std::string& path, nn::Module& model,
                                                  Optimizer* optimizer) {
  // One read of the file serves both the metadata and the tensors.
  ASSIGN_OR_RETURN(SafetensorsContents file, ReadSafetensors(path));
  ASSIGN_OR_RETURN(CheckpointContents contents, CheckpointMetadataOf(file, path));
  NamedTensors model_tensors, optimizer_tensors;
  for (auto& [name, tensor] : file.tensors) {
    if (name.rfind(kOptimizerStatePrefix, 0) == 0) {
      optimizer_tensors.emplace_back(name, tensor);
    } else if (name.rfind(kEmaPrefix, 0) == 0) {
      contents.ema_weights.emplace_back(name.substr(std::string_view(kEmaPrefix).size()), tensor);
    } else {
      model_tensors.emplace_back(name, tensor);
    }
  }
  NamedTensors destination = model.NamedParameters();
  for (auto& named : model.NamedBuffers()) destination.push_back(named);
  const std::vector<std::string> problems = NamedLoadProblems(destination, model_tensors, true);
  if (!problems.empty()) {
    return absl::FailedPreconditionError(
        absl::StrCat(path, ": does not match the model: ", absl::StrJoin(problems, "; ")));
  }
  if (optimizer != nullptr) {
    absl::Status status = optimizer->LoadState(optimizer_tensors);
    if (!status.ok()) {
      return absl::FailedPreconditionError(
          absl::StrCat(path, ": optimizer state: ", status.message()));
    }
  }
  RETURN_IF_ERROR(LoadIntoNamed(destination, model_tensors, /*strict=*/true));
  return contents;
}

}  // namespace attnlab::experiments
