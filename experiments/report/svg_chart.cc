#include "experiments/report/svg_chart.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "experiments/report/html.h"

namespace attnlab::experiments {
namespace {

constexpr double kTickFont = 11;
constexpr double kLabelFont = 12;
constexpr double kTitleFont = 14;
constexpr double kLegendRow = 18;
constexpr const char* kAxisColor = "#444";
constexpr const char* kGridColor = "#e4e4e4";

// One axis: its domain (in log10 units on a log axis), its ticks (data values) and the
// pixel range it maps to.
struct Axis {
  bool log = false;
  double low = 0, high = 1;
  std::vector<double> ticks;
  double pixel_low = 0, pixel_high = 1;  // pixel of `low` and of `high`

  double Pixel(double value) const {
    const double v = log ? std::log10(value) : value;
    return pixel_low + (v - low) / (high - low) * (pixel_high - pixel_low);
  }
};

Axis LinearAxis(double low, double high, int max_ticks) {
  if (!(high > low)) {
    const double span = low != 0 ? std::fabs(low) * 0.5 : 1.0;
    low -= span;
    high += span;
  }
  Axis axis;
  axis.ticks = NiceTicks(low, high, max_ticks);
  axis.low = axis.ticks.front();
  axis.high = axis.ticks.back();
  return axis;
}

// 1, 2 and 5 times powers of ten, from below `low` to above `high` (both positive).
std::vector<double> OneTwoFive(double low, double high) {
  std::vector<double> values;
  for (int exponent = static_cast<int>(std::floor(std::log10(low))) - 1;
       exponent <= static_cast<int>(std::ceil(std::log10(high))) + 1; ++exponent) {
    for (const double mantissa : {1.0, 2.0, 5.0}) {
      values.push_back(mantissa * std::pow(10.0, exponent));
    }
  }
  return values;
}

Axis LogAxis(double low, double high) {
  Axis axis;
  axis.log = true;
  const std::vector<double> candidates = OneTwoFive(low, high);
  // The domain: the nearest 1-2-5 values around the data.
  double domain_low = candidates.front(), domain_high = candidates.back();
  for (const double c : candidates) {
    if (c <= low * (1 + 1e-9)) domain_low = c;
  }
  for (auto it = candidates.rbegin(); it != candidates.rend(); ++it) {
    if (*it >= high * (1 - 1e-9)) domain_high = *it;
  }
  if (domain_high <= domain_low) domain_high = domain_low * 2;
  for (const double c : candidates) {
    if (c >= domain_low * (1 - 1e-9) && c <= domain_high * (1 + 1e-9)) axis.ticks.push_back(c);
  }
  if (axis.ticks.size() > 8) {  // many decades: label the powers of ten only
    std::vector<double> decades;
    for (const double t : axis.ticks) {
      const double exponent = std::log10(t);
      if (std::fabs(exponent - std::round(exponent)) < 1e-9) decades.push_back(t);
    }
    if (decades.size() >= 2) axis.ticks = decades;
  }
  axis.low = std::log10(domain_low);
  axis.high = std::log10(domain_high);
  return axis;
}

std::string Num(double value) { return absl::StrFormat("%.1f", value); }

std::string Text(double x, double y, const std::string& text, const std::string& attributes) {
  return absl::StrCat("<text x=\"", Num(x), "\" y=\"", Num(y), "\" ", attributes, ">",
                      HtmlEscape(text), "</text>");
}

std::string Line(double x1, double y1, double x2, double y2, const std::string& attributes) {
  return absl::StrCat("<line x1=\"", Num(x1), "\" y1=\"", Num(y1), "\" x2=\"", Num(x2), "\" y2=\"",
                      Num(y2), "\" ", attributes, "/>");
}

bool Drawable(double y, bool log) { return std::isfinite(y) && (!log || y > 0); }

}  // namespace

std::vector<double> NiceTicks(double low, double high, int max_ticks) {
  if (!(high > low)) high = low + 1;
  max_ticks = std::max(max_ticks, 2);
  const double raw_step = (high - low) / (max_ticks - 1);
  const double magnitude = std::pow(10.0, std::floor(std::log10(raw_step)));
  const double ratio = raw_step / magnitude;
  const double step = (ratio <= 1 ? 1 : ratio <= 2 ? 2 : ratio <= 5 ? 5 : 10) * magnitude;
  const double first = std::floor(low / step + 1e-9);
  const double last = std::ceil(high / step - 1e-9);
  std::vector<double> ticks;
  for (double i = first; i <= last; i += 1) {
    const double tick = i * step;
    ticks.push_back(std::fabs(tick) < step * 1e-9 ? 0.0 : tick);
  }
  if (ticks.size() < 2) ticks.push_back(ticks.back() + step);
  return ticks;
}

std::string FormatTick(double value, bool thousands) {
  if (thousands && value != 0) return absl::StrCat(FormatNumber(value / 1000, 4), "k");
  return FormatNumber(value, 6);
}

ChartOptions StepChart(const std::string& title, const std::string& y_label, AxisScale y_scale) {
  ChartOptions options;
  options.title = title;
  options.x_label = "step";
  options.y_label = y_label;
  options.y_scale = y_scale;
  options.x_from_zero = true;
  return options;
}

std::string RenderLineChart(const std::vector<ChartSeries>& series, const ChartOptions& options) {
  // Data ranges.
  constexpr double kInf = std::numeric_limits<double>::infinity();
  double x_low = kInf, x_high = -kInf, y_low = kInf, y_high = -kInf;
  bool all_positive = true;
  for (const ChartSeries& s : series) {
    for (size_t i = 0; i < std::min(s.x.size(), s.y.size()); ++i) {
      if (!std::isfinite(s.x[i]) || !std::isfinite(s.y[i])) continue;
      x_low = std::min(x_low, s.x[i]);
      x_high = std::max(x_high, s.x[i]);
      y_low = std::min(y_low, s.y[i]);
      y_high = std::max(y_high, s.y[i]);
      all_positive = all_positive && s.y[i] > 0;
    }
  }
  const bool has_data = x_low <= x_high;
  if (!has_data) x_low = y_low = 0, x_high = y_high = 1;
  bool log = options.y_scale == AxisScale::kLog;
  if (options.y_scale == AxisScale::kAuto) log = has_data && all_positive && y_high >= 30 * y_low;
  if (log && !(has_data && all_positive)) {
    // Only positive values can be drawn on a log axis: take their range.
    double positive_low = kInf, positive_high = -kInf;
    for (const ChartSeries& s : series) {
      for (const double y : s.y) {
        if (std::isfinite(y) && y > 0) {
          positive_low = std::min(positive_low, y);
          positive_high = std::max(positive_high, y);
        }
      }
    }
    if (positive_low <= positive_high) {
      y_low = positive_low, y_high = positive_high;
    } else {
      log = false;
    }
  }

  if (options.x_from_zero && x_low > 0) x_low = 0;
  Axis x_axis = LinearAxis(x_low, x_high, std::max(3, options.width / 90));
  Axis y_axis = log ? LogAxis(y_low, y_high) : LinearAxis(y_low, y_high, 6);
  const auto max_abs = [](const std::vector<double>& ticks) {
    double m = 0;
    for (const double t : ticks) m = std::max(m, std::fabs(t));
    return m;
  };
  const bool x_thousands = max_abs(x_axis.ticks) >= 10000;
  const bool y_thousands = !log && max_abs(y_axis.ticks) >= 10000;

  // Layout.
  double y_tick_width = 0;
  for (const double t : y_axis.ticks) {
    y_tick_width = std::max(y_tick_width, EstimateTextWidth(FormatTick(t, y_thousands), kTickFont));
  }
  const double left = 8 + (options.y_label.empty() ? 0 : kLabelFont + 8) + y_tick_width + 8;
  const double right = 20;
  const double top = options.title.empty() ? 12 : 34;
  const double bottom = 8 + kTickFont + 6 + (options.x_label.empty() ? 0 : kLabelFont + 10);
  const double plot_left = left, plot_right = options.width - right;
  const double plot_top = top, plot_bottom = options.height - bottom;
  x_axis.pixel_low = plot_left;
  x_axis.pixel_high = plot_right;
  y_axis.pixel_low = plot_bottom;
  y_axis.pixel_high = plot_top;

  // Legend entries flow left to right below the chart, wrapping into rows.
  struct LegendEntry {
    const ChartSeries* series;
    double x, y;
  };
  std::vector<LegendEntry> legend;
  double legend_x = plot_left, legend_row = 0;
  for (const ChartSeries& s : series) {
    if (s.name.empty()) continue;
    const double entry_width = 28 + EstimateTextWidth(s.name, kLabelFont) + 18;
    if (legend_x + entry_width > options.width - 8 && legend_x > plot_left) {
      legend_x = plot_left;
      legend_row += 1;
    }
    legend.push_back({&s, legend_x, options.height + 4 + legend_row * kLegendRow});
    legend_x += entry_width;
  }
  const double total_height =
      options.height + (legend.empty() ? 0 : (legend_row + 1) * kLegendRow + 8);

  std::string svg = absl::StrFormat(
      "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"chart\" width=\"%d\" height=\"%d\" "
      "viewBox=\"0 0 %d %d\" font-family=\"system-ui, -apple-system, 'Segoe UI', Helvetica, "
      "Arial, sans-serif\" font-size=\"%g\" role=\"img\">\n",
      options.width, static_cast<int>(total_height), options.width, static_cast<int>(total_height),
      kTickFont);
  if (!options.title.empty()) {
    absl::StrAppend(&svg, "<title>", HtmlEscape(options.title), "</title>\n");
    absl::StrAppend(&svg,
                    Text(plot_left, 20, options.title,
                         absl::StrFormat("font-size=\"%g\" font-weight=\"600\" "
                                         "fill=\"#222\"",
                                         kTitleFont)),
                    "\n");
  }
  // Grid lines and tick labels.
  for (const double t : y_axis.ticks) {
    const double y = y_axis.Pixel(t);
    absl::StrAppend(
        &svg, Line(plot_left, y, plot_right, y, absl::StrCat("stroke=\"", kGridColor, "\"")),
        Line(plot_left - 4, y, plot_left, y, absl::StrCat("stroke=\"", kAxisColor, "\"")),
        Text(plot_left - 7, y + 4, FormatTick(t, y_thousands), "text-anchor=\"end\" fill=\"#333\""),
        "\n");
  }
  for (const double t : x_axis.ticks) {
    const double x = x_axis.Pixel(t);
    absl::StrAppend(
        &svg, Line(x, plot_top, x, plot_bottom, absl::StrCat("stroke=\"", kGridColor, "\"")),
        Line(x, plot_bottom, x, plot_bottom + 4, absl::StrCat("stroke=\"", kAxisColor, "\"")),
        Text(x, plot_bottom + 6 + kTickFont, FormatTick(t, x_thousands),
             "text-anchor=\"middle\" fill=\"#333\""),
        "\n");
  }
  // Axes.
  absl::StrAppend(&svg,
                  Line(plot_left, plot_bottom, plot_right, plot_bottom,
                       absl::StrCat("class=\"axis\" stroke=\"", kAxisColor, "\"")),
                  Line(plot_left, plot_top, plot_left, plot_bottom,
                       absl::StrCat("class=\"axis\" stroke=\"", kAxisColor, "\"")),
                  "\n");
  if (!options.x_label.empty()) {
    absl::StrAppend(&svg,
                    Text((plot_left + plot_right) / 2, options.height - 8, options.x_label,
                         absl::StrFormat("class=\"axis-label\" text-anchor=\"middle\" "
                                         "font-size=\"%g\" fill=\"#222\"",
                                         kLabelFont)),
                    "\n");
  }
  if (!options.y_label.empty()) {
    const double x = 8 + kLabelFont - 2, y = (plot_top + plot_bottom) / 2;
    absl::StrAppend(&svg,
                    Text(x, y, options.y_label,
                         absl::StrFormat("class=\"axis-label\" text-anchor=\"middle\" "
                                         "font-size=\"%g\" fill=\"#222\" "
                                         "transform=\"rotate(-90 %s %s)\"",
                                         kLabelFont, Num(x), Num(y))),
                    "\n");
  }
  // Series: one <path> each (a non-drawable value starts a new subpath).
  for (const ChartSeries& s : series) {
    std::string d, markers;
    bool pen_down = false;
    for (size_t i = 0; i < std::min(s.x.size(), s.y.size()); ++i) {
      if (!std::isfinite(s.x[i]) || !Drawable(s.y[i], log)) {
        pen_down = false;
        continue;
      }
      const double x = x_axis.Pixel(s.x[i]), y = y_axis.Pixel(s.y[i]);
      absl::StrAppend(&d, pen_down ? "L" : "M", Num(x), " ", Num(y));
      pen_down = true;
      if (s.markers) {
        absl::StrAppend(&markers, "<circle cx=\"", Num(x), "\" cy=\"", Num(y),
                        "\" r=\"2.6\" fill=\"", HtmlEscape(s.color), "\"/>");
      }
    }
    if (d.empty()) continue;
    // Dense (often noisy) series get a thinner line, so that overlaid runs stay apart.
    const double stroke_width = s.stroke_width > 0 ? s.stroke_width : s.x.size() > 300 ? 1.2 : 1.8;
    absl::StrAppend(&svg, "<path class=\"series\" d=\"", d, "\" fill=\"none\" stroke=\"",
                    HtmlEscape(s.color), "\" stroke-width=\"", absl::StrFormat("%g", stroke_width),
                    "\" stroke-linejoin=\"round\"", s.dashed ? " stroke-dasharray=\"5 3\"" : "",
                    s.opacity < 1 ? absl::StrFormat(" stroke-opacity=\"%g\"", s.opacity) : "", ">");
    if (!s.name.empty()) absl::StrAppend(&svg, "<title>", HtmlEscape(s.name), "</title>");
    absl::StrAppend(&svg, "</path>", markers, "\n");
  }
  for (const LegendEntry& entry : legend) {
    const double y = entry.y + kLegendRow / 2;
    absl::StrAppend(
        &svg,
        Line(entry.x, y - 4, entry.x + 22, y - 4,
             absl::StrCat("stroke=\"", HtmlEscape(entry.series->color), "\" stroke-width=\"2.4\"",
                          entry.series->dashed ? " stroke-dasharray=\"5 3\"" : "")),
        Text(entry.x + 28, y, entry.series->name,
             absl::StrFormat("class=\"legend\" font-size=\"%g\" fill=\"#222\"", kLabelFont)),
        "\n");
  }
  absl::StrAppend(&svg, "</svg>");
  return svg;
}

}  // namespace attnlab::experiments
