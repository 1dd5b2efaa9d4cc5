#include "experiments/report/report.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <sstream>

#define TOML_HEADER_ONLY 0
#define TOML_SHARED_LIB 1
#include <toml++/toml.h>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "experiments/report/heatmap.h"
#include "experiments/report/html.h"
#include "experiments/report/svg_chart.h"
#include "framework/core/error.h"
#include "framework/io/safetensors.h"

namespace attnlab::experiments {
namespace {

namespace fs = std::filesystem;
using OrderedJson = nlohmann::ordered_json;

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// One colour per run: matplotlib's "tab10" categorical palette.
constexpr const char* kRunColors[] = {"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
                                      "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"};

const char* RunColor(size_t run) { return kRunColors[run % std::size(kRunColors)]; }

// Numeric fields of evaluation records that describe the evaluation rather than measure
// the model: not drawn as validation curves.
bool IsBookkeeping(const std::string& key) {
  static const std::set<std::string>* keys =
      new std::set<std::string>{"step",       "epoch",  "elapsed_seconds",   "seconds",
                                "examples",   "tokens", "tokens_per_second", "sentences",
                                "ema_seconds"};
  return keys->count(key) != 0;
}

// Whether a smaller value of the metric is better (losses, error rates).
bool LowerIsBetter(const std::string& key) {
  for (const absl::string_view word : absl::StrSplit(absl::AsciiStrToLower(key), '_')) {
    if (word == "loss" || word == "ppl" || word == "perplexity" || word == "wer" || word == "per" ||
        word == "cer" || word == "ter" || word == "error") {
      return true;
    }
  }
  return false;
}

// "token_accuracy" -> "token accuracy".
std::string Pretty(const std::string& key) {
  std::string pretty = key;
  std::replace(pretty.begin(), pretty.end(), '_', ' ');
  return pretty;
}

std::string ErrnoMessage(int error) { return std::strerror(error); }

absl::StatusOr<std::string> ReadTextFile(const std::string& path) {
  std::ifstream file(path, std::ios::binary);
  if (!file) {
    return absl::NotFoundError(absl::StrCat(path, ": cannot open: ", ErrnoMessage(errno)));
  }
  std::stringstream text;
  text << file.rdbuf();
  if (file.bad()) return absl::DataLossError(absl::StrCat(path, ": read failed"));
  return text.str();
}

bool IsValidation(const MetricsRecord& record) {
  return record.kind == "eval" && (record.split.empty() || record.split == "valid" ||
                                   record.split == "validation" || record.split == "dev");
}

bool IsTest(const MetricsRecord& record) {
  return record.kind == "test" || (record.kind == "eval" && record.split == "test");
}

std::string Cell(double value) { return std::isfinite(value) ? FormatNumber(value) : "–"; }

// ---- samples.txt ---------------------------------------------------------------------

// Samples as a table, or (when the text has no recognisable structure) raw text.
struct SampleTable {
  std::vector<std::string> columns;
  std::vector<std::vector<std::string>> rows;  // one cell per column ("" if absent)
  std::string raw;                             // used when `columns` is empty
};

// "key: value" with a short key of letters, digits, spaces, '_' or '-'.
std::optional<std::pair<std::string, std::string>> SplitKeyValue(const std::string& line) {
  const size_t colon = line.find(':');
  if (colon == std::string::npos || colon == 0 || colon > 24) return std::nullopt;
  const std::string key(absl::StripAsciiWhitespace(line.substr(0, colon)));
  if (key.empty()) return std::nullopt;
  for (const char c : key) {
    if (!absl::ascii_isalnum(c) && c != '_' && c != '-' && c != ' ') return std::nullopt;
  }
  std::string value = line.substr(colon + 1);
  value.erase(0, value.find_first_not_of(" \t") == std::string::npos
                     ? value.size()
                     : value.find_first_not_of(" \t"));
  return std::make_pair(key, value);
}

// A line that separates samples without being one: "# 3", "--- ", "=== example 3", "example 3".
bool IsSeparator(const std::string& line) {
  const std::string lower = absl::AsciiStrToLower(line);
  return line[0] == '#' || line[0] == '-' || line[0] == '=' || absl::StartsWith(lower, "example") ||
         absl::StartsWith(lower, "sample");
}

SampleTable ParseSamples(const std::string& text) {
  std::vector<std::string> lines = absl::StrSplit(text, '\n');
  for (std::string& line : lines) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
  }
  SampleTable table;
  // "key: value" blocks.
  std::vector<std::vector<std::pair<std::string, std::string>>> blocks(1);
  bool key_value = true;
  for (const std::string& line : lines) {
    if (absl::StripAsciiWhitespace(line).empty()) {
      if (!blocks.back().empty()) blocks.emplace_back();
      continue;
    }
    const auto pair = SplitKeyValue(line);
    if (!pair) {
      if (IsSeparator(line)) {
        if (!blocks.back().empty()) blocks.emplace_back();
        continue;
      }
      key_value = false;
      break;
    }
    const std::string lower = absl::AsciiStrToLower(pair->first);
    for (const auto& [existing, value] : blocks.back()) {
      if (absl::AsciiStrToLower(existing) == lower) {  // a repeated key starts a new sample
        blocks.emplace_back();
        break;
      }
    }
    blocks.back().push_back(*pair);
  }
  if (key_value) {
    std::vector<std::string> lower_columns;
    for (const auto& block : blocks) {
      for (const auto& [key, value] : block) {
        const std::string lower = absl::AsciiStrToLower(key);
        if (std::find(lower_columns.begin(), lower_columns.end(), lower) == lower_columns.end()) {
          lower_columns.push_back(lower);
          table.columns.push_back(key);
        }
      }
    }
    for (const auto& block : blocks) {
      if (block.empty()) continue;
      std::vector<std::string> row(table.columns.size());
      for (const auto& [key, value] : block) {
        const auto it =
            std::find(lower_columns.begin(), lower_columns.end(), absl::AsciiStrToLower(key));
        row[it - lower_columns.begin()] = value;
      }
      table.rows.push_back(std::move(row));
    }
    if (!table.rows.empty()) return table;
  }
  // Tab-separated lines, with an optional header naming the columns.
  table = SampleTable();
  std::vector<std::vector<std::string>> rows;
  size_t width = 0;
  bool tabular = true;
  for (const std::string& line : lines) {
    if (absl::StripAsciiWhitespace(line).empty()) continue;
    std::vector<std::string> fields = absl::StrSplit(line, '\t');
    if (fields.size() < 2 || (width != 0 && fields.size() != width)) {
      tabular = false;
      break;
    }
    width = fields.size();
    rows.push_back(std::move(fields));
  }
  if (tabular && !rows.empty()) {
    const std::string first = absl::AsciiStrToLower(rows[0][0]);
    if (first == "source" || first == "src" || first == "input") {
      table.columns = rows[0];
      rows.erase(rows.begin());
    } else if (width == 3) {
      table.columns = {"source", "reference", "prediction"};
    } else {
      for (size_t i = 0; i < width; ++i) table.columns.push_back(absl::StrCat("column ", i + 1));
    }
    table.rows = std::move(rows);
    return table;
  }
  table = SampleTable();
  table.raw = text;
  return table;
}

// ---- attention.safetensors ---------------------------------------------------------

struct AttentionMap {
  std::string layer;
  int heads = 0, rows = 0, cols = 0;
  std::vector<float> weights;  // [heads, rows, cols]
};

struct AttentionExample {
  int index = 0;
  std::vector<std::string> source_tokens, target_tokens;
  std::vector<AttentionMap> maps;  // in file order
};

absl::StatusOr<std::vector<std::string>> TokensFromMetadata(const SafetensorsMetadata& metadata,
                                                            const std::string& key,
                                                            const std::string& path) {
  const auto it = metadata.find(key);
  if (it == metadata.end()) return std::vector<std::string>();
  const nlohmann::json parsed =
      nlohmann::json::parse(it->second, nullptr, /*allow_exceptions=*/false);
  std::vector<std::string> tokens;
  bool ok = parsed.is_array();
  if (ok) {
    for (const nlohmann::json& token : parsed) {
      if (!token.is_string()) {
        ok = false;
        break;
      }
      tokens.push_back(token.get<std::string>());
    }
  }
  if (!ok) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": metadata \"", key, "\" is not a JSON array of strings"));
  }
  return tokens;
}

