// Attention heatmaps: a matrix drawn as a PNG in the viridis colour map, wrapped in an SVG
// with the column tokens above it, the row tokens to its left and a colour bar.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "experiments/report/png_writer.h"

namespace attnlab::experiments {

struct Rgb {
  uint8_t r, g, b;
};

// The viridis colour map (van der Walt and Smith, matplotlib's default since 2.0):
// perceptually uniform, ordered in lightness, legible in greyscale and to colour-blind
// readers. 0 is dark purple (68, 1, 84), 1 is yellow (253, 231, 37); `t` is clamped to
// [0, 1] (NaN gives 0). Interpolated between 17 anchors of the published 256-entry table.
Rgb Viridis(double t);

// values: [rows, cols] row-major. Each value v becomes a `cell_pixels` square of colour
// Viridis(v / max_value) (all dark when max_value <= 0).
RgbImage RenderHeatmapImage(std::span<const float> values, int rows, int cols, float max_value,
                            int cell_pixels);

struct HeatmapLabels {
  std::string title;                    // above the map
  std::vector<std::string> row_tokens;  // left of each row (e.g. target tokens)
  std::vector<std::string> col_tokens;  // above each column (e.g. source tokens)
};

// An <svg> element: the heatmap (scaled to [0, max of values]), its tokens and a colour
// bar labelled 0 and the maximum. Missing tokens are labelled by their index. The cell
// size shrinks with the matrix (20 px for short sequences, 6 px at least); when cells are
// too small for a label, only every k-th token is written.
absl::StatusOr<std::string> RenderHeatmapSvg(std::span<const float> values, int rows, int cols,
                                             const HeatmapLabels& labels);

// How a token is shown: spaces and control characters visible ("␣", "\n" as "⏎"), at
// most 12 characters (then "…").
std::string DisplayToken(const std::string& token);

}  // namespace attnlab::experiments
