// Small helpers shared by the report's HTML and SVG writers.
#pragma once

#include <string>
#include <string_view>

namespace attnlab::experiments {

// Escapes &, <, >, " and ' so that text is safe in HTML/SVG content and attribute values.
std::string HtmlEscape(std::string_view text);

// A number for people: integers without decimals ("500"), others with `significant`
// significant digits and no trailing zeros ("0.0007", "81.5", "2.31"); "nan"/"inf" as is.
std::string FormatNumber(double value, int significant = 4);

// A wall time for people: "12.3 s", "4 min 05 s", "1 h 02 min"; "–" when not finite.
std::string FormatWallTime(double seconds);

// Approximate rendered width in pixels of `text` in a sans-serif font of `font_size`
// pixels (used to lay out labels in SVG without a browser; errs on the wide side).
double EstimateTextWidth(std::string_view text, double font_size);

}  // namespace attnlab::experiments
