#include "experiments/trainer/step_checkpoints.h"

#include <algorithm>
#include <filesystem>
#include <system_error>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "framework/core/error.h"

namespace attnlab::experiments {
namespace fs = std::filesystem;
namespace {

constexpr absl::string_view kPrefix = "checkpoint_step_";
constexpr absl::string_view kSuffix = ".safetensors";

}  // namespace

std::string StepCheckpointName(int64_t step) { return absl::StrCat(kPrefix, step, kSuffix); }

absl::StatusOr<std::vector<int64_t>> StepCheckpointSteps(const std::string& run_dir) {
  std::vector<int64_t> steps;
  std::error_code error;
  for (fs::directory_iterator entry(run_dir, error), end; !error && entry != end;
       entry.increment(error)) {
    const std::string name = entry->path().filename().string();
    if (!absl::StartsWith(name, kPrefix) || !absl::EndsWith(name, kSuffix)) continue;
    const absl::string_view digits = absl::string_view(name).substr(
        kPrefix.size(), name.size() - kPrefix.size() - kSuffix.size());
    int64_t step = 0;
    // Only names the trainer writes: decimal digits, no sign, no leading zeros.
    if (digits.empty() || !std::all_of(digits.begin(), digits.end(), absl::ascii_isdigit) ||
        (digits.size() > 1 && digits[0] == '0') || !absl::SimpleAtoi(digits, &step)) {
      continue;
    }
    steps.push_back(step);
  }
  if (error) return absl::InternalError(absl::StrCat(run_dir, ": ", error.message()));
  std::sort(steps.begin(), steps.end());
  return steps;
}

absl::Status PruneStepCheckpoints(const std::string& run_dir, int64_t step, int64_t keep) {
  ASSIGN_OR_RETURN(const std::vector<int64_t> steps, StepCheckpointSteps(run_dir));
  // Kept: the `keep` largest steps <= step.
  const auto after = std::upper_bound(steps.begin(), steps.end(), step);
  const int64_t kept_from =
      std::max<int64_t>(0, static_cast<int64_t>(after - steps.begin()) - keep);
  for (size_t i = 0; i < steps.size(); ++i) {
    const bool kept = static_cast<int64_t>(i) >= kept_from && steps[i] <= step;
    if (kept) continue;
    const fs::path path = fs::path(run_dir) / StepCheckpointName(steps[i]);
    std::error_code error;
    fs::remove(path, error);
    if (error) {
      return absl::InternalError(
          absl::StrCat(path.string(), ": cannot remove an old step checkpoint: ", error.message()));
    }
  }
  return absl::OkStatus();
}

}  // namespace attnlab::experiments
