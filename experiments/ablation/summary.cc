#include "experiments/ablation/summary.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "experiments/ablation/time_to_target.h"
#include "experiments/report/html.h"

namespace attnlab::experiments {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// Decimals that show a standard deviation to two significant digits; -1 when it does not
// say (one seed, or every seed equal): then numbers get 4 significant digits.
int Decimals(const Statistic& statistic) {
  if (!std::isfinite(statistic.std) || statistic.std <= 0) return -1;
  const int decimals = 1 - static_cast<int>(std::floor(std::log10(statistic.std)));
  return std::clamp(decimals, 0, 6);
}

std::string Fixed(double value, int decimals) {
  if (decimals < 0) return FormatNumber(value, 4);
  return absl::StrFormat("%.*f", decimals, value);
}

std::string Csv(double value) {
  return std::isfinite(value) ? absl::StrFormat("%.10g", value) : "";
}

// A CSV field: quoted when it holds a comma, a quote or a line break.
std::string CsvText(const std::string& text) {
  if (text.find_first_of(",\"\n") == std::string::npos) return text;
  std::string quoted = "\"";
  for (const char c : text) {
    if (c == '"') quoted += '"';
    quoted += c;
  }
  return quoted + "\"";
}

}  // namespace

Statistic MeanAndSampleStd(const std::vector<double>& values) {
  Statistic statistic;
  double sum = 0.0;
  for (const double value : values) {
    if (!std::isfinite(value)) continue;
    sum += value;
    ++statistic.n;
  }
  if (statistic.n == 0) return {0, kNaN, kNaN};
  statistic.mean = sum / static_cast<double>(statistic.n);
  if (statistic.n < 2) {
    statistic.std = kNaN;
    return statistic;
  }
  double squares = 0.0;
  for (const double value : values) {
    if (std::isfinite(value)) squares += (value - statistic.mean) * (value - statistic.mean);
  }
  statistic.std = std::sqrt(squares / static_cast<double>(statistic.n - 1));
  return statistic;
}

std::string FormatMeanStd(const Statistic& statistic) {
  if (statistic.n == 0) return "–";
  const int decimals = Decimals(statistic);
  if (statistic.n < 2) return Fixed(statistic.mean, decimals);
  return absl::StrCat(Fixed(statistic.mean, decimals), " ± ", Fixed(statistic.std, decimals));
}

std::string FormatDelta(double delta, const Statistic& reference) {
  if (!std::isfinite(delta)) return "–";
  const std::string text = Fixed(std::fabs(delta), Decimals(reference));
  if (text.find_first_not_of("0.") == std::string::npos) return text;  // rounds to zero
  return absl::StrCat(delta < 0 ? "-" : "+", text);
}

std::string FormatTimeToTarget(const TimeToTarget& time_to, size_t runs) {
  if (time_to.reached == 0) return "–";
  std::string text = absl::StrCat(FormatMeanStd(time_to.seconds), " s");
  if (time_to.reached < runs) absl::StrAppend(&text, " (", time_to.reached, "/", runs, ")");
  return text;
}

