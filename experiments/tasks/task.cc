#include "experiments/tasks/task.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "framework/core/error.h"

namespace attnlab::experiments {
namespace {
std::map<std::string, TaskFactory>& Registry() {
  static auto* registry = new std::map<std::string, TaskFactory>();
  return *registry;
}
}  // namespace

std::shared_ptr<Tokenizer> Task::SourceTokenizer() const {
  return std::make_shared<CharTokenizer>();
}
std::shared_ptr<Tokenizer> Task::TargetTokenizer() const {
  return std::make_shared<CharTokenizer>();
}

std::vector<MetricSpec> Task::Metrics() const { return {{"exact_match", true}}; }

std::map<std::string, double> Task::Score(const std::vector<std::string>& predictions,
                                          const std::vector<Example>& examples) const {
  return {{"exact_match", ExactMatchPercent(predictions, examples)}};
}

double ExactMatchPercent(const std::vector<std::string>& predictions,
                         const std::vector<Example>& examples) {
  ATTNLAB_CHECK(predictions.size() == examples.size(), "exact match: ", predictions.size(),
                " predictions for ", examples.size(), " examples");
  if (examples.empty()) return 0.0;
  int64_t correct = 0;
  for (size_t i = 0; i < examples.size(); ++i) {
    const auto& references = examples[i].references;
    if (std::find(references.begin(), references.end(), predictions[i]) != references.end())
      ++correct;
  }
  return 100.0 * static_cast<double>(correct) / static_cast<double>(examples.size());
}

TokenCounts CountCorrectTokens(const std::vector<int32_t>& predicted,
                               const std::vector<int32_t>& targets, int32_t pad_id) {
  ATTNLAB_CHECK(predicted.size() == targets.size(), "token accuracy: ", predicted.size(),
                " predictions for ", targets.size(), " targets");
  TokenCounts counts;
  for (size_t i = 0; i < targets.size(); ++i) {
    if (targets[i] == pad_id) continue;
    ++counts.total;
    if (predicted[i] == targets[i]) ++counts.correct;
  }
  return counts;
}

void RegisterTask(const std::string& name, TaskFactory factory) {
  ATTNLAB_CHECK(Registry().count(name) == 0, "task '", name, "' registered twice");
  Registry()[name] = std::move(factory);
}

absl::StatusOr<std::unique_ptr<Task>> MakeTask(const Config& config) {
  const std::string& name = config.task().name;
  auto it = Registry().find(name);
  if (it == Registry().end()) {
    return absl::InvalidArgumentError(absl::StrCat(config.Origin("task.name"), ": unknown task '",
                                                   name,
                                                   "'; known: ", absl::StrJoin(TaskNames(), ", ")));
  }
  return it->second(config);
}

std::vector<std::string> TaskNames() {
  std::vector<std::string> names;
  for (const auto& [name, factory] : Registry()) names.push_back(name);
  return names;
}

}  // namespace attnlab::experiments
