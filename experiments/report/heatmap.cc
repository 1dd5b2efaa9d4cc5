#include "experiments/report/heatmap.h"

#include <algorithm>
#include <cmath>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "experiments/report/html.h"
#include "framework/core/error.h"

namespace attnlab::experiments {
namespace {

// Entries 0, 16, 32, ..., 240 and 255 of matplotlib's 256-entry viridis table
// (_viridis_data in matplotlib/_cm_listed.py, CC0), as sRGB fractions.
constexpr double kViridisAnchors[17][3] = {
    {0.267004, 0.004874, 0.329415}, {0.282327, 0.094955, 0.417331}, {0.278826, 0.175490, 0.483397},
    {0.258965, 0.251537, 0.524736}, {0.229739, 0.322361, 0.545706}, {0.199430, 0.387607, 0.554642},
    {0.172719, 0.448791, 0.557885}, {0.149039, 0.508051, 0.557250}, {0.127568, 0.566949, 0.550556},
    {0.120638, 0.625828, 0.533488}, {0.157851, 0.683765, 0.501686}, {0.246070, 0.738910, 0.452024},
    {0.369214, 0.788888, 0.382914}, {0.515992, 0.831158, 0.294279}, {0.678489, 0.863742, 0.189503},
    {0.845561, 0.887322, 0.099702}, {0.993248, 0.906157, 0.143936},
};

// Table index of each anchor.
constexpr double AnchorIndex(int anchor) { return anchor == 16 ? 255.0 : anchor * 16.0; }

uint8_t ToByte(double fraction) {
  return static_cast<uint8_t>(std::clamp(std::lround(fraction * 255.0), 0L, 255L));
}

constexpr double kTokenFontMax = 12;
constexpr double kTitleFont = 12;

}  // namespace

Rgb Viridis(double t) {
  if (!(t > 0)) t = 0;  // also NaN
  if (t > 1) t = 1;
  const double index = t * 255.0;
  int anchor = 0;
  while (anchor < 15 && AnchorIndex(anchor + 1) < index) ++anchor;
  const double a = AnchorIndex(anchor), b = AnchorIndex(anchor + 1);
  const double w = (index - a) / (b - a);
  const double* lo = kViridisAnchors[anchor];
  const double* hi = kViridisAnchors[anchor + 1];
  return {ToByte(lo[0] + w * (hi[0] - lo[0])), ToByte(lo[1] + w * (hi[1] - lo[1])),
          ToByte(lo[2] + w * (hi[2] - lo[2]))};
}

RgbImage RenderHeatmapImage(std::span<const float> values, int rows, int cols, float max_value,
                            int cell_pixels) {
  ATTNLAB_CHECK(
      rows > 0 && cols > 0 && cell_pixels > 0 && values.size() == static_cast<size_t>(rows) * cols,
      "RenderHeatmapImage: ", values.size(), " values for ", rows, "x", cols);
  RgbImage image(cols * cell_pixels, rows * cell_pixels);
  for (int row = 0; row < rows; ++row) {
    for (int col = 0; col < cols; ++col) {
      const float v = values[static_cast<size_t>(row) * cols + col];
      const Rgb color = Viridis(max_value > 0 ? v / max_value : 0.0);
      for (int dy = 0; dy < cell_pixels; ++dy) {
        for (int dx = 0; dx < cell_pixels; ++dx) {
          image.Set(col * cell_pixels + dx, row * cell_pixels + dy, color.r, color.g, color.b);
        }
      }
    }
  }
  return image;
}

std::string DisplayToken(const std::string& token) {
  if (token.empty()) return "∅";
  std::string shown;
  int code_points = 0;
  for (size_t i = 0; i < token.size(); ++i) {
    const unsigned char c = static_cast<unsigned char>(token[i]);
    const bool starts_code_point = (c & 0xC0) != 0x80;
    if (starts_code_point && ++code_points > 12) {
      shown += "…";
      break;
    }
    if (c == ' ') {
      shown += "␣";
    } else if (c == '\n') {
      shown += "⏎";
    } else if (c == '\t') {
      shown += "⇥";
    } else if (c < 0x20) {
      shown += absl::StrFormat("\\x%02x", c);
    } else {
      shown += static_cast<char>(c);
    }
  }
  return shown;
}

absl::StatusOr<std::string> RenderHeatmapSvg(std::span<const float> values, int rows, int cols,
                                             const HeatmapLabels& labels) {
  if (rows <= 0 || cols <= 0 || values.size() != static_cast<size_t>(rows) * cols) {
    return absl::InvalidArgumentError(absl::StrCat("heatmap '", labels.title, "': ", values.size(),
                                                   " values for a ", rows, "x", cols, " matrix"));
  }
  float max_value = 0;
  for (const float v : values) {
    if (std::isfinite(v)) max_value = std::max(max_value, v);
  }
  const int longest = std::max(rows, cols);
  const int cell = std::clamp(360 / longest, 6, 20);
  const double font = std::clamp(cell - 2.0, 9.0, kTokenFontMax);
  // Every `stride`-th label, so that labels do not overlap when cells are small.
  const int stride = static_cast<int>(std::ceil((font + 1) / cell));

  auto token_at = [](const std::vector<std::string>& tokens, int i) {
    return i < static_cast<int>(tokens.size()) ? DisplayToken(tokens[i]) : absl::StrCat(i);
  };
  double row_label_width = 0, col_label_width = 0;
  for (int r = 0; r < rows; r += stride) {
    row_label_width =
        std::max(row_label_width, EstimateTextWidth(token_at(labels.row_tokens, r), font));
  }
  for (int c = 0; c < cols; c += stride) {
    col_label_width =
        std::max(col_label_width, EstimateTextWidth(token_at(labels.col_tokens, c), font));
  }
  // Column labels stay upright when they fit in their cells, otherwise they run upwards.
  const bool rotate = col_label_width > cell * stride - 2;
  const double map_width = cols * cell, map_height = rows * cell;
  const double title_height = labels.title.empty() ? 0 : kTitleFont + 8;
  const double left = 6 + row_label_width + 6;
  const double top = title_height + (rotate ? col_label_width : font) + 8;
  const double bar_x = left + map_width + 10, bar_width = 10;
  const std::string max_label = FormatNumber(max_value, 3);
  const double width = std::max(bar_x + bar_width + 6 + EstimateTextWidth(max_label, font) + 6,
                                EstimateTextWidth(labels.title, kTitleFont) + 12);
  const double height = top + map_height + 8;

  ASSIGN_OR_RETURN(const std::string map_uri,
                   PngDataUri(RenderHeatmapImage(values, rows, cols, max_value, cell)));
  constexpr int kBarSteps = 64;
  RgbImage bar(1, kBarSteps);
  for (int i = 0; i < kBarSteps; ++i) {
    const Rgb color = Viridis(1.0 - static_cast<double>(i) / (kBarSteps - 1));  // top = max
    bar.Set(0, i, color.r, color.g, color.b);
  }
  ASSIGN_OR_RETURN(const std::string bar_uri, PngDataUri(bar));

  std::string svg = absl::StrFormat(
      "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"heatmap\" width=\"%d\" height=\"%d\" "
      "viewBox=\"0 0 %d %d\" font-family=\"system-ui, -apple-system, 'Segoe UI', Helvetica, "
      "Arial, sans-serif\" font-size=\"%g\" fill=\"#222\" role=\"img\">\n",
      static_cast<int>(std::ceil(width)), static_cast<int>(std::ceil(height)),
      static_cast<int>(std::ceil(width)), static_cast<int>(std::ceil(height)), font);
  if (!labels.title.empty()) {
    absl::StrAppend(&svg, "<title>", HtmlEscape(labels.title), "</title>",
                    absl::StrFormat("<text x=\"4\" y=\"%g\" font-size=\"%g\" font-weight=\"600\">",
                                    kTitleFont + 2, kTitleFont),
                    HtmlEscape(labels.title), "</text>\n");
  }
  absl::StrAppend(&svg,
                  absl::StrFormat("<image x=\"%g\" y=\"%g\" width=\"%g\" height=\"%g\" "
                                  "preserveAspectRatio=\"none\" "
                                  "style=\"image-rendering:pixelated\" href=\"",
                                  left, top, map_width, map_height),
                  map_uri, "\"/>\n");
  absl::StrAppend(&svg,
                  absl::StrFormat("<rect x=\"%g\" y=\"%g\" width=\"%g\" height=\"%g\" "
                                  "fill=\"none\" stroke=\"#888\" stroke-width=\"0.5\"/>\n",
                                  left - 0.25, top - 0.25, map_width + 0.5, map_height + 0.5));
  // Row tokens, right-aligned against the map.
  absl::StrAppend(&svg, "<g class=\"row-tokens\" text-anchor=\"end\">");
  for (int r = 0; r < rows; r += stride) {
    absl::StrAppend(&svg,
                    absl::StrFormat("<text x=\"%g\" y=\"%.1f\" dominant-baseline=\"central\">",
                                    left - 4, top + (r + 0.5) * cell),
                    HtmlEscape(token_at(labels.row_tokens, r)), "</text>");
  }
  absl::StrAppend(&svg, "</g>\n<g class=\"col-tokens\">");
  for (int c = 0; c < cols; c += stride) {
    const double x = left + (c + 0.5) * cell;
    if (rotate) {
      absl::StrAppend(&svg, absl::StrFormat("<text transform=\"translate(%.1f %g) rotate(-90)\" "
                                            "dominant-baseline=\"central\">",
                                            x, top - 4));
    } else {
      absl::StrAppend(
          &svg, absl::StrFormat("<text x=\"%.1f\" y=\"%g\" text-anchor=\"middle\">", x, top - 5));
    }
    absl::StrAppend(&svg, HtmlEscape(token_at(labels.col_tokens, c)), "</text>");
  }
  absl::StrAppend(&svg, "</g>\n");
  // Colour bar with its scale.
  absl::StrAppend(&svg,
                  absl::StrFormat("<image x=\"%g\" y=\"%g\" width=\"%g\" height=\"%g\" "
                                  "preserveAspectRatio=\"none\" href=\"",
                                  bar_x, top, bar_width, map_height),
                  bar_uri, "\"/>\n",
                  absl::StrFormat("<text x=\"%g\" y=\"%g\" dominant-baseline=\"hanging\" "
                                  "fill=\"#555\">%s</text>",
                                  bar_x + bar_width + 4, top, HtmlEscape(max_label)),
                  absl::StrFormat("<text x=\"%g\" y=\"%g\" fill=\"#555\">0</text>\n",
                                  bar_x + bar_width + 4, top + map_height));
  absl::StrAppend(&svg, "</svg>");
  return svg;
}

}  // namespace attnlab::experiments
