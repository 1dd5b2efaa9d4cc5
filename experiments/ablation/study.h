// A study file: the description of an ablation (a TOML file, see
// experiments/recipes/studies/README.md). It names a base config, the keys every cell sets, the
// axes to vary, how cells are formed from them, the seeds and the metrics to report:
//
//   [study]
//   base = "../dates/transformer.toml"      # relative to the study file
//   seeds = [1, 2, 3]                       # or a count: seeds = 3
//   metrics = ["exact_match", "loss"]       # test metrics of each run
//   time_to = { exact_match = 90.0 }        # optional: training time to a validation value
//   design = "grid"                         # or "one_at_a_time"; absent with [[cell]]
//   [set]                                   # every cell
//   train.max_steps = 600
//   [[axis]]                                # a key and its values ...
//   key = "model.attention"
//   values = ["scaled_dot", "dot"]
//   [[axis]]                                # ... or named variants setting several keys
//   name = "norm"
//   variants.post = { model.norm = "post" }
//   variants.pre = { model.norm = "pre", train.warmup_steps = 800 }
//
// Parsing checks everything that does not need the base config: the study's own keys
// and their types, empty axes, duplicate axis, level and cell names, and every config
// key and value against the schema (unknown key with the nearest one, type, range,
// choices). Every error starts with "<file>:<line>: ".
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "experiments/config/schema.h"

namespace attnlab::experiments {

// A value the study gives a config key, and where it says so ("study.toml:12").
struct KeyAssignment {
  std::string key;  // "model.heads"
  OptionValue value;
  std::string where;
};

// One value of an axis: a single key's value, or a named variant setting several keys.
struct AxisLevel {
  // The level's name in cell names: the value for strings ("dot"), "<axis>-<value>" for
  // numbers and booleans ("heads-8", "dropout-0.3"), the variant's name for variants.
  std::string label;
  std::vector<KeyAssignment> assignments;
  std::string where;
};

struct Axis {
  std::string name;               // `name`, or the key's last part ("model.heads" -> "heads")
  std::vector<AxisLevel> levels;  // the first is the axis' base level
  std::string where;
};

// A [[cell]] of an explicit cell list.
struct ExplicitCell {
  std::string name;
  bool base = false;
  // Levels picked by axis name (`axes = { attention = "dot" }`); other axes stay at their
  // first level.
  std::vector<std::pair<std::string, std::string>> picks;
  std::vector<KeyAssignment> assignments;  // `set = { ... }`, applied last
  std::string where;
};

enum class StudyDesign {
  kGrid,        // every combination of the axes' levels
  kOneAtATime,  // a base cell (every axis at its first level), then one cell per other
                // level, changing that axis only (Table 3 of "Attention Is All You Need")
  kExplicit,    // the [[cell]] list
};

// A `time_to` target: the training time until a validation `metric` first reaches `value`
// (<= for lower-is-better metrics, >= for higher-is-better ones).
struct TimeTarget {
  std::string metric;
  double value = 0.0;
  bool higher_is_better = false;  // set by PlanStudy from the task's metrics
  std::string where;
};

struct Study {
  std::string path;         // the study file
  std::string name;         // [study] name, or the file's stem; runs go to <runs_dir>/<name>
  std::string description;  // [study] description (optional), printed atop summary.md
  std::string base_config;  // path of the base config (resolved against the study's directory)
  std::string base_where;
  std::vector<KeyAssignment> common;  // [set]
  std::vector<Axis> axes;
  StudyDesign design = StudyDesign::kGrid;
  std::vector<ExplicitCell> cells;
  std::string base_cell;  // [study] base_cell ("" = the first cell, or the one marked base)
  std::string base_cell_where;
  std::vector<int64_t> seeds;
  std::vector<std::string> metrics;
  std::string metrics_where;
  std::vector<TimeTarget> time_to;  // in file order
};

absl::StatusOr<Study> LoadStudy(const std::string& path);
// Parses study text as if read from `path` (relative paths resolve against its directory).
absl::StatusOr<Study> ParseStudy(const std::string& text, const std::string& path);

// Cell names become directory names: letters, digits and . _ + = - only.
bool IsValidCellName(const std::string& name);

}  // namespace attnlab::experiments
