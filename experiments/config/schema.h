// The schema of experiment configs: every key, its type, default, allowed range or
// choices, and what it means. Configs are checked against it strictly, and the config
// reference (experiments/CONFIG.md) is generated from it, so the two cannot drift.
#pragma once

#include <optional>
#include <string>
#include <variant>
#include <vector>

namespace attnlab::experiments {

enum class ValueType { kInt, kFloat, kBool, kString };

using ConfigValue = std::variant<int64_t, double, bool, std::string>;

struct ConfigKey {
  std::string name;  // dotted: "model.d_model"
  ValueType type;
  ConfigValue default_value;
  std::string doc;
  std::optional<double> min;  // inclusive bounds for numbers
  std::optional<double> max;
  std::vector<std::string> choices;  // for strings with a closed set of values
};

const std::vector<ConfigKey>& ConfigSchema();
const ConfigKey* FindConfigKey(const std::string& name);
// The schema key closest to `name` (edit distance), for "did you mean" messages.
std::string NearestConfigKey(const std::string& name);
std::string ValueTypeName(ValueType type);
// "an integer", "a float", ...
std::string ValueTypeWithArticle(ValueType type);
std::string FormatConfigValue(const ConfigValue& value);
// The reference page: every key grouped by table, with type, default and meaning.
std::string ConfigReferenceMarkdown();

}  // namespace attnlab::experiments
