#include "experiments/trainer/objective.h"

#include "experiments/trainer/seq2seq_objective.h"
#include "experiments/trainer/train_step.h"

namespace attnlab::experiments {
namespace {

std::map<std::string, ObjectiveFactory>& Registry() {
  static auto* registry = new std::map<std::string, ObjectiveFactory>();
  return *registry;
}

}  // namespace

absl::StatusOr<std::unique_ptr<Optimizer>> Objective::MakeOptimizer(const Config& config) {
  return experiments::MakeOptimizer(config, module().NamedParameters());
}

absl::StatusOr<std::unique_ptr<LearningRateSchedule>> Objective::MakeSchedule(const Config& config,
                                                                              int64_t total_steps) {
  return experiments::MakeSchedule(config, total_steps);
}

void RegisterObjective(const std::string& task_name, ObjectiveFactory factory) {
  Registry()[task_name] = std::move(factory);
}

absl::StatusOr<std::unique_ptr<Objective>> MakeObjective(const Config& config,
                                                         const CheckpointContents* resumed) {
  const auto registered = Registry().find(config.GetString("task.name"));
  if (registered != Registry().end()) return registered->second(config, resumed);
  return MakeSeq2SeqObjective(config, resumed);
}

}  // namespace attnlab::experiments