absl::StatusOr<std::vector<AttentionExample>> ReadAttention(const std::string& path) {
  ASSIGN_OR_RETURN(SafetensorsContents contents, ReadSafetensors(path));
  std::map<int, AttentionExample> examples;
  for (const auto& [name, tensor] : contents.tensors) {
    // "example<i>.<layer name>"
    const size_t dot = name.find('.');
    int index = 0;
    if (!absl::StartsWith(name, "example") || dot == std::string::npos || dot + 1 == name.size() ||
        !absl::SimpleAtoi(name.substr(7, dot - 7), &index) || index < 0) {
      return absl::InvalidArgumentError(
          absl::StrCat(path, ": tensor \"", name, "\" is not named example<i>.<layer name>"));
    }
    if (tensor.dtype() != DType::kF32 || (tensor.rank() != 3 && tensor.rank() != 2)) {
      return absl::InvalidArgumentError(absl::StrCat(path, ": tensor \"", name, "\" is ",
                                                     tensor.Describe(),
                                                     ", expected f32[heads, tgt, src]"));
    }
    AttentionMap map;
    map.layer = name.substr(dot + 1);
    map.heads = tensor.rank() == 3 ? static_cast<int>(tensor.size(0)) : 1;
    map.rows = static_cast<int>(tensor.size(-2));
    map.cols = static_cast<int>(tensor.size(-1));
    if (map.heads == 0 || map.rows == 0 || map.cols == 0) continue;  // nothing to draw
    map.weights = tensor.ToFloats();
    AttentionExample& example = examples[index];
    example.index = index;
    example.maps.push_back(std::move(map));
  }
  std::vector<AttentionExample> result;
  for (auto& [index, example] : examples) {
    const std::string prefix = absl::StrCat("example", index, ".");
    ASSIGN_OR_RETURN(example.source_tokens,
                     TokensFromMetadata(contents.metadata, prefix + "source_tokens", path));
    ASSIGN_OR_RETURN(example.target_tokens,
                     TokensFromMetadata(contents.metadata, prefix + "target_tokens", path));
    result.push_back(std::move(example));
  }
  return result;
}

// The tokens along one axis of a map: keys (columns) are source tokens except in decoder
// self-attention; queries (rows) are target tokens except in encoder self-attention.
// When the preferred tokens do not have the axis' length but the others do, the others.
const std::vector<std::string>& AxisTokens(const AttentionExample& example,
                                           const std::string& layer, bool keys, int length) {
  const std::string lower = absl::AsciiStrToLower(layer);
  const bool encoder_self =
      absl::StrContains(lower, "encoder") && !absl::StrContains(lower, "decoder");
  const bool decoder_self = absl::StrContains(lower, "decoder") && absl::StrContains(lower, "self");
  const bool source_first = keys ? !decoder_self : encoder_self;
  const std::vector<std::string>& preferred =
      source_first ? example.source_tokens : example.target_tokens;
  const std::vector<std::string>& other =
      source_first ? example.target_tokens : example.source_tokens;
  if (static_cast<int>(preferred.size()) != length && static_cast<int>(other.size()) == length) {
    return other;
  }
  return preferred;
}

