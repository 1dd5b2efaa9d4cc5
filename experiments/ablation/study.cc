#include "experiments/ablation/study.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <functional>
#include <set>

#define TOML_HEADER_ONLY 0
#define TOML_SHARED_LIB 1
#include <toml++/toml.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "experiments/config/config.h"
#include "framework/core/edit_distance.h"
#include "framework/core/error.h"
#include "framework/io/text_file.h"

namespace attnlab::experiments {
namespace {

namespace fs = std::filesystem;

// A table's entries in the order of the file: toml++ keeps tables sorted by key, but the
// order of variants matters (the first is the axis' base level).
std::vector<std::pair<std::string, const toml::node*>> InFileOrder(const toml::table& table) {
  std::vector<std::pair<std::string, const toml::node*>> entries;
  for (const auto& [key, node] : table) entries.emplace_back(std::string(key.str()), &node);
  std::stable_sort(entries.begin(), entries.end(), [](const auto& a, const auto& b) {
    const toml::source_position& x = a.second->source().begin;
    const toml::source_position& y = b.second->source().begin;
    return x.line != y.line ? x.line < y.line : x.column < y.column;
  });
  return entries;
}

// Reads one study file; every error starts with "<file>:<line>: ".
class StudyParser {
 public:
  explicit StudyParser(std::string path) : path_(std::move(path)) {}

  absl::StatusOr<Study> Parse(const std::string& text) {
    toml::table root;
    try {
      root = toml::parse(text, path_);
    } catch (const toml::parse_error& error) {
      return absl::InvalidArgumentError(
          absl::StrCat(path_, ":", error.source().begin.line,
                       ": invalid TOML: ", std::string(error.description())));
    }
    Study study;
    study.path = path_;
    for (const auto& [key, node] : root) {
      const std::string name(key.str());
      if (name != "study" && name != "set" && name != "axis" && name != "cell") {
        return Error(node, absl::StrCat("unknown top-level key '", name, "'; did you mean '",
                                        Nearest(name, {"study", "set", "axis", "cell"}),
                                        "'? (a study has [study], [set], [[axis]] and [[cell]])"));
      }
    }
    const toml::table* header = root["study"].as_table();
    if (header == nullptr) {
      return absl::InvalidArgumentError(
          absl::StrCat(path_,
                       ":1: no [study] table (it names the base config, seeds and "
                       "metrics; see experiments/recipes/studies/README.md)"));
    }
    RETURN_IF_ERROR(ParseHeader(*header, &study));
    if (const toml::node* set = root.get("set")) {
      const toml::table* table = set->as_table();
      if (table == nullptr) return Error(*set, "[set] must be a table of config keys");
      RETURN_IF_ERROR(Assignments(*table, "", &study.common));
    }
    if (const toml::node* axes = root.get("axis")) {
      const toml::array* array = axes->as_array();
      if (array == nullptr || !array->is_array_of_tables()) {
        return Error(*axes, "axes are written [[axis]] (an array of tables)");
      }
      for (const toml::node& axis : *array) {
        ASSIGN_OR_RETURN(Axis parsed, ParseAxis(*axis.as_table()));
        for (const Axis& other : study.axes) {
          if (other.name == parsed.name) {
            return Error(axis, absl::StrCat("duplicate axis name '", parsed.name, "' (also at ",
                                            other.where, "); give one a `name`"));
          }
        }
        study.axes.push_back(std::move(parsed));
      }
    }
    if (const toml::node* cells = root.get("cell")) {
      const toml::array* array = cells->as_array();
      if (array == nullptr || !array->is_array_of_tables()) {
        return Error(*cells, "cells are written [[cell]] (an array of tables)");
      }
      if (design_node_ != nullptr) {
        return Error(*design_node_,
                     "`design` forms the cells from the axes; with a [[cell]] list, leave it out");
      }
      study.design = StudyDesign::kExplicit;
      for (const toml::node& cell : *array) {
        ASSIGN_OR_RETURN(ExplicitCell parsed, ParseCell(*cell.as_table(), study.axes));
        study.cells.push_back(std::move(parsed));
      }
    } else if (study.axes.empty()) {
      return absl::InvalidArgumentError(absl::StrCat(
          path_, ":", header->source().begin.line,
          ": the study has no cells: add [[axis]] tables (a grid) or a [[cell]] list"));
    }
    return study;
  }

