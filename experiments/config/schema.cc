#include "experiments/config/schema.h"

#include <algorithm>
#include <cstdint>

#include "absl/strings/str_cat.h"
#include "framework/core/edit_distance.h"
#include "layers/attention/attention.h"

namespace attnlab::experiments {
namespace {

// The fields of one table as keys "table.field".
template <class Table>
void AddTable(const std::string& table, Table ExperimentConfig::*member,
              const OptionFields<Table>& fields, std::vector<ConfigKey>& schema) {
  for (ConfigKey key : NestedOptions(member, fields)) {
    key.name = absl::StrCat(table, ".", key.name);
    schema.push_back(std::move(key));
  }
}

// The options a registered attention variant declares, as keys
// "attention.<variant>.<option>" stored in model.attention.variant_options[<variant>].
void AddAttentionVariantOptions(std::vector<ConfigKey>& schema) {
  for (const std::string& name : nn::AttentionNames()) {
    const nn::AttentionVariantEntry* variant = nn::FindAttentionVariant(name);
    for (const OptionField<std::any>& option : variant->option_fields) {
      schema.push_back(
          {absl::StrCat("attention.", name, ".", option.name), option.type, option.doc, option.min,
           option.max, option.choices,
           [variant, get = option.get](const ExperimentConfig& config) {
             const nn::AttentionVariantOptions& options = config.model.attention.variant_options;
             auto given = options.find(variant->name);
             return get(given != options.end() ? given->second : variant->default_options());
           },
           [variant, set = option.set](ExperimentConfig& config, const OptionValue& value) {
             nn::AttentionVariantOptions& options = config.model.attention.variant_options;
             auto given = options.find(variant->name);
             if (given == options.end()) {
               given = options.emplace(variant->name, variant->default_options()).first;
             }
             set(given->second, value);
           }});
    }
  }
}

std::vector<ConfigKey> BuildSchema() {
  std::vector<ConfigKey> schema;
  AddTable("experiment", &ExperimentConfig::experiment, ExperimentOptionFields(), schema);
  AddTable("task", &ExperimentConfig::task, TaskOptionFields(), schema);
  AddTable("model", &ExperimentConfig::model, nn::ModelOptionFields(), schema);
  AddTable("train", &ExperimentConfig::train, TrainOptionFields(), schema);
  AddTable("eval", &ExperimentConfig::eval, EvalOptionFields(), schema);
  AddAttentionVariantOptions(schema);
  return schema;
}

std::string TableOf(const std::string& key_name) { return key_name.substr(0, key_name.rfind('.')); }

}  // namespace

const std::vector<ConfigKey>& ConfigSchema() {
  // Built on first use, after every static registration (variants) has run.
  static const std::vector<ConfigKey>* schema = new std::vector<ConfigKey>(BuildSchema());
  return *schema;
}

const ConfigKey* FindConfigKey(const std::string& name) {
  for (const ConfigKey& key : ConfigSchema()) {
    if (key.name == name) return &key;
  }
  return nullptr;
}

std::string NearestConfigKey(const std::string& name) {
  std::string best;
  int64_t best_distance = INT64_MAX;
  for (const ConfigKey& key : ConfigSchema()) {
    // Compare with the whole name, and with the part after the table, so that
    // `model.dmodel` and `d_model` (table forgotten) both find `model.d_model`.
    const std::string tail = key.name.substr(key.name.rfind('.') + 1);
    const int64_t distance = std::min(EditDistance(name, key.name), EditDistance(name, tail) + 1);
    if (distance < best_distance) {
      best_distance = distance;
      best = key.name;
    }
  }
  return best;
}

OptionValue DefaultValue(const ConfigKey& key) {
  static const ExperimentConfig* defaults = new ExperimentConfig();
  return key.get(*defaults);
}

std::string ConfigReferenceMarkdown() {
  std::string out =
      "# Config reference\n\n"
      "Generated from the typed tables (`experiments/config/experiment_config.cc`,\n"
      "`layers/model_options.cc`) and the options of the registered attention variants\n"
      "(the test suite checks this page is current; regenerate with\n"
      "`attnlab keys > experiments/CONFIG.md`). A config is a TOML file with the tables\n"
      "below; `base = \"path\"` at the top inherits another config (relative to this file),\n"
      "and `--set table.key=value` overrides any key. An `[attention.<variant>]` table is\n"
      "read when `model.attention` names that variant.\n";
  std::string table;
  for (const ConfigKey& key : ConfigSchema()) {
    const std::string key_table = TableOf(key.name);
    if (key_table != table) {
      table = key_table;
      absl::StrAppend(&out, "\n## [", table,
                      "]\n\n| key | type | default | meaning |\n|---|---|---|---|\n");
    }
    absl::StrAppend(&out, "| `", key.name.substr(table.size() + 1), "` | ",
                    DescribeOptionRules(RulesOf(key)), " | `", FormatOptionValue(DefaultValue(key)),
                    "` | ", key.doc, " |\n");
  }
  return out;
}

}  // namespace attnlab::experiments
