// The summary of a study: one row per cell with, for each metric, the mean and the
// sample standard deviation over seeds (n - 1 in the denominator: the seeds are a sample
// of the runs one could have made) and the difference of the mean to the base cell's;
// and the parameter count, wall time and training throughput; and, for each `time_to`
// target, the training time to it over the seeds that reached it. As markdown (summary.md)
// and CSV (summary.csv, full precision, empty fields for undefined values).
#pragma once

#include <string>
#include <vector>

#include "experiments/ablation/plan.h"
#include "experiments/ablation/study_results.h"

namespace attnlab::experiments {

struct Statistic {
  int64_t n = 0;
  double mean = 0.0;  // NaN when n = 0
  double std = 0.0;   // sample standard deviation; NaN when n < 2
};

// Non-finite values (a diverged run's NaN) are left out.
Statistic MeanAndSampleStd(const std::vector<double>& values);

struct TimeToTarget {
  Statistic seconds;  // over the seeds that reached the target
  Statistic step;
  size_t reached = 0;
};

struct SummaryRow {
  std::string cell;
  bool base = false;
  size_t finished = 0, planned = 0;
  std::vector<Statistic> metrics;  // in the study's metric order
  std::vector<double> deltas;      // mean - base cell's mean, per metric (NaN if undefined)
  Statistic parameters, wall_seconds, tokens_per_second;
  std::vector<TimeToTarget> time_to;  // in the study's time_to order
  // What the cell sets ("model.attention=\"dot\""): all of it for the base cell, what
  // differs from the base cell for the others.
  std::vector<std::string> settings;
};

struct StudySummary {
  std::string study, description, study_path, base_config, study_dir;
  std::vector<int64_t> seeds;
  std::vector<std::string> metrics;
  std::vector<TimeTarget> time_to;
  std::vector<SummaryRow> rows;  // plan order
  size_t base_row = 0;
};

StudySummary Summarize(const StudyPlan& plan, const std::vector<CellRuns>& results);

// "93.4 ± 1.2": both to the decimal of the standard deviation's second significant digit
// (at most 6 decimals); "93.4" with one seed, "–" with none.
std::string FormatMeanStd(const Statistic& statistic);
// "+1.25", "-0.031", "0": with the decimals FormatMeanStd uses for `reference`.
std::string FormatDelta(double delta, const Statistic& reference);
// "312 ± 25 s", with " (2/3)" when `reached` < `runs` seeds reached it; "–" when none did.
std::string FormatTimeToTarget(const TimeToTarget& time_to, size_t runs);

std::string SummaryMarkdown(const StudySummary& summary);
std::string SummaryCsv(const StudySummary& summary);

}  // namespace attnlab::experiments
