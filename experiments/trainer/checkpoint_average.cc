#include "experiments/trainer/checkpoint_average.h"

#include <cmath>
#include <filesystem>
#include <system_error>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "experiments/config/config.h"
#include "framework/core/error.h"
#include "framework/io/safetensors.h"

namespace attnlab::experiments {
namespace {

namespace fs = std::filesystem;

// The keys of a saved config that define the model its tensors belong to. The rest (the
// training schedule, data sizes, evaluation) may differ between checkpoints averaged.
bool DefinesTheModel(const std::string& key) {
  return absl::StartsWith(key, "model.") || absl::StartsWith(key, "attention.") ||
         key == "task.name";
}

// Whether two paths name the same file (also through links or another spelling).
bool SameFile(const std::string& a, const std::string& b) {
  std::error_code error;
  return a == b || (fs::equivalent(a, b, error) && !error);
}

// What the first checkpoint fixes, and every other one is checked against.
struct Reference {
  std::string path;
  Config config;
  CheckpointContents contents;
};

absl::Status CheckSameConfig(const Reference& first, const Config& config,
                             const std::string& path) {
  const std::vector<KeyDifference> differences =
      DifferingKeys(first.config, config, DefinesTheModel);
  if (differences.empty()) return absl::OkStatus();
  const KeyDifference& difference = differences.front();
  return absl::FailedPreconditionError(
      absl::StrCat(path, ": ", difference.key, " = ", difference.after, ", but ", difference.before,
                   " in ", first.path, "; only checkpoints of one model can be averaged"));
}

absl::Status CheckSameVocabulary(const std::vector<std::string>& expected,
                                 const std::vector<std::string>& actual, const std::string& what,
                                 const std::string& path, const std::string& first_path) {
  if (actual.size() != expected.size()) {
    return absl::FailedPreconditionError(absl::StrCat(path, ": its ", what, " has ", actual.size(),
                                                      " tokens, but ", expected.size(), " in ",
                                                      first_path));
  }
  for (size_t i = 0; i < actual.size(); ++i) {
    if (actual[i] != expected[i]) {
      return absl::FailedPreconditionError(
          absl::StrCat(path, ": its ", what, " differs from ", first_path, "'s at token ", i,
                       ": \"", actual[i], "\" instead of \"", expected[i], "\""));
    }
  }
  return absl::OkStatus();
}

// The same tensor names with the same dtypes and shapes; `tensors` by name.
absl::Status CheckSameTensors(const NamedTensors& expected, const std::string& first_path,
                              const NamedTensors& actual,
                              const absl::flat_hash_map<std::string, Tensor>& by_name,
                              const std::string& path) {
  for (const auto& [name, tensor] : expected) {
    const auto found = by_name.find(name);
    if (found == by_name.end()) {
      return absl::FailedPreconditionError(
          absl::StrCat(path, ": has no tensor \"", name, "\", which ", first_path, " has"));
    }
    if (found->second.dtype() != tensor.dtype() || found->second.shape() != tensor.shape()) {
      return absl::FailedPreconditionError(absl::StrCat(path, ": tensor \"", name, "\" is ",
                                                        found->second.Describe(), ", but ",
                                                        tensor.Describe(), " in ", first_path));
    }
  }
  if (actual.size() != expected.size()) {  // every expected name found: some are extra
    absl::flat_hash_map<std::string, bool> known;
    for (const auto& [name, tensor] : expected) known[name] = true;
    for (const auto& [name, tensor] : actual) {
      if (!known.contains(name)) {
        return absl::FailedPreconditionError(absl::StrCat(
            path, ": has a tensor \"", name, "\" that ", first_path, " does not have"));
      }
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<CheckpointAverage> AverageCheckpoints(const std::vector<std::string>& paths) {
  if (paths.empty()) return absl::InvalidArgumentError("no checkpoints to average");
  for (size_t j = 1; j < paths.size(); ++j) {
    for (size_t i = 0; i < j; ++i) {
      if (SameFile(paths[i], paths[j])) {
        return absl::InvalidArgumentError(
            absl::StrCat(paths[j], " is given twice (also as ", paths[i], ")"));
      }
    }
  }
  Reference first;
  NamedTensors model;                     // the first file's model tensors
  std::vector<std::vector<double>> sums;  // per f32 tensor of `model`
  std::vector<std::string> inputs;        // "path (step N)"
  CheckpointContents latest;              // the metadata of the output
  for (size_t file_index = 0; file_index < paths.size(); ++file_index) {
    const std::string& path = paths[file_index];
    // One file in memory at a time (besides the first's tensors and the sums).
    ASSIGN_OR_RETURN(const SafetensorsContents file, ReadSafetensors(path));
    ASSIGN_OR_RETURN(CheckpointContents contents, CheckpointMetadataOf(file, path));
    ASSIGN_OR_RETURN(Config config,
                     Config::Parse(contents.config_toml, absl::StrCat(path, " (saved config)")));
    NamedTensors tensors;
    for (const auto& [name, tensor] : file.tensors) {
      if (!IsTrainingState(name)) tensors.emplace_back(name, tensor);
    }
    if (file_index == 0) {
      first = {path, std::move(config), contents};
      model = tensors;
      sums.resize(model.size());
      for (size_t t = 0; t < model.size(); ++t) {
        if (model[t].second.dtype() == DType::kF32) {
          sums[t].assign(static_cast<size_t>(model[t].second.numel()), 0.0);
        }
      }
    } else {
      RETURN_IF_ERROR(CheckSameConfig(first, config, path));
      RETURN_IF_ERROR(CheckSameVocabulary(first.contents.source_vocabulary,
                                          contents.source_vocabulary, "source vocabulary", path,
                                          first.path));
      RETURN_IF_ERROR(CheckSameVocabulary(first.contents.target_vocabulary,
                                          contents.target_vocabulary, "target vocabulary", path,
                                          first.path));
    }
    absl::flat_hash_map<std::string, Tensor> by_name;
    for (const auto& [name, tensor] : tensors) by_name[name] = tensor;
    RETURN_IF_ERROR(CheckSameTensors(model, first.path, tensors, by_name, path));

    for (size_t t = 0; t < model.size(); ++t) {
      const std::string& name = model[t].first;
      const Tensor& tensor = by_name.at(name);
      if (tensor.dtype() != DType::kF32) {
        if (tensor.ToInts() != model[t].second.ToInts()) {
          return absl::FailedPreconditionError(
              absl::StrCat(path, ": the integer tensor \"", name, "\" differs from ", first.path,
                           "'s; integer tensors cannot be averaged"));
        }
        continue;
      }
      const std::vector<float> values = tensor.ToFloats();
      std::vector<double>& sum = sums[t];
      int64_t non_finite = 0;
      for (size_t i = 0; i < values.size(); ++i) {
        non_finite += !std::isfinite(values[i]);
        sum[i] += static_cast<double>(values[i]);
      }
      if (non_finite > 0) {
        return absl::DataLossError(absl::StrCat(path, ": tensor \"", name, "\" holds ", non_finite,
                                                " non-finite values (NaN or inf) of ",
                                                values.size(),
                                                "; their average would not be finite"));
      }
    }
    inputs.push_back(absl::StrCat(path, " (step ", contents.progress.step, ")"));
    if (file_index == 0 || contents.progress.step >= latest.progress.step) {
      latest = std::move(contents);
    }
  }

  // The mean of finite values is finite (and within their range): no check needed.
  const double count = static_cast<double>(paths.size());
  for (size_t t = 0; t < model.size(); ++t) {
    if (model[t].second.dtype() != DType::kF32) continue;
    Tensor mean = Tensor::Empty(model[t].second.shape());
    float* data = mean.data<float>();
    for (size_t i = 0; i < sums[t].size(); ++i) data[i] = static_cast<float>(sums[t][i] / count);
    model[t].second = mean;
  }
  latest.ema_weights.clear();
  latest.derived_from = absl::StrCat(
      "the average of ", paths.size(),
      paths.size() == 1 ? " checkpoint: " : " checkpoints: ", absl::StrJoin(inputs, ", "));
  return CheckpointAverage{std::move(model), std::move(latest)};
}

absl::StatusOr<CheckpointAverage> WriteCheckpointAverage(const std::vector<std::string>& paths,
                                                         const std::string& out) {
  for (const std::string& path : paths) {
    if (SameFile(out, path)) {
      return absl::InvalidArgumentError(absl::StrCat(
          out, " is one of the checkpoints to average",
          out == path ? "" : absl::StrCat(" (", path, ")"), "; write the average to another file"));
    }
  }
  ASSIGN_OR_RETURN(CheckpointAverage average, AverageCheckpoints(paths));
  RETURN_IF_ERROR(WriteCheckpointFile(out, average.tensors, average.contents));
  return average;
}

}  // namespace attnlab::experiments
