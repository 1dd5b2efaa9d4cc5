// A task: where examples come from, how text becomes tokens, and how predictions are
// scored. Tasks are registered by name and chosen by `task.name` in a config.
//
// Splits are deterministic functions of the config (task.seed and sizes), and disjoint:
// no source appears in two splits.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "experiments/config/config.h"
#include "experiments/data/example.h"
#include "experiments/data/tokenizer.h"

namespace attnlab::experiments {

struct Splits {
  std::vector<Example> train, valid, test;
};

struct MetricSpec {
  std::string name;
  bool higher_is_better;
};

class Task {
 public:
  virtual ~Task() = default;
  virtual absl::StatusOr<Splits> LoadSplits(const Config& config) const = 0;
  virtual std::shared_ptr<Tokenizer> SourceTokenizer() const;  // default: characters
  virtual std::shared_ptr<Tokenizer> TargetTokenizer() const;  // default: characters
  // The task's metrics; the first is its main metric (early stopping, reports).
  // Default: exact_match (% of predictions equal to a reference).
  virtual std::vector<MetricSpec> Metrics() const;
  // Scores detokenised predictions against the examples' references.
  virtual std::map<std::string, double> Score(const std::vector<std::string>& predictions,
                                              const std::vector<Example>& examples) const;
};

using TaskFactory = std::function<absl::StatusOr<std::unique_ptr<Task>>(const Config& config)>;

void RegisterTask(const std::string& name, TaskFactory factory);
// The task named by `task.name`; an unknown name lists the known ones.
absl::StatusOr<std::unique_ptr<Task>> MakeTask(const Config& config);
std::vector<std::string> TaskNames();

struct TaskRegistration {
  TaskRegistration(const std::string& name, TaskFactory factory) {
    RegisterTask(name, std::move(factory));
  }
};

// Percentage of predictions equal to one of their example's references.
double ExactMatchPercent(const std::vector<std::string>& predictions,
                         const std::vector<Example>& examples);

// Teacher-forced token accuracy: of the positions where `targets` is not `pad_id`, how
// many `predicted` (argmax ids, same length) gets right.
struct TokenCounts {
  int64_t correct = 0;
  int64_t total = 0;
  double Percent() const {
    return total > 0 ? 100.0 * static_cast<double>(correct) / static_cast<double>(total) : 0.0;
  }
};
TokenCounts CountCorrectTokens(const std::vector<int32_t>& predicted,
                               const std::vector<int32_t>& targets, int32_t pad_id);

}  // namespace attnlab::experiments

#define ATTNLAB_REGISTER_TASK(identifier, name, factory) \
  static ::attnlab::experiments::TaskRegistration task_registration_##identifier(name, factory)
