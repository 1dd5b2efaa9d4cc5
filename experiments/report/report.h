// The run report: one self-contained HTML page (inline CSS and SVG, images as data URIs,
// no JavaScript) for one run or several runs overlaid, made from what the trainer writes
// in a run directory:
//
//   config.toml             the resolved config           -> collapsible <details>
//                                                            (and, for several runs, a
//                                                            table of the keys that differ)
//   metrics.jsonl           one JSON object per line:      -> training loss, learning rate,
//     {"kind":"train","step":50,"loss":2.31,"lr":...}         throughput and validation
//     {"kind":"eval","split":"valid","step":500,...}          curves (SVG, one colour per
//     {"kind":"test",...}                                      run); final metrics table
//   samples.txt             validation samples            -> source/reference/prediction
//     ("source: ...", "reference: ...", "prediction: ... (correct)" blocks, or tab-separated)
//   attention.safetensors   "example<i>.<layer>" f32       -> heatmaps (PNG, viridis)
//                           [heads, tgt, src], metadata
//                           "example<i>.source_tokens" /
//                           "example<i>.target_tokens" (JSON arrays of strings)
//
// metrics.jsonl is required; the other files are optional and a missing one omits its
// section. A malformed metrics line is an error naming the file and the line, except an
// unterminated last line (a record being written while the report is made), which is
// skipped.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace attnlab::experiments {

// One line of metrics.jsonl.
struct MetricsRecord {
  int line = 0;
  std::string kind;   // "train", "eval", "test", ...
  std::string split;  // "valid", "test" or "" when absent
  // Numeric fields in the order they appear in the line (null becomes NaN).
  std::vector<std::pair<std::string, double>> values;
  // String fields other than kind and split (e.g. "decoder": "beam4"); booleans, arrays
  // and objects are not kept.
  std::vector<std::pair<std::string, std::string>> strings;

  // The value of `key`, or NaN if absent.
  double Get(const std::string& key) const;
  bool Has(const std::string& key) const;
  // The string field `key`, or "" if absent.
  std::string GetString(const std::string& key) const;
};

// Reads metrics.jsonl. Blank lines are skipped. Errors ("<path>:<line>: ...") for a line
// that is not a JSON object or has no string "kind".
absl::StatusOr<std::vector<MetricsRecord>> ReadMetricsLog(const std::string& path);

// The report's stylesheet and run colours, for pages in the same style (the ablation
// study report): a CSS text, and matplotlib's "tab10" colour `index` (cycling).
const char* ReportStylesheet();
const char* ReportColor(size_t index);

// The report page for the given run directories (one or more).
absl::StatusOr<std::string> RenderRunReport(const std::vector<std::string>& run_dirs);

// Renders the report and writes it to `output_html` atomically (temporary file in the
// same directory, flush, fsync, rename): on error an existing file is left as it was.
absl::Status WriteRunReport(const std::vector<std::string>& run_dirs,
                            const std::string& output_html);

}  // namespace attnlab::experiments
