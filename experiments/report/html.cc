#include "experiments/report/html.h"

#include <cmath>
#include <cstdint>
#include <cstdio>

#include "absl/strings/str_format.h"

namespace attnlab::experiments {

std::string HtmlEscape(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (const char c : text) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

std::string FormatNumber(double value, int significant) {
  if (std::isnan(value)) return "nan";
  if (std::isinf(value)) return value > 0 ? "inf" : "-inf";
  char buffer[64];
  if (value == std::round(value) && std::fabs(value) < 1e15) {
    std::snprintf(buffer, sizeof(buffer), "%.0f", value);
  } else {
    std::snprintf(buffer, sizeof(buffer), "%.*g", significant, value);
  }
  return buffer;
}

double EstimateTextWidth(std::string_view text, double font_size) {
  // Count UTF-8 code points (continuation bytes start with 10xxxxxx); an average glyph of
  // a sans-serif font is about 0.6 em wide, wide glyphs (CJK) about 1 em.
  double em = 0;
  for (size_t i = 0; i < text.size(); ++i) {
    const unsigned char c = static_cast<unsigned char>(text[i]);
    if ((c & 0xC0) == 0x80) continue;
    em += c >= 0xE3 ? 1.0 : 0.6;
  }
  return em * font_size;
}

std::string FormatWallTime(double seconds) {
  if (!std::isfinite(seconds)) return "–";
  if (seconds < 60) return absl::StrFormat("%.1f s", seconds);
  const int64_t total = std::llround(seconds);
  if (total < 3600) return absl::StrFormat("%d min %02d s", total / 60, total % 60);
  return absl::StrFormat("%d h %02d min", total / 3600, (total % 3600) / 60);
}

}  // namespace attnlab::experiments
