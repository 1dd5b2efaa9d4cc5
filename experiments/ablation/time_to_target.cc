#include "experiments/ablation/time_to_target.h"

#include <cmath>
#include <map>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace attnlab::experiments {
namespace {

bool IsValidation(const MetricsRecord& record) {
  return record.kind == "eval" && (record.split.empty() || record.split == "valid");
}

}  // namespace

std::optional<TargetReached> FirstReached(const std::vector<MetricsRecord>& records,
                                          const TimeTarget& target, int64_t final_step,
                                          double final_train_seconds) {
  // Validation evaluation seconds by step, and elapsed wall time by step.
  std::map<int64_t, double> evaluation_seconds, elapsed;
  elapsed[0] = 0.0;
  if (final_step > 0 && std::isfinite(final_train_seconds)) {
    elapsed[final_step] = final_train_seconds;
  }
  std::optional<int64_t> reached;
  for (const MetricsRecord& record : records) {
    if (!record.Has("step")) continue;
    const auto step = static_cast<int64_t>(record.Get("step"));
    const double seconds = record.Get("elapsed_seconds");
    if (std::isfinite(seconds)) elapsed[step] = seconds;
    if (!IsValidation(record)) continue;
    const double eval_seconds = record.Get("seconds");
    if (std::isfinite(eval_seconds)) evaluation_seconds[step] += eval_seconds;
    const double value = record.Get(target.metric);
    if (!reached && std::isfinite(value) &&
        (target.higher_is_better ? value >= target.value : value <= target.value)) {
      reached = step;
    }
  }
  if (!reached) return std::nullopt;
  // Training time at a logged step: its elapsed time minus the evaluations before it.
  const auto training = [&](int64_t step, double seconds) {
    for (auto it = evaluation_seconds.begin(); it != evaluation_seconds.end() && it->first < step;
         ++it) {
      seconds -= it->second;
    }
    return seconds;
  };
  const auto after = elapsed.lower_bound(*reached);
  if (after == elapsed.end()) return std::nullopt;
  if (after->first == *reached) return TargetReached{*reached, training(*reached, after->second)};
  const auto before = std::prev(after);  // elapsed[0] is there
  const double t0 = training(before->first, before->second);
  const double t1 = training(after->first, after->second);
  const double fraction = static_cast<double>(*reached - before->first) /
                          static_cast<double>(after->first - before->first);
  return TargetReached{*reached, t0 + fraction * (t1 - t0)};
}

std::string TimeTargetLabel(const TimeTarget& target) {
  return absl::StrCat(target.metric, target.higher_is_better ? " ≥ " : " ≤ ",
                      absl::StrFormat("%g", target.value));
}

std::string TimeTargetKey(const TimeTarget& target) {
  return absl::StrCat(target.metric, target.higher_is_better ? "_ge_" : "_le_",
                      absl::StrFormat("%g", target.value));
}

}  // namespace attnlab::experiments
