// report.html of a study: one self-contained page (inline CSS and SVG, no JavaScript) in
// the style of the run report (experiments/report/): the summary table, then for the
// training loss and for each of the study's metrics that the runs evaluate on the
// validation split, one chart overlaying the cells — one colour per cell, every seed a
// thin line, the cell's mean over its seeds a bold one — and links to every run's own
// report.
#pragma once

#include <string>
#include <vector>

#include "experiments/ablation/study_results.h"
#include "experiments/ablation/summary.h"

namespace attnlab::experiments {

// `results` and `summary` of the same plan; run links are relative to summary.study_dir.
std::string RenderStudyReport(const StudySummary& summary, const std::vector<CellRuns>& results);

}  // namespace attnlab::experiments