 private:
  std::string Where(const toml::node& node) const {
    return absl::StrCat(path_, ":", node.source().begin.line);
  }
  absl::Status Error(const toml::node& node, const std::string& message) const {
    return absl::InvalidArgumentError(absl::StrCat(Where(node), ": ", message));
  }
  static std::string Nearest(const std::string& name, const std::vector<std::string>& choices) {
    std::string nearest;
    int64_t best = INT64_MAX;
    for (const std::string& choice : choices) {
      const int64_t distance = EditDistance(name, choice);
      if (distance < best) best = distance, nearest = choice;
    }
    return nearest;
  }
  absl::Status CheckKeys(const toml::table& table, const std::string& what,
                         const std::vector<std::string>& allowed) const {
    for (const auto& [name, node] : InFileOrder(table)) {
      if (std::find(allowed.begin(), allowed.end(), name) == allowed.end()) {
        return Error(*node, absl::StrCat("unknown key '", name, "' in ", what, "; did you mean '",
                                         Nearest(name, allowed), "'? (", what, " has ",
                                         absl::StrJoin(allowed, ", "), ")"));
      }
    }
    return absl::OkStatus();
  }
  absl::StatusOr<std::string> String(const toml::table& table, const std::string& key,
                                     const std::string& what) const {
    const toml::node* node = table.get(key);
    if (node == nullptr) return std::string();
    if (!node->is_string() || node->as_string()->get().empty()) {
      return Error(*node, absl::StrCat("`", key, "` of ", what, " must be a non-empty string"));
    }
    return node->as_string()->get();
  }

  // A TOML value as a config value (numbers, booleans and strings only).
  absl::StatusOr<OptionValue> Value(const toml::node& node, const std::string& key) const {
    if (const auto integer = node.value_exact<int64_t>()) return OptionValue(*integer);
    if (const auto floating = node.value_exact<double>()) return OptionValue(*floating);
    if (const auto boolean = node.value_exact<bool>()) return OptionValue(*boolean);
    if (const auto string = node.value_exact<std::string>()) return OptionValue(*string);
    return Error(node,
                 absl::StrCat("'", key, "': a config value is a number, a boolean or a string"));
  }

  // Checks a key and value against the schema (unknown key, type, range, choices) here,
  // so that the error points at the study's line.
  absl::StatusOr<KeyAssignment> Assignment(const std::string& key, const toml::node& node) const {
    ASSIGN_OR_RETURN(OptionValue value, Value(node, key));
    Config defaults;
    RETURN_IF_ERROR(defaults.SetValue(key, value, Where(node)));
    return KeyAssignment{key, std::move(value), Where(node)};
  }

  // The leaves of a table of config keys ("model.heads = 1" or [model] heads = 1), flattened
  // to dotted names.
  absl::Status Assignments(const toml::table& table, const std::string& prefix,
                           std::vector<KeyAssignment>* out) const {
    for (const auto& [key, node] : InFileOrder(table)) {
      const std::string name = prefix.empty() ? key : absl::StrCat(prefix, ".", key);
      if (const toml::table* child = node->as_table()) {
        RETURN_IF_ERROR(Assignments(*child, name, out));
        continue;
      }
      ASSIGN_OR_RETURN(KeyAssignment assignment, Assignment(name, *node));
      out->push_back(std::move(assignment));
    }
    return absl::OkStatus();
  }

