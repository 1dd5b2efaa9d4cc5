// Line charts as inline SVG (no JavaScript, no external assets): a title, axes with
// "nice" ticks (1, 2 or 5 times a power of ten), light grid lines, axis labels, one
// <path> per series (several series overlay, e.g. one colour per run) and a legend below.
//
//   ChartSeries train{.name = "copy/base", .color = "#1f77b4", .x = steps, .y = losses};
//   std::string svg = RenderLineChart({train}, {.title = "Training loss", .x_label = "step",
//                                               .y_label = "loss"});
#pragma once

#include <string>
#include <vector>

namespace attnlab::experiments {

struct ChartSeries {
  std::string name;          // legend entry and hover title; "" keeps it out of the legend
  std::string color;         // any CSS colour
  std::vector<double> x, y;  // same length; a non-finite y (or y <= 0 on a log axis) is a gap
  bool dashed = false;
  bool markers = false;  // a dot at each point (for sparse series such as evaluations)
  // Line width in pixels; 0 picks one from the density (thinner for long, noisy series).
  double stroke_width = 0.0;
  double opacity = 1.0;  // < 1 for background lines (e.g. single seeds behind their mean)
};

enum class AxisScale {
  kLinear,
  kLog,
  kAuto,  // log when every y is positive and they span at least a factor of 30
};

struct ChartOptions {
  std::string title;
  std::string x_label;
  std::string y_label;
  int width = 520;   // pixels of the whole chart
  int height = 300;  // pixels of the chart without its legend
  AxisScale y_scale = AxisScale::kLinear;
  bool x_from_zero = false;  // the x axis starts at 0 (e.g. steps), whatever the first x
};

// A chart of a value against the training step: x labelled "step" and starting at 0.
ChartOptions StepChart(const std::string& title, const std::string& y_label,
                       AxisScale y_scale = AxisScale::kLinear);

// The chart as an <svg> element. Series with no finite points draw nothing (but keep
// their legend entry); with no points at all the axes span [0, 1].
std::string RenderLineChart(const std::vector<ChartSeries>& series, const ChartOptions& options);

// Ticks from about `low` to `high` at a step of 1, 2 or 5 times a power of ten, at most
// about `max_ticks` of them; the first tick is <= low and the last >= high.
std::vector<double> NiceTicks(double low, double high, int max_ticks);

// A tick label: "0.25", "1e-05", "12k" (values of 10000 and more in thousands when
// `thousands`).
std::string FormatTick(double value, bool thousands);

}  // namespace attnlab::experiments
