// An experiment's configuration: a TOML file checked strictly against the schema
// (schema.h), with `base = "..."` inheritance and command-line overrides.
//
//   ASSIGN_OR_RETURN(Config config, Config::Load("experiments/recipes/copy/transformer.toml",
//                                                {"train.max_steps=100"}));
//   config.model().d_model;  // a typed table (experiment_config.h)
//
// Values are checked once, as they are read, against the schema (type, range, choices)
// and then against the rules that involve several keys; every error names the file and
// line (or the override) and, for an unknown key, the nearest valid one. After that, code
// reads plain struct fields.
#pragma once

#include <functional>
#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "experiments/config/schema.h"

namespace attnlab::experiments {

class Config {
 public:
  // Defaults only.
  Config();
  // Loads `path` (and its bases), then applies `overrides` ("table.key=value").
  static absl::StatusOr<Config> Load(const std::string& path,
                                     const std::vector<std::string>& overrides = {});
  // Parses TOML text as if read from `source_name` (no `base` allowed unless `directory`
  // is given to resolve it).
  static absl::StatusOr<Config> Parse(const std::string& text, const std::string& source_name,
                                      const std::vector<std::string>& overrides = {});

  // Applies one "table.key=value" override; the value is parsed by the key's type.
  absl::Status Set(const std::string& assignment);
  // Sets `name` to an already typed value (an integer is accepted for a float key), with
  // the same checks as a config file: unknown key (naming the nearest), type, range and
  // choices. Errors and Origin() name `where` (e.g. "study.toml:12").
  absl::Status SetValue(const std::string& name, const OptionValue& value,
                        const std::string& where);

  // The tables.
  const ExperimentOptions& experiment() const { return values_.experiment; }
  const TaskOptions& task() const { return values_.task; }
  const nn::ModelOptions& model() const { return values_.model; }
  const TrainOptions& train() const { return values_.train; }
  const EvalOptions& eval() const { return values_.eval; }
  const ExperimentConfig& values() const { return values_; }

  // The value of a key named at run time (a study's axis, a summary column); code that
  // knows the key reads the table's field instead.
  OptionValue Value(const std::string& key) const;
  // Where the value came from: "file.toml:12", "--set", or "default".
  const std::string& Origin(const std::string& key) const;
  // "model.heads = 3 (x.toml:7)": a key, its value and origin, for error messages.
  std::string Describe(const std::string& key) const;
  // The rules that involve several keys (e.g. heads divides d_model, some step budget);
  // Load and Parse apply them after the overrides, naming each key's origin.
  absl::Status CheckConsistency() const;

  // The resolved config as TOML (every key, grouped by table), reloadable with Parse.
  std::string ToToml() const;
  // The config file this was loaded from ("" if parsed from text).
  const std::string& path() const { return path_; }

 private:
  ExperimentConfig values_;
  std::map<std::string, std::string> origins_;
  std::string path_;
  friend class ConfigLoader;
};

// A key whose value differs between two configs, both values as a config file writes them.
struct KeyDifference {
  std::string key, before, after;
};

// The keys chosen by `compared` (by name, in schema order) whose values differ between
// `before` and `after`: what a resumed run or an average of checkpoints must keep.
std::vector<KeyDifference> DifferingKeys(const Config& before, const Config& after,
                                         const std::function<bool(const std::string&)>& compared);

}  // namespace attnlab::experiments
