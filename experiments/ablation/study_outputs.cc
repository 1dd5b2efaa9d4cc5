#include "experiments/ablation/study_outputs.h"

#include <filesystem>

#include "absl/strings/str_cat.h"
#include "experiments/ablation/study_report.h"
#include "experiments/ablation/study_results.h"
#include "experiments/ablation/summary.h"
#include "framework/core/error.h"
#include "framework/io/atomic_file.h"

namespace attnlab::experiments {

absl::StatusOr<std::string> WriteStudyOutputs(const StudyPlan& plan) {
  namespace fs = std::filesystem;
  ASSIGN_OR_RETURN(const std::vector<CellRuns> results, LoadStudyResults(plan));
  const StudySummary summary = Summarize(plan, results);
  const std::string markdown = SummaryMarkdown(summary);
  std::error_code error;
  fs::create_directories(plan.study_dir, error);
  if (error) return absl::InternalError(absl::StrCat(plan.study_dir, ": ", error.message()));
  const fs::path dir(plan.study_dir);
  RETURN_IF_ERROR(WriteFileAtomically((dir / "summary.md").string(), markdown));
  RETURN_IF_ERROR(WriteFileAtomically((dir / "summary.csv").string(), SummaryCsv(summary)));
  RETURN_IF_ERROR(
      WriteFileAtomically((dir / "report.html").string(), RenderStudyReport(summary, results)));
  return markdown;
}

}  // namespace attnlab::experiments