StudySummary Summarize(const StudyPlan& plan, const std::vector<CellRuns>& results) {
  StudySummary summary;
  summary.study = plan.study.name;
  summary.description = plan.study.description;
  summary.study_path = plan.study.path;
  summary.base_config = plan.study.base_config;
  summary.study_dir = plan.study_dir;
  summary.seeds = plan.study.seeds;
  summary.metrics = plan.study.metrics;
  summary.time_to = plan.study.time_to;
  summary.base_row = plan.base_cell;
  for (size_t c = 0; c < results.size(); ++c) {
    const CellRuns& cell = results[c];
    SummaryRow row;
    row.cell = cell.name;
    row.base = cell.base;
    row.finished = cell.finished.size();
    row.planned = cell.planned;
    // The base cell's settings in full, the others' where they differ from it.
    for (const std::string& setting : plan.cells[c].levels) {
      const std::vector<std::string>& base = plan.cells[plan.base_cell].levels;
      if (c == plan.base_cell || std::find(base.begin(), base.end(), setting) == base.end()) {
        row.settings.push_back(setting);
      }
    }
    for (const std::string& metric : summary.metrics) {
      std::vector<double> values;
      for (const SeedRun& run : cell.finished) {
        const auto it = run.result.test_metrics.find(metric);
        values.push_back(it == run.result.test_metrics.end() ? kNaN : it->second);
      }
      row.metrics.push_back(MeanAndSampleStd(values));
    }
    std::vector<double> parameters, wall, throughput;
    for (const SeedRun& run : cell.finished) {
      parameters.push_back(run.result.parameters >= 0 ? static_cast<double>(run.result.parameters)
                                                      : kNaN);
      wall.push_back(run.result.wall_seconds);
      throughput.push_back(run.tokens_per_second);
    }
    row.parameters = MeanAndSampleStd(parameters);
    row.wall_seconds = MeanAndSampleStd(wall);
    row.tokens_per_second = MeanAndSampleStd(throughput);
    for (const TimeTarget& target : summary.time_to) {
      std::vector<double> seconds, steps;
      for (const SeedRun& run : cell.finished) {
        const std::optional<TargetReached> reached =
            FirstReached(run.records, target, run.result.steps, run.result.train_seconds);
        if (!reached) continue;
        seconds.push_back(reached->seconds);
        steps.push_back(static_cast<double>(reached->step));
      }
      row.time_to.push_back({MeanAndSampleStd(seconds), MeanAndSampleStd(steps), seconds.size()});
    }
    summary.rows.push_back(std::move(row));
  }
  const SummaryRow& base = summary.rows[summary.base_row];
  for (SummaryRow& row : summary.rows) {
    for (size_t m = 0; m < summary.metrics.size(); ++m) {
      const double delta = row.metrics[m].mean - base.metrics[m].mean;
      row.deltas.push_back(row.base || !std::isfinite(delta) ? kNaN : delta);
    }
  }
  return summary;
}