  absl::Status ParseHeader(const toml::table& header, Study* study) {
    RETURN_IF_ERROR(CheckKeys(
        header, "[study]",
        {"name", "description", "base", "seeds", "metrics", "design", "base_cell", "time_to"}));
    ASSIGN_OR_RETURN(study->name, String(header, "name", "[study]"));
    if (study->name.empty()) study->name = fs::path(path_).stem().string();
    if (!IsValidCellName(study->name)) {
      const toml::node* node = header.get("name");
      return absl::InvalidArgumentError(
          absl::StrCat(node ? Where(*node) : absl::StrCat(path_, ":", header.source().begin.line),
                       ": the study name '", study->name,
                       "' names its run directory: use letters, digits and . _ + = - only"));
    }
    ASSIGN_OR_RETURN(study->description, String(header, "description", "[study]"));

    const toml::node* base = header.get("base");
    if (base == nullptr || !base->is_string()) {
      return absl::InvalidArgumentError(absl::StrCat(
          base ? Where(*base) : absl::StrCat(path_, ":", header.source().begin.line),
          ": [study] needs `base = \"path/to/config.toml\"` (relative to the study file)"));
    }
    study->base_config =
        (fs::path(path_).parent_path() / base->as_string()->get()).lexically_normal().string();
    study->base_where = Where(*base);

    const toml::node* seeds = header.get("seeds");
    if (seeds == nullptr) {
      return absl::InvalidArgumentError(
          absl::StrCat(path_, ":", header.source().begin.line,
                       ": [study] needs `seeds` (a list such as [1, 2, 3], or a count such as 3)"));
    }
    if (const auto count = seeds->value_exact<int64_t>()) {
      // Each seed is a training run of every cell: a count past this is a typo, and
      // trillions of them would exhaust memory before anything runs.
      constexpr int64_t kMaxSeedCount = 1000;
      if (*count < 1 || *count > kMaxSeedCount) {
        return Error(*seeds,
                     absl::StrCat("`seeds` as a count must be between 1 and ", kMaxSeedCount));
      }
      for (int64_t seed = 1; seed <= *count; ++seed) study->seeds.push_back(seed);
    } else if (const toml::array* list = seeds->as_array(); list != nullptr && !list->empty()) {
      for (const toml::node& seed : *list) {
        const auto value = seed.value_exact<int64_t>();
        if (!value || *value < 0) return Error(seed, "a seed is a non-negative integer");
        if (std::find(study->seeds.begin(), study->seeds.end(), *value) != study->seeds.end()) {
          return Error(seed, absl::StrCat("seed ", *value, " is listed twice"));
        }
        study->seeds.push_back(*value);
      }
    } else {
      return Error(*seeds, "`seeds` is a non-empty list of integers, or a count");
    }

    const toml::node* metrics = header.get("metrics");
    const toml::array* metric_list = metrics ? metrics->as_array() : nullptr;
    if (metric_list == nullptr || metric_list->empty()) {
      return absl::InvalidArgumentError(absl::StrCat(
          metrics ? Where(*metrics) : absl::StrCat(path_, ":", header.source().begin.line),
          ": [study] needs `metrics`, a non-empty list of test metric names "
          "(e.g. [\"exact_match\", \"loss\"])"));
    }
    for (const toml::node& metric : *metric_list) {
      const auto name = metric.value_exact<std::string>();
      if (!name || name->empty()) return Error(metric, "a metric is a non-empty string");
      if (std::find(study->metrics.begin(), study->metrics.end(), *name) != study->metrics.end()) {
        return Error(metric, absl::StrCat("metric '", *name, "' is listed twice"));
      }
      study->metrics.push_back(*name);
    }
    study->metrics_where = Where(*metrics);

    if (const toml::node* design = header.get("design")) {
      design_node_ = design;
      const auto text = design->value_exact<std::string>();
      if (text == "grid") {
        study->design = StudyDesign::kGrid;
      } else if (text == "one_at_a_time") {
        study->design = StudyDesign::kOneAtATime;
      } else {
        return Error(*design, "`design` is \"grid\" or \"one_at_a_time\"");
      }
    }
    if (const toml::node* time_to = header.get("time_to")) {
      const toml::table* targets = time_to->as_table();
      if (targets == nullptr || targets->empty()) {
        return Error(*time_to, "`time_to` is a table of validation metric targets: { wer = 40.0 }");
      }
      for (const auto& [metric, node] : InFileOrder(*targets)) {
        const auto value = node->value<double>();  // an integer or a float
        if (!node->is_number() || !value || !std::isfinite(*value)) {
          return Error(*node, absl::StrCat("time_to.", metric, ": the target is a number (e.g. ",
                                           metric, " = 40.0)"));
        }
        study->time_to.push_back({metric, *value, false, Where(*node)});
      }
    }
    ASSIGN_OR_RETURN(study->base_cell, String(header, "base_cell", "[study]"));
    if (const toml::node* node = header.get("base_cell")) study->base_cell_where = Where(*node);
    return absl::OkStatus();
  }

