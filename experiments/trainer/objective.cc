#include "experiments/trainer/objective.h"

#include "experiments/trainer/seq2seq_objective.h"
#include "experiments/trainer/train_step.h"

namespace attnlab::experiments {
namespace {

struct RegisteredObjective {
  ObjectiveFactory factory;
  ReportedMetricsFn reported_metrics;
};

std::map<std::string, RegisteredObjective>& Registry() {
  static auto* registry = new std::map<std::string, RegisteredObjective>();
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

void RegisterObjective(const std::string& task_name, ObjectiveFactory factory,
                       ReportedMetricsFn reported_metrics) {
  Registry()[task_name] = {std::move(factory), std::move(reported_metrics)};
}

bool HasRegisteredObjective(const std::string& task_name) {
  return Registry().count(task_name) != 0;
}

absl::StatusOr<std::unique_ptr<Objective>> MakeObjective(const Config& config,
                                                         const CheckpointContents* resumed) {
  const auto registered = Registry().find(config.task().name);
  if (registered != Registry().end()) return registered->second.factory(config, resumed);
  return MakeSeq2SeqObjective(config, resumed);
}

absl::StatusOr<ReportedMetrics> ObjectiveReportedMetrics(const Config& config) {
  const auto registered = Registry().find(config.task().name);
  if (registered != Registry().end()) return registered->second.reported_metrics(config);
  return Seq2SeqReportedMetrics(config);
}

}  // namespace attnlab::experiments