// ---- one run ------------------------------------------------------------------------

struct Run {
  std::string dir;
  std::string label;
  std::string color;
  std::optional<std::string> config;
  std::vector<MetricsRecord> metrics;
  std::optional<SampleTable> samples;
  std::vector<AttentionExample> attention;
};

absl::StatusOr<Run> LoadRun(const std::string& dir) {
  Run run;
  run.dir = dir;
  std::error_code error;
  if (!fs::is_directory(dir, error)) {
    return absl::NotFoundError(absl::StrCat(dir, ": not a directory"));
  }
  const fs::path path(dir);
  const fs::path metrics_path = path / "metrics.jsonl";
  if (!fs::exists(metrics_path, error)) {
    return absl::NotFoundError(absl::StrCat(
        dir, ": no metrics.jsonl here (is it a run directory, runs/<experiment>/<run>?)"));
  }
  ASSIGN_OR_RETURN(run.metrics, ReadMetricsLog(metrics_path.string()));
  if (fs::exists(path / "config.toml", error)) {
    ASSIGN_OR_RETURN(run.config, ReadTextFile((path / "config.toml").string()));
  }
  if (fs::exists(path / "samples.txt", error)) {
    ASSIGN_OR_RETURN(const std::string text, ReadTextFile((path / "samples.txt").string()));
    if (!absl::StripAsciiWhitespace(text).empty()) run.samples = ParseSamples(text);
  }
  if (fs::exists(path / "attention.safetensors", error)) {
    ASSIGN_OR_RETURN(run.attention, ReadAttention((path / "attention.safetensors").string()));
  }
  return run;
}

// "experiment/run" from ".../runs/experiment/run/".
std::string RunLabel(const std::string& dir) {
  fs::path path = fs::path(dir).lexically_normal();
  if (path.filename().empty()) path = path.parent_path();
  fs::path absolute = fs::absolute(path).lexically_normal();
  if (absolute.filename().empty()) absolute = absolute.parent_path();
  const std::string run = absolute.filename().string();
  const std::string experiment = absolute.parent_path().filename().string();
  return experiment.empty() ? run : absl::StrCat(experiment, "/", run);
}

// ---- config --------------------------------------------------------------------------

// "table.key" -> value as TOML text, or nullopt if the text does not parse.
std::optional<std::map<std::string, std::string>> FlattenToml(const std::string& text) {
  std::map<std::string, std::string> flat;
  try {
    const toml::table root = toml::parse(text);
    std::function<void(const toml::table&, const std::string&)> visit =
        [&](const toml::table& table, const std::string& prefix) {
          for (const auto& [key, node] : table) {
            const std::string name = prefix.empty()
                                         ? std::string(key.str())
                                         : absl::StrCat(prefix, ".", std::string(key.str()));
            if (const toml::table* child = node.as_table()) {
              visit(*child, name);
            } else if (const auto* string = node.as_string()) {
              flat[name] = string->get();
            } else if (const auto* floating = node.as_floating_point()) {
              // Shortest round-trip-ish form: 0.8, not toml++'s 0.80000000000000004.
              std::string text = absl::StrFormat("%.15g", floating->get());
              if (text.find_first_of(".eEni") == std::string::npos) text += ".0";
              flat[name] = text;
            } else {
              std::ostringstream value;
              node.visit([&](const auto& n) { value << n; });
              flat[name] = value.str();
            }
          }
        };
    visit(root, "");
  } catch (const toml::parse_error&) {
    return std::nullopt;
  }
  return flat;
}

// ---- HTML ---------------------------------------------------------------------------

constexpr const char* kStyle = R"css(
:root { color-scheme: light; }
body { margin: 0; background: #eef0f3; color: #1d1f23;
  font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; }
main { max-width: 1140px; margin: 0 auto; padding: 22px 30px 48px; background: #fff;
  min-height: 100vh; box-sizing: border-box; }