  absl::StatusOr<Axis> ParseAxis(const toml::table& table) const {
    RETURN_IF_ERROR(CheckKeys(table, "[[axis]]", {"name", "key", "values", "variants"}));
    Axis axis;
    axis.where = Where(table);
    ASSIGN_OR_RETURN(axis.name, String(table, "name", "[[axis]]"));
    ASSIGN_OR_RETURN(const std::string key, String(table, "key", "[[axis]]"));
    const toml::node* values = table.get("values");
    const toml::node* variants = table.get("variants");
    if ((values != nullptr) == (variants != nullptr)) {
      return Error(table, "an [[axis]] has either `key` and `values`, or `variants`");
    }
    if (values != nullptr) {
      if (key.empty()) return Error(*values, "`values` needs the config `key` they are for");
      if (FindConfigKey(key) == nullptr) {
        return Error(*table.get("key"), absl::StrCat("unknown key '", key, "'; did you mean '",
                                                     NearestConfigKey(key), "'?"));
      }
      if (axis.name.empty()) axis.name = key.substr(key.rfind('.') + 1);
      const toml::array* list = values->as_array();
      if (list == nullptr) return Error(*values, "`values` is a list");
      if (list->empty()) return Error(*values, absl::StrCat("axis '", axis.name, "' is empty"));
      for (const toml::node& value : *list) {
        ASSIGN_OR_RETURN(KeyAssignment assignment, Assignment(key, value));
        AxisLevel level;
        level.label = LevelLabel(axis.name, assignment.value);
        level.where = assignment.where;
        level.assignments.push_back(std::move(assignment));
        RETURN_IF_ERROR(AddLevel(value, std::move(level), &axis));
      }
      return axis;
    }
    if (!key.empty()) return Error(*table.get("key"), "an axis of `variants` has no `key`");
    if (axis.name.empty()) return Error(table, "an axis of `variants` needs a `name`");
    const toml::table* list = variants->as_table();
    if (list == nullptr) {
      return Error(*variants, "`variants` is a table: variants.<name> = { key = value, ... }");
    }
    if (list->empty()) return Error(*variants, absl::StrCat("axis '", axis.name, "' is empty"));
    for (const auto& [name, variant] : InFileOrder(*list)) {
      const toml::table* keys = variant->as_table();
      if (keys == nullptr || keys->empty()) {
        return Error(*variant,
                     absl::StrCat("variant '", name, "' is a non-empty table of config keys"));
      }
      if (!IsValidCellName(name)) {
        return Error(*variant, absl::StrCat("variant name '", name,
                                            "' is part of directory names: use letters, "
                                            "digits and . _ + = - only"));
      }
      AxisLevel level;
      level.label = name;
      level.where = Where(*variant);
      RETURN_IF_ERROR(Assignments(*keys, "", &level.assignments));
      RETURN_IF_ERROR(AddLevel(*variant, std::move(level), &axis));
    }
    return axis;
  }