std::string SummaryMarkdown(const StudySummary& summary) {
  const SummaryRow& base = summary.rows[summary.base_row];
  std::vector<std::string> seeds;
  for (const int64_t seed : summary.seeds) seeds.push_back(absl::StrCat(seed));
  std::string md = absl::StrCat("# Study `", summary.study, "`\n\n");
  if (!summary.description.empty()) absl::StrAppend(&md, summary.description, "\n\n");
  absl::StrAppend(&md, "Study file `", summary.study_path, "`, base config `", summary.base_config,
                  "`, seeds ", absl::StrJoin(seeds, ", "), "; runs in `", summary.study_dir,
                  "/<cell>/seed-<n>/`.\n\n");
  absl::StrAppend(
      &md,
      "Test metrics of each run's best checkpoint: mean ± sample standard deviation over "
      "seeds (n − 1 in the denominator; the mean alone for one seed). Δ: the cell's mean "
      "minus the base cell's (`",
      base.cell,
      "`). Wall time: training and evaluation per run; tokens/s: target tokens per second "
      "of training (each run's median); both means over seeds.\n\n");
  if (!summary.time_to.empty()) {
    absl::StrAppend(
        &md,
        "Time to a target: training time (validation evaluations excluded) until the first "
        "validation evaluation at or past the target, mean ± std over the seeds that reached "
        "it; (k/n) when only k of the n finished seeds did.\n\n");
  }
  absl::StrAppend(&md, "| cell | seeds |");
  std::string rule = "|---|---:|";
  for (const std::string& metric : summary.metrics) {
    absl::StrAppend(&md, " ", metric, " | Δ |");
    absl::StrAppend(&rule, "---:|---:|");
  }
  absl::StrAppend(&md, " parameters | wall time | tokens/s |");
  absl::StrAppend(&rule, "---:|---:|---:|");
  for (const TimeTarget& target : summary.time_to) {
    absl::StrAppend(&md, " time to ", TimeTargetLabel(target), " |");
    absl::StrAppend(&rule, "---:|");
  }
  absl::StrAppend(&md, "\n", rule, "\n");
  for (const SummaryRow& row : summary.rows) {
    absl::StrAppend(&md, "| ", row.base ? absl::StrCat("**", row.cell, "** (base)") : row.cell,
                    " | ",
                    row.finished == row.planned ? absl::StrCat(row.finished)
                                                : absl::StrCat(row.finished, "/", row.planned),
                    " |");
    for (size_t m = 0; m < summary.metrics.size(); ++m) {
      absl::StrAppend(&md, " ", FormatMeanStd(row.metrics[m]), " | ",
                      row.base ? "" : FormatDelta(row.deltas[m], row.metrics[m]), " |");
    }
    absl::StrAppend(&md, " ",
                    std::isfinite(row.parameters.mean)
                        ? absl::StrFormat("%d", std::llround(row.parameters.mean))
                        : "–",
                    " | ", FormatWallTime(row.wall_seconds.mean), " | ",
                    std::isfinite(row.tokens_per_second.mean)
                        ? absl::StrFormat("%d", std::llround(row.tokens_per_second.mean))
                        : "–",
                    " |");
    for (const TimeToTarget& time_to : row.time_to) {
      absl::StrAppend(&md, " ", FormatTimeToTarget(time_to, row.finished), " |");
    }
    absl::StrAppend(&md, "\n");
  }
  absl::StrAppend(&md, "\n## Cells\n\n| cell | sets |\n|---|---|\n");
  for (const SummaryRow& row : summary.rows) {
    std::vector<std::string> settings;
    for (const std::string& setting : row.settings)
      settings.push_back(absl::StrCat("`", setting, "`"));
    absl::StrAppend(&md, "| ", row.cell, " | ", absl::StrJoin(settings, " "), " |\n");
  }
  return md;
}

std::string SummaryCsv(const StudySummary& summary) {
  std::string csv = "cell,base,seeds_finished,seeds_planned";
  for (const std::string& metric : summary.metrics) {
    absl::StrAppend(&csv, ",", CsvText(metric + "_mean"), ",", CsvText(metric + "_std"), ",",
                    CsvText(metric + "_delta"));
  }
  absl::StrAppend(&csv, ",parameters,wall_seconds_mean,tokens_per_second_mean");
  for (const TimeTarget& target : summary.time_to) {
    const std::string key = absl::StrCat("time_to_", TimeTargetKey(target));
    absl::StrAppend(&csv, ",", CsvText(key + "_seconds_mean"), ",", CsvText(key + "_seconds_std"),
                    ",", CsvText(key + "_step_mean"), ",", CsvText(key + "_reached"));
  }
  absl::StrAppend(&csv, "\n");
  for (const SummaryRow& row : summary.rows) {
    absl::StrAppend(&csv, CsvText(row.cell), ",", row.base ? "true" : "false", ",", row.finished,
                    ",", row.planned);
    for (size_t m = 0; m < summary.metrics.size(); ++m) {
      absl::StrAppend(&csv, ",", Csv(row.metrics[m].mean), ",", Csv(row.metrics[m].std), ",",
                      Csv(row.deltas[m]));
    }
    absl::StrAppend(&csv, ",", Csv(row.parameters.mean), ",", Csv(row.wall_seconds.mean), ",",
                    Csv(row.tokens_per_second.mean));
    for (const TimeToTarget& time_to : row.time_to) {
      absl::StrAppend(&csv, ",", Csv(time_to.seconds.mean), ",", Csv(time_to.seconds.std), ",",
                      Csv(time_to.step.mean), ",", time_to.reached);
    }
    absl::StrAppend(&csv, "\n");
  }
  return csv;
}

}  // namespace attnlab::experiments
