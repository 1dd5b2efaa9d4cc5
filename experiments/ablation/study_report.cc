#include "experiments/ablation/study_report.h"

#include <cmath>
#include <filesystem>
#include <map>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "experiments/ablation/time_to_target.h"
#include "experiments/report/html.h"
#include "experiments/report/report.h"
#include "experiments/report/svg_chart.h"

namespace attnlab::experiments {
namespace {

std::string Swatch(const std::string& color) {
  return absl::StrCat("<span class=\"swatch\" style=\"background:", color, "\"></span>");
}

bool IsTrain(const MetricsRecord& record) { return record.kind == "train"; }
bool IsValidation(const MetricsRecord& record) {
  return record.kind == "eval" && (record.split.empty() || record.split == "valid");
}

// One cell's curves of `key`: a thin line per seed and, bold, the mean over the seeds
// at each step (over the seeds that have a value at that step).
std::vector<ChartSeries> CellSeries(const CellRuns& cell, const std::string& color,
                                    bool (*keep)(const MetricsRecord&), const std::string& key) {
  std::vector<ChartSeries> series;
  std::map<double, std::pair<double, int>> sums;  // step -> (sum, count)
  for (const SeedRun& run : cell.finished) {
    ChartSeries seed;
    seed.color = color;
    seed.stroke_width = 1.0;
    seed.opacity = 0.35;
    for (const MetricsRecord& record : run.records) {
      if (!keep(record) || !record.Has(key) || !record.Has("step")) continue;
      const double step = record.Get("step"), value = record.Get(key);
      seed.x.push_back(step);
      seed.y.push_back(value);
      if (std::isfinite(value)) {
        sums[step].first += value;
        sums[step].second += 1;
      }
    }
    if (!seed.x.empty()) series.push_back(std::move(seed));
  }
  if (series.empty()) return series;
  ChartSeries mean;
  mean.name = cell.name;
  mean.color = color;
  mean.stroke_width = 2.6;
  for (const auto& [step, sum] : sums) {
    mean.x.push_back(step);
    mean.y.push_back(sum.first / sum.second);
  }
  mean.markers = mean.x.size() <= 12;
  series.push_back(std::move(mean));
  return series;
}

std::string Chart(const std::vector<CellRuns>& results, bool (*keep)(const MetricsRecord&),
                  const std::string& key, const std::string& title, AxisScale scale) {
  std::vector<ChartSeries> series;
  for (size_t c = 0; c < results.size(); ++c) {
    std::vector<ChartSeries> cell = CellSeries(results[c], ReportColor(c), keep, key);
    series.insert(series.end(), cell.begin(), cell.end());
  }
  if (series.empty()) return "";
  return RenderLineChart(series, StepChart(title, key, scale)) + "\n";
}

std::string SummaryTable(const StudySummary& summary) {
  std::string html = "<table>\n<tr><th>cell</th><th class=\"num\">seeds</th>";
  for (const std::string& metric : summary.metrics) {
    absl::StrAppend(&html, "<th class=\"num\">", HtmlEscape(metric),
                    "</th><th class=\"num\">Δ</th>");
  }
  absl::StrAppend(&html,
                  "<th class=\"num\">parameters</th><th class=\"num\">wall time (s)</th>"
                  "<th class=\"num\">tokens/s</th>");
  for (const TimeTarget& target : summary.time_to) {
    absl::StrAppend(&html, "<th class=\"num\">time to ", HtmlEscape(TimeTargetLabel(target)),
                    "</th>");
  }
  absl::StrAppend(&html, "<th>sets</th></tr>\n");
  for (size_t r = 0; r < summary.rows.size(); ++r) {
    const SummaryRow& row = summary.rows[r];
    absl::StrAppend(&html, "<tr><td style=\"white-space:nowrap\">", Swatch(ReportColor(r)),
                    HtmlEscape(row.cell), row.base ? " <span class=\"note\">(base)</span>" : "",
                    "</td><td class=\"num\">", row.finished,
                    row.finished == row.planned ? "" : absl::StrCat("/", row.planned), "</td>");
    for (size_t m = 0; m < summary.metrics.size(); ++m) {
      absl::StrAppend(&html, "<td class=\"num\" style=\"white-space:nowrap\">",
                      HtmlEscape(FormatMeanStd(row.metrics[m])), "</td><td class=\"num\">",
                      row.base ? "" : HtmlEscape(FormatDelta(row.deltas[m], row.metrics[m])),
                      "</td>");
    }
    const auto integer = [](double value) {
      return std::isfinite(value) ? absl::StrFormat("%d", std::llround(value)) : "–";
    };
    absl::StrAppend(&html, "<td class=\"num\">", integer(row.parameters.mean),
                    "</td><td class=\"num\" style=\"white-space:nowrap\">",
                    HtmlEscape(FormatMeanStd(row.wall_seconds)), "</td><td class=\"num\">",
                    integer(row.tokens_per_second.mean), "</td>");
    for (const TimeToTarget& time_to : row.time_to) {
      absl::StrAppend(&html, "<td class=\"num\" style=\"white-space:nowrap\">",
                      HtmlEscape(FormatTimeToTarget(time_to, row.finished)), "</td>");
    }
    absl::StrAppend(&html, "<td class=\"mono\">");
    for (const std::string& setting : row.settings)
      absl::StrAppend(&html, HtmlEscape(setting), " ");
    absl::StrAppend(&html, "</td></tr>\n");
  }
  return html + "</table>\n";
}

}  // namespace

std::string RenderStudyReport(const StudySummary& summary, const std::vector<CellRuns>& results) {
  std::string html = absl::StrCat(
      "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
      "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>",
      HtmlEscape(summary.study), " · attnlab study</title>\n<style>", ReportStylesheet(),
      "</style>\n</head>\n<body>\n<main>\n<h1>Study ", HtmlEscape(summary.study),
      "</h1>\n<p class=\"subtitle\">attnlab ablation study: ", HtmlEscape(summary.study_path),
      " on ", HtmlEscape(summary.base_config), "</p>\n");
  if (!summary.description.empty()) {
    absl::StrAppend(&html, "<p>", HtmlEscape(summary.description), "</p>\n");
  }
  absl::StrAppend(&html,
                  "<h2 id=\"summary\">Summary</h2>\n<p class=\"note\">Test metrics of each run's "
                  "best checkpoint: mean ± sample standard deviation over seeds (n − 1 in the "
                  "denominator). Δ: the cell's mean minus the base cell's.</p>\n",
                  SummaryTable(summary));
  std::string charts = Chart(results, IsTrain, "loss", "Training loss", AxisScale::kAuto);
  for (const std::string& metric : summary.metrics) {
    charts += Chart(results, IsValidation, metric, absl::StrCat("Validation ", metric),
                    metric == "loss" ? AxisScale::kAuto : AxisScale::kLinear);
  }
  if (!charts.empty()) {
    absl::StrAppend(
        &html,
        "<h2 id=\"curves\">Curves</h2>\n<p class=\"note\">One colour per cell; thin "
        "lines are single seeds, the bold line their mean.</p>\n<div class=\"charts\">\n",
        charts, "</div>\n");
  }
  absl::StrAppend(&html, "<h2 id=\"runs\">Runs</h2>\n<ul>\n");
  for (size_t c = 0; c < results.size(); ++c) {
    absl::StrAppend(&html, "<li>", Swatch(ReportColor(c)), HtmlEscape(results[c].name), ":");
    for (const SeedRun& run : results[c].finished) {
      const std::string link = std::filesystem::path(run.run_dir)
                                   .lexically_relative(summary.study_dir)
                                   .generic_string() +
                               "/report.html";
      absl::StrAppend(&html, " <a href=\"", HtmlEscape(link), "\">seed ", run.seed, "</a>");
    }
    absl::StrAppend(&html, "</li>\n");
  }
  absl::StrAppend(&html, "</ul>\n</main>\n</body>\n</html>\n");
  return html;
}

}  // namespace attnlab::experiments