  absl::Status AddLevel(const toml::node& node, AxisLevel level, Axis* axis) const {
    for (const AxisLevel& other : axis->levels) {
      if (other.label == level.label) {
        return Error(node, absl::StrCat("axis '", axis->name, "' lists '", level.label,
                                        "' twice (also at ", other.where, ")"));
      }
    }
    axis->levels.push_back(std::move(level));
    return absl::OkStatus();
  }

  absl::StatusOr<ExplicitCell> ParseCell(const toml::table& table,
                                         const std::vector<Axis>& axes) const {
    RETURN_IF_ERROR(CheckKeys(table, "[[cell]]", {"name", "base", "axes", "set"}));
    ExplicitCell cell;
    cell.where = Where(table);
    ASSIGN_OR_RETURN(cell.name, String(table, "name", "[[cell]]"));
    if (cell.name.empty()) return Error(table, "a [[cell]] needs a `name`");
    if (const toml::node* base = table.get("base")) {
      if (!base->is_boolean()) return Error(*base, "`base` is true or false");
      cell.base = base->as_boolean()->get();
    }
    if (const toml::node* picks = table.get("axes")) {
      const toml::table* list = picks->as_table();
      if (list == nullptr) return Error(*picks, "`axes` is a table: { <axis name> = <level> }");
      for (const auto& [axis_name, pick_node] : InFileOrder(*list)) {
        const toml::node& pick = *pick_node;
        // By name, not the structured binding: clang before 16 cannot capture one.
        const std::string& name = axis_name;
        const auto axis =
            std::find_if(axes.begin(), axes.end(), [&](const Axis& a) { return a.name == name; });
        if (axis == axes.end()) {
          std::vector<std::string> names;
          for (const Axis& a : axes) names.push_back(a.name);
          return Error(pick,
                       names.empty()
                           ? absl::StrCat("no axis '", axis_name, "': the study has no [[axis]]")
                           : absl::StrCat("no axis '", axis_name, "'; did you mean '",
                                          Nearest(axis_name, names), "'?"));
        }
        // A level by its label ("dot", "pre") or, for a key axis, by its value (8).
        std::string label;
        if (const auto text = pick.value_exact<std::string>()) {
          label = *text;
        } else {
          ASSIGN_OR_RETURN(const OptionValue value, Value(pick, axis_name));
          label = LevelLabel(axis->name, value);
        }
        std::vector<std::string> labels;
        for (const AxisLevel& level : axis->levels) labels.push_back(level.label);
        if (std::find(labels.begin(), labels.end(), label) == labels.end()) {
          return Error(pick, absl::StrCat("axis '", axis_name, "' has no level '", label,
                                          "' (it has ", absl::StrJoin(labels, ", "), ")"));
        }
        cell.picks.emplace_back(axis_name, label);
      }
    }
    if (const toml::node* set = table.get("set")) {
      const toml::table* keys = set->as_table();
      if (keys == nullptr) return Error(*set, "`set` is a table: { model.heads = 8, ... }");
      RETURN_IF_ERROR(Assignments(*keys, "", &cell.assignments));
    }
    return cell;
  }

  static std::string LevelLabel(const std::string& axis, const OptionValue& value) {
    if (const auto* text = std::get_if<std::string>(&value)) return *text;
    return absl::StrCat(axis, "-", FormatOptionValue(value));
  }

  std::string path_;
  const toml::node* design_node_ = nullptr;
};

}  // namespace

bool IsValidCellName(const std::string& name) {
  if (name.empty() || name == "." || name == "..") return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
           c == '_' || c == '+' || c == '=' || c == '-';
  });
}

absl::StatusOr<Study> ParseStudy(const std::string& text, const std::string& path) {
  return StudyParser(path).Parse(text);
}

absl::StatusOr<Study> LoadStudy(const std::string& path) {
  if (!fs::exists(path)) return absl::NotFoundError(absl::StrCat(path, ": no such study file"));
  ASSIGN_OR_RETURN(const std::string text, ReadTextFile(path));
  return ParseStudy(text, path);
}

}  // namespace attnlab::experiments