h1 { font-size: 23px; margin: 0 0 2px; }
h2 { font-size: 18px; margin: 30px 0 10px; padding-bottom: 4px; border-bottom: 1px solid #dde0e4; }
h3 { font-size: 15px; margin: 18px 0 6px; }
h4 { font-size: 13px; margin: 12px 0 4px; color: #444; font-weight: 600; }
.subtitle { color: #5f6368; margin: 0 0 10px; }
nav { margin: 6px 0 4px; font-size: 13px; }
nav a { margin-right: 14px; color: #1a5fb4; text-decoration: none; }
nav a:hover { text-decoration: underline; }
.note { color: #5f6368; font-size: 13px; margin: 4px 0 10px; }
table { border-collapse: collapse; font-variant-numeric: tabular-nums; margin: 6px 0 10px; }
th, td { padding: 4px 11px; border-bottom: 1px solid #e6e8eb; text-align: left;
  vertical-align: top; }
th { background: #f3f4f6; font-weight: 600; font-size: 13px; }
td.num, th.num { text-align: right; }
td.best { font-weight: 700; }
.swatch { display: inline-block; width: 12px; height: 12px; border-radius: 2px;
  vertical-align: -1px; margin-right: 7px; }
.charts { display: flex; flex-wrap: wrap; gap: 14px 28px; align-items: flex-start; }
svg.chart, svg.heatmap { max-width: 100%; height: auto; display: block; }
details { margin: 6px 0; }
summary { cursor: pointer; font-weight: 600; }
pre { background: #f6f8fa; padding: 10px 12px; border-radius: 4px; overflow-x: auto;
  font-size: 12.5px; line-height: 1.4; margin: 6px 0; }
code, .mono, table.samples td { font-family: ui-monospace, "SFMono-Regular", "DejaVu Sans Mono",
  Menlo, Consolas, monospace; font-size: 12.5px; }
table.samples td { white-space: pre-wrap; word-break: break-word; }
table.samples td.ok { background: #e8f5ea; }
table.samples td.bad { background: #fdeceb; }
.heatmaps { display: flex; flex-wrap: wrap; gap: 12px 20px; align-items: flex-start;
  margin: 4px 0 12px; }
.tokens { font-size: 13px; margin: 2px 0; }
.tokens b { display: inline-block; min-width: 58px; color: #5f6368; font-weight: 600; }
)css";

std::string Swatch(const std::string& color) {
  return absl::StrCat("<span class=\"swatch\" style=\"background:", color, "\"></span>");
}

// The values of `key` in the records passing `keep`, against their steps.
void Curve(const std::vector<MetricsRecord>& records, bool (*keep)(const MetricsRecord&),
           const std::string& key, std::vector<double>* x, std::vector<double>* y) {
  for (const MetricsRecord& record : records) {
    if (!keep(record) || !record.Has(key) || !record.Has("step")) continue;
    x->push_back(record.Get("step"));
    y->push_back(record.Get(key));
  }
}

bool IsTrain(const MetricsRecord& record) { return record.kind == "train"; }

const MetricsRecord* LastOf(const std::vector<MetricsRecord>& records,
                            bool (*keep)(const MetricsRecord&)) {
  for (auto it = records.rbegin(); it != records.rend(); ++it) {
    if (keep(*it)) return &*it;
  }
  return nullptr;
}

std::string RunsSection(const std::vector<Run>& runs) {
  std::string html =
      "<h2 id=\"runs\">Runs</h2>\n<table>\n<tr><th>run</th><th>directory</th>"
      "<th class=\"num\">steps</th><th class=\"num\">epochs</th>"
      "<th class=\"num\">training time</th><th class=\"num\">tokens/s</th>"
      "<th class=\"num\">last train loss</th><th class=\"num\">best valid loss</th>"
      "</tr>\n";
  for (const Run& run : runs) {
    const MetricsRecord* last = LastOf(run.metrics, IsTrain);
    std::vector<double> throughput;
    double best_loss = kNaN, best_step = kNaN;
    for (const MetricsRecord& record : run.metrics) {
      if (IsTrain(record) && std::isfinite(record.Get("tokens_per_second"))) {
        throughput.push_back(record.Get("tokens_per_second"));
      }
      const double loss = record.Get("loss");
      if (IsValidation(record) && std::isfinite(loss) && !(loss >= best_loss)) {
        best_loss = loss;
        best_step = record.Get("step");
      }
    }
    double median = kNaN;
    if (!throughput.empty()) {
      std::nth_element(throughput.begin(), throughput.begin() + throughput.size() / 2,
                       throughput.end());
      median = throughput[throughput.size() / 2];
    }
    absl::StrAppend(
        &html, "<tr><td>", Swatch(run.color), HtmlEscape(run.label), "</td><td class=\"mono\">",
        HtmlEscape(run.dir), "</td><td class=\"num\">", last ? Cell(last->Get("step")) : "–",
        "</td><td class=\"num\">", last ? Cell(last->Get("epoch")) : "–", "</td><td class=\"num\">",
        last ? FormatWallTime(last->Get("elapsed_seconds")) : "–", "</td><td class=\"num\">",
        std::isfinite(median) ? FormatNumber(std::round(median)) : "–", "</td><td class=\"num\">",
        last ? Cell(last->Get("loss")) : "–", "</td><td class=\"num\">",
        std::isfinite(best_loss)
            ? absl::StrCat(FormatNumber(best_loss), " <span class=\"note\">(step ",
                           FormatNumber(best_step), ")</span>")
            : "–",
        "</td></tr>\n");
  }
  absl::StrAppend(&html, "</table>\n");
  return html;
}

std::string ConfigSection(const std::vector<Run>& runs) {
  bool any = false;
  for (const Run& run : runs) any = any || run.config.has_value();
  if (!any) return "";
  std::string html = "<h2 id=\"config\">Configuration</h2>\n";
  if (runs.size() > 1) {
    // Keys whose values differ between runs (ablations are one-line diffs).
    std::vector<std::optional<std::map<std::string, std::string>>> flat;
    std::set<std::string> keys;
    for (const Run& run : runs) {
      flat.push_back(run.config ? FlattenToml(*run.config) : std::nullopt);
      if (flat.back()) {
        for (const auto& [key, value] : *flat.back()) keys.insert(key);
      }
    }
    std::vector<std::string> differing;
    for (const std::string& key : keys) {
      std::set<std::string> values;
      for (const auto& config : flat) {
        if (!config) continue;
        const auto it = config->find(key);
        values.insert(it == config->end() ? "\x01(absent)" : it->second);
      }
      if (values.size() > 1 && key != "experiment.name") differing.push_back(key);
    }
    if (!differing.empty()) {
      absl::StrAppend(&html,
                      "<p class=\"note\">Keys that differ between the runs:</p>\n"
                      "<table>\n<tr><th>key</th>");
      for (const Run& run : runs) {
        absl::StrAppend(&html, "<th>", Swatch(run.color), HtmlEscape(run.label), "</th>");
      }
      absl::StrAppend(&html, "</tr>\n");
      for (const std::string& key : differing) {
        absl::StrAppend(&html, "<tr><td class=\"mono\">", HtmlEscape(key), "</td>");
        for (const auto& config : flat) {
          std::string value = "–";
          if (config && config->count(key)) value = config->at(key);
          absl::StrAppend(&html, "<td class=\"mono\">", HtmlEscape(value), "</td>");
        }
        absl::StrAppend(&html, "</tr>\n");
      }
      absl::StrAppend(&html, "</table>\n");
    } else {
      absl::StrAppend(&html, "<p class=\"note\">The runs have the same configuration.</p>\n");
    }
  }
  for (const Run& run : runs) {
    if (!run.config) continue;
    absl::StrAppend(&html, "<details><summary>",
                    runs.size() > 1 ? absl::StrCat(HtmlEscape(run.label), ": ") : "",
                    "resolved config (config.toml)</summary>\n<pre>", HtmlEscape(*run.config),
                    "</pre></details>\n");
  }
  return html;
}

// Series of `key` for every run (one colour per run), from the records passing `keep`.
std::vector<ChartSeries> SeriesPerRun(const std::vector<Run>& runs,
                                      bool (*keep)(const MetricsRecord&), const std::string& key,
                                      const std::string& suffix, bool dashed, bool markers) {
  std::vector<ChartSeries> series;
  for (const Run& run : runs) {
    ChartSeries s;
    Curve(run.metrics, keep, key, &s.x, &s.y);
    if (s.x.empty()) continue;
    s.name = runs.size() > 1 ? absl::StrCat(run.label, suffix.empty() ? "" : " ", suffix) : suffix;
    s.color = run.color;
    s.dashed = dashed;
    s.markers = markers || s.x.size() == 1;
    series.push_back(std::move(s));
  }
  return series;
}

std::string TrainingSection(const std::vector<Run>& runs) {
  std::vector<ChartSeries> loss = SeriesPerRun(runs, IsTrain, "loss", "train", false, false);
  std::vector<ChartSeries> valid_loss =
      SeriesPerRun(runs, IsValidation, "loss", "valid", true, true);
  std::vector<ChartSeries> lr = SeriesPerRun(runs, IsTrain, "lr", "", false, false);
  std::vector<ChartSeries> throughput =
      SeriesPerRun(runs, IsTrain, "tokens_per_second", "", false, false);
  if (loss.empty() && valid_loss.empty() && lr.empty() && throughput.empty()) return "";
  std::string html =
      "<h2 id=\"training\">Training</h2>\n"
      "<p>Training loss is the optimised objective, cross-entropy with label smoothing "
      "(train.label_smoothing); validation loss is plain cross-entropy per target token, so "
      "with smoothing the training curve stays above it.</p>\n<div class=\"charts\">\n";
  if (!loss.empty() || !valid_loss.empty()) {
    loss.insert(loss.end(), valid_loss.begin(), valid_loss.end());
    absl::StrAppend(&html,
                    RenderLineChart(loss, StepChart("Loss (train solid, valid dashed)", "loss",
                                                    AxisScale::kAuto)),
                    "\n");
  }
  if (!lr.empty()) {
    if (runs.size() == 1) lr[0].name.clear();  // one curve needs no legend
    absl::StrAppend(&html, RenderLineChart(lr, StepChart("Learning rate", "learning rate")), "\n");
  }
  if (!throughput.empty()) {
    if (runs.size() == 1) throughput[0].name.clear();
    absl::StrAppend(
        &html, RenderLineChart(throughput, StepChart("Throughput", "target tokens / s")), "\n");
  }
  absl::StrAppend(&html, "</div>\n");
  return html;
}

// Metric names of the records passing `keep`, in order of first appearance.
std::vector<std::string> MetricNames(const std::vector<Run>& runs,
                                     bool (*keep)(const MetricsRecord&)) {
  std::vector<std::string> names;
  for (const Run& run : runs) {
    for (const MetricsRecord& record : run.metrics) {
      if (!keep(record)) continue;
      for (const auto& [key, value] : record.values) {
        if (IsBookkeeping(key)) continue;
        if (std::find(names.begin(), names.end(), key) == names.end()) names.push_back(key);
      }
    }
  }
  return names;
}

std::string ValidationSection(const std::vector<Run>& runs) {
  std::string charts;
  for (const std::string& metric : MetricNames(runs, IsValidation)) {
    if (metric == "loss") continue;  // drawn with the training loss
    std::vector<ChartSeries> series = SeriesPerRun(runs, IsValidation, metric, "", false, true);
    if (series.empty()) continue;
    if (runs.size() == 1) series[0].name.clear();
    absl::StrAppend(&charts,
                    RenderLineChart(series, StepChart(absl::StrCat("Validation ", Pretty(metric)),
                                                      Pretty(metric))),
                    "\n");
  }
  if (charts.empty()) return "";
  return absl::StrCat("<h2 id=\"validation\">Validation</h2>\n<div class=\"charts\">\n", charts,
                      "</div>\n");
}

std::string MetricsSection(const std::vector<Run>& runs) {
  struct Row {
    const Run* run;
    std::string split;
    const MetricsRecord* record;
  };
  std::vector<Row> rows;
  for (const Run& run : runs) {
    if (const MetricsRecord* valid = LastOf(run.metrics, IsValidation)) {
      rows.push_back({&run, "valid", valid});
    }
    // The last test record of each decoder ("test (greedy)", "test (beam4)"), in order of
    // their first appearance.
    std::vector<std::string> decoders;
    for (const MetricsRecord& record : run.metrics) {
      const std::string decoder = record.GetString("decoder");
      if (IsTest(record) &&
          std::find(decoders.begin(), decoders.end(), decoder) == decoders.end()) {
        decoders.push_back(decoder);
      }
    }
    for (const std::string& decoder : decoders) {
      const MetricsRecord* last = nullptr;
      for (const MetricsRecord& record : run.metrics) {
        if (IsTest(record) && record.GetString("decoder") == decoder) last = &record;
      }
      rows.push_back({&run, decoder.empty() ? "test" : absl::StrCat("test (", decoder, ")"), last});
    }
  }
  if (rows.empty()) return "";
  // One column per metric: step, loss, then the others in order of appearance.
  std::vector<std::string> columns = {"step", "loss"};
  for (const Row& row : rows) {
    for (const auto& [key, value] : row.record->values) {
      if (IsBookkeeping(key)) continue;
      if (std::find(columns.begin(), columns.end(), key) == columns.end()) columns.push_back(key);
    }
  }
  columns.erase(std::remove_if(columns.begin(), columns.end(),
                               [&](const std::string& column) {
                                 return std::none_of(rows.begin(), rows.end(), [&](const Row& row) {
                                   return row.record->Has(column);
                                 });
                               }),
                columns.end());
  std::string html =
      "<h2 id=\"metrics\">Final metrics</h2>\n<p class=\"note\">valid: the last "
      "validation; test: the test evaluation.";
  if (runs.size() > 1) absl::StrAppend(&html, " The best value of each split is in bold.");
  absl::StrAppend(&html, "</p>\n<table>\n<tr>", runs.size() > 1 ? "<th>run</th>" : "",
                  "<th>split</th>");
  for (const std::string& column : columns) {
    absl::StrAppend(&html, "<th class=\"num\">", HtmlEscape(Pretty(column)), "</th>");
  }
  absl::StrAppend(&html, "</tr>\n");
  for (const Row& row : rows) {
    absl::StrAppend(&html, "<tr>");
    if (runs.size() > 1) {
      absl::StrAppend(&html, "<td>", Swatch(row.run->color), HtmlEscape(row.run->label), "</td>");
    }
    absl::StrAppend(&html, "<td>", HtmlEscape(row.split), "</td>");
    for (const std::string& column : columns) {
      const double value = row.record->Get(column);
      bool best = false;
      if (runs.size() > 1 && column != "step" && std::isfinite(value)) {
        best = true;
        for (const Row& other : rows) {
          const double v = other.record->Get(column);
          if (other.split != row.split || !std::isfinite(v)) continue;
          if (LowerIsBetter(column) ? v < value : v > value) best = false;
        }
      }
      absl::StrAppend(&html, best ? "<td class=\"num best\">" : "<td class=\"num\">", Cell(value),
                      "</td>");
    }
    absl::StrAppend(&html, "</tr>\n");
  }
  absl::StrAppend(&html, "</table>\n");
  return html;
}

// Removes a trailing "(correct)" or "(wrong)" from a prediction and returns it.
std::optional<bool> TakeVerdict(std::string* prediction) {
  for (const auto& [mark, correct] : {std::pair<const char*, bool>{"(correct)", true},
                                      std::pair<const char*, bool>{"(wrong)", false}}) {
    const absl::string_view stripped = absl::StripTrailingAsciiWhitespace(*prediction);
    if (absl::EndsWith(stripped, mark)) {
      prediction->resize(stripped.size() - std::strlen(mark));
      prediction->resize(absl::StripTrailingAsciiWhitespace(*prediction).size());
      return correct;
    }
  }
  return std::nullopt;
}

std::string SampleTableHtml(const SampleTable& table) {
  if (table.columns.empty()) return absl::StrCat("<pre>", HtmlEscape(table.raw), "</pre>\n");
  auto find_column = [&](std::initializer_list<const char*> names) -> int {
    for (size_t i = 0; i < table.columns.size(); ++i) {
      const std::string lower = absl::AsciiStrToLower(table.columns[i]);
      for (const char* name : names) {
        if (lower == name) return static_cast<int>(i);
      }
    }
    return -1;
  };
  const int reference = find_column({"reference", "ref", "target", "expected", "gold"});
  const int prediction =
      find_column({"prediction", "pred", "predicted", "hypothesis", "hyp", "output"});
  std::string html = "<table class=\"samples\">\n<tr>";
  for (const std::string& column : table.columns) {
    absl::StrAppend(&html, "<th>", HtmlEscape(column), "</th>");
  }
  absl::StrAppend(&html, "</tr>\n");
  for (const std::vector<std::string>& row : table.rows) {
    absl::StrAppend(&html, "<tr>");
    for (size_t i = 0; i < row.size(); ++i) {
      std::string text = row[i];
      std::string cls;
      if (static_cast<int>(i) == prediction) {
        // The trainer marks each prediction "(correct)" or "(wrong)" (it knows every
        // reference); without a mark, compare with the reference shown.
        const std::optional<bool> correct = TakeVerdict(&text);
        if (correct.has_value()) {
          cls = *correct ? " class=\"ok\"" : " class=\"bad\"";
        } else if (reference >= 0) {
          cls = absl::StripAsciiWhitespace(text) == absl::StripAsciiWhitespace(row[reference])
                    ? " class=\"ok\""
                    : " class=\"bad\"";
        }
      }
      absl::StrAppend(&html, "<td", cls, ">", HtmlEscape(text), "</td>");
    }
    absl::StrAppend(&html, "</tr>\n");
  }
  absl::StrAppend(&html, "</table>\n");
  return html;
}

std::string SamplesSection(const std::vector<Run>& runs) {
  std::string html;
  bool first = true;
  for (const Run& run : runs) {
    if (!run.samples) continue;
    if (runs.size() > 1) {
      absl::StrAppend(&html, "<details", first ? " open" : "", "><summary>", Swatch(run.color),
                      HtmlEscape(run.label), "</summary>\n", SampleTableHtml(*run.samples),
                      "</details>\n");
    } else {
      absl::StrAppend(&html, SampleTableHtml(*run.samples));
    }
    first = false;
  }
  if (html.empty()) return "";
  return absl::StrCat(
      "<h2 id=\"samples\">Samples</h2>\n<p class=\"note\">Validation examples "
      "(samples.txt); a prediction equal to its reference is green, a "
      "different one red.</p>\n",
      html);
}

std::string JoinTokens(const std::vector<std::string>& tokens) {
  std::vector<std::string> shown;
  for (const std::string& token : tokens) shown.push_back(HtmlEscape(DisplayToken(token)));
  return absl::StrJoin(shown, " ");
}

absl::StatusOr<std::string> AttentionExampleHtml(const AttentionExample& example) {
  std::string html;
  if (!example.source_tokens.empty()) {
    absl::StrAppend(&html, "<div class=\"tokens\"><b>source</b><span class=\"mono\">",
                    JoinTokens(example.source_tokens), "</span></div>\n");
  }
  if (!example.target_tokens.empty()) {
    absl::StrAppend(&html, "<div class=\"tokens\"><b>target</b><span class=\"mono\">",
                    JoinTokens(example.target_tokens), "</span></div>\n");
  }
  for (const AttentionMap& map : example.maps) {
    absl::StrAppend(&html, "<h4 class=\"mono\">", HtmlEscape(map.layer),
                    "</h4>\n<div class=\"heatmaps\">\n");
    HeatmapLabels labels;
    labels.row_tokens = AxisTokens(example, map.layer, /*keys=*/false, map.rows);
    labels.col_tokens = AxisTokens(example, map.layer, /*keys=*/true, map.cols);
    const size_t plane = static_cast<size_t>(map.rows) * map.cols;
    if (map.heads > 1) {  // the mean over heads first, then each head
      std::vector<float> mean(plane, 0.0f);
      for (int head = 0; head < map.heads; ++head) {
        for (size_t i = 0; i < plane; ++i) mean[i] += map.weights[head * plane + i] / map.heads;
      }
      labels.title = absl::StrCat("mean of ", map.heads, " heads");
      ASSIGN_OR_RETURN(const std::string svg, RenderHeatmapSvg(mean, map.rows, map.cols, labels));
      absl::StrAppend(&html, svg, "\n");
    }
    for (int head = 0; head < map.heads; ++head) {
      labels.title = map.heads > 1 ? absl::StrCat("head ", head) : "";
      ASSIGN_OR_RETURN(
          const std::string svg,
          RenderHeatmapSvg(std::span<const float>(map.weights).subspan(head * plane, plane),
                           map.rows, map.cols, labels));
      absl::StrAppend(&html, svg, "\n");
    }
    absl::StrAppend(&html, "</div>\n");
  }
  return html;
}

absl::StatusOr<std::string> AttentionSection(const std::vector<Run>& runs) {
  std::string html;
  for (const Run& run : runs) {
    if (run.attention.empty()) continue;
    if (runs.size() > 1) {
      absl::StrAppend(&html, "<h3>", Swatch(run.color), HtmlEscape(run.label), "</h3>\n");
    }
    for (size_t i = 0; i < run.attention.size(); ++i) {
      const AttentionExample& example = run.attention[i];
      ASSIGN_OR_RETURN(const std::string body, AttentionExampleHtml(example));
      absl::StrAppend(&html, "<details", i == 0 ? " open" : "", "><summary>validation example ",
                      example.index, "</summary>\n", body, "</details>\n");
    }
  }
  if (html.empty()) return std::string();
  return absl::StrCat(
      "<h2 id=\"attention\">Attention</h2>\n<p class=\"note\">Attention weights of validation "
      "examples (attention.safetensors). Columns are the attended (key) tokens, across the top; "
      "rows are the attending (query) tokens, down the left side: in cross-attention, source "
      "tokens across and target tokens down, each row a distribution over the source. Colours "
      "run from 0 (dark purple) to the map's largest weight (yellow), shown on its colour "
      "bar.</p>\n",
      html);
}

}  // namespace

const char* ReportStylesheet() { return kStyle; }
const char* ReportColor(size_t index) { return RunColor(index); }

double MetricsRecord::Get(const std::string& key) const {
  for (const auto& [name, value] : values) {
    if (name == key) return value;
  }
  return kNaN;
}

bool MetricsRecord::Has(const std::string& key) const {
  for (const auto& [name, value] : values) {
    if (name == key) return true;
  }
  return false;
}

std::string MetricsRecord::GetString(const std::string& key) const {
  for (const auto& [name, value] : strings) {
    if (name == key) return value;
  }
  return "";
}

absl::StatusOr<std::vector<MetricsRecord>> ReadMetricsLog(const std::string& path) {
  ASSIGN_OR_RETURN(const std::string text, ReadTextFile(path));
  std::vector<MetricsRecord> records;
  size_t begin = 0;
  int line_number = 0;
  while (begin < text.size()) {
    size_t end = text.find('\n', begin);
    const bool terminated = end != std::string::npos;
    if (!terminated) end = text.size();
    const std::string line = text.substr(begin, end - begin);
    begin = end + 1;
    ++line_number;
    if (absl::StripAsciiWhitespace(line).empty()) continue;
    const OrderedJson json = OrderedJson::parse(line, nullptr, /*allow_exceptions=*/false);
    const auto fail = [&](const std::string& problem) {
      return absl::InvalidArgumentError(absl::StrCat(path, ":", line_number, ": ", problem));
    };
    if (json.is_discarded()) {
      if (!terminated) break;  // a record still being written
      return fail("not valid JSON");
    }
    if (!json.is_object()) return fail("expected a JSON object ({\"kind\": ..., ...})");
    const auto kind = json.find("kind");
    if (kind == json.end() || !kind->is_string()) {
      return fail("missing the string field \"kind\" (train, eval or test)");
    }
    MetricsRecord record;
    record.line = line_number;
    record.kind = kind->get<std::string>();
    if (const auto split = json.find("split"); split != json.end() && split->is_string()) {
      record.split = split->get<std::string>();
    }
    for (const auto& [key, value] : json.items()) {
      if (value.is_number()) {
        record.values.emplace_back(key, value.get<double>());
      } else if (value.is_null()) {
        record.values.emplace_back(key, kNaN);
      } else if (value.is_string() && key != "kind" && key != "split") {
        record.strings.emplace_back(key, value.get<std::string>());
      }
    }
    records.push_back(std::move(record));
  }
  return records;
}

absl::StatusOr<std::string> RenderRunReport(const std::vector<std::string>& run_dirs) {
  if (run_dirs.empty()) return absl::InvalidArgumentError("no run directories given");
  std::vector<Run> runs;
  for (const std::string& dir : run_dirs) {
    ASSIGN_OR_RETURN(Run run, LoadRun(dir));
    run.label = RunLabel(dir);
    run.color = RunColor(runs.size());
    runs.push_back(std::move(run));
  }
  // Two runs with the same "experiment/run" label are told apart by their directories.
  for (Run& run : runs) {
    for (const Run& other : runs) {
      if (&other != &run && other.label == run.label) run.label = run.dir;
    }
  }
  const std::string title = runs.size() == 1 ? runs[0].label : absl::StrCat(runs.size(), " runs");
  const std::string sections[] = {RunsSection(runs),     ConfigSection(runs),
                                  TrainingSection(runs), ValidationSection(runs),
                                  MetricsSection(runs),  SamplesSection(runs)};
  ASSIGN_OR_RETURN(const std::string attention, AttentionSection(runs));

  std::string html = absl::StrCat(
      "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
      "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>",
      HtmlEscape(title), " · attnlab report</title>\n<style>", kStyle,
      "</style>\n</head>\n"
      "<body>\n<main>\n<h1>",
      HtmlEscape(title), "</h1>\n<p class=\"subtitle\">attnlab run report");
  if (runs.size() > 1) {
    std::vector<std::string> labels;
    for (const Run& run : runs)
      labels.push_back(absl::StrCat(Swatch(run.color), HtmlEscape(run.label)));
    absl::StrAppend(&html, ": ", absl::StrJoin(labels, " &nbsp; "));
  }
  absl::StrAppend(&html, "</p>\n<nav>");
  const std::pair<const char*, const char*> anchors[] = {{"runs", "Runs"},
                                                         {"config", "Configuration"},
                                                         {"training", "Training"},
                                                         {"validation", "Validation"},
                                                         {"metrics", "Final metrics"},
                                                         {"samples", "Samples"},
                                                         {"attention", "Attention"}};
  for (size_t i = 0; i < std::size(anchors); ++i) {
    const std::string& body = i < std::size(sections) ? sections[i] : attention;
    if (!body.empty()) {
      absl::StrAppend(&html, "<a href=\"#", anchors[i].first, "\">", anchors[i].second, "</a>");
    }
  }
  absl::StrAppend(&html, "</nav>\n");
  for (const std::string& section : sections) absl::StrAppend(&html, section);
  absl::StrAppend(&html, attention, "</main>\n</body>\n</html>\n");
  return html;
}

absl::Status WriteRunReport(const std::vector<std::string>& run_dirs,
                            const std::string& output_html) {
  ASSIGN_OR_RETURN(const std::string html, RenderRunReport(run_dirs));
  static std::atomic<uint64_t> counter{0};
  const std::string temporary = absl::StrCat(output_html, ".tmp.", ::getpid(), ".", counter++);
  // Reports errno (read first, before close or unlink can change it) and removes the
  // temporary file.
  const auto fail = [&](const std::string& what, int error) {
    ::unlink(temporary.c_str());
    return absl::UnavailableError(absl::StrCat(output_html, ": ", what, ": ", ErrnoMessage(error)));
  };
  const int descriptor = ::open(temporary.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
  if (descriptor < 0) {
    return absl::UnavailableError(absl::StrCat(
        output_html, ": cannot create a temporary file to write: ", ErrnoMessage(errno)));
  }
  size_t written = 0;
  while (written < html.size()) {
    const ssize_t n = ::write(descriptor, html.data() + written, html.size() - written);
    if (n < 0) {
      if (errno == EINTR) continue;
      const int error = errno;
      ::close(descriptor);
      return fail("write failed", error);
    }
    written += static_cast<size_t>(n);
  }
  if (::fsync(descriptor) != 0) {
    const int error = errno;
    ::close(descriptor);
    return fail("fsync failed", error);
  }
  if (::close(descriptor) != 0) return fail("close failed", errno);
  if (std::rename(temporary.c_str(), output_html.c_str()) != 0) {
    return fail("cannot replace the file", errno);
  }
  return absl::OkStatus();
}

}  // namespace attnlab::experiments
