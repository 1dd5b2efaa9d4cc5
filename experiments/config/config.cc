#include "experiments/config/config.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#define TOML_HEADER_ONLY 0
#define TOML_SHARED_LIB 1
#include <toml++/toml.h>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "framework/core/error.h"
#include "framework/io/utf8.h"

namespace attnlab::experiments {

namespace fs = std::filesystem;

namespace {}  // namespace

// Reads a chain of TOML files (base first) into a Config.
class ConfigLoader {
 public:
  explicit ConfigLoader(Config& config) : config_(config) {}

  // `referenced_from` is "" for the top file, or where a `base = "..."` names this one.
  absl::Status LoadFile(const fs::path& path, const std::string& referenced_from = "") {
    const std::string context =
        referenced_from.empty() ? "" : absl::StrCat(" (the base named at ", referenced_from, ")");
    // The non-throwing overloads: a user's path can be anything (too long, unreadable).
    std::error_code error;
    const fs::file_status status = fs::status(path, error);
    if (status.type() == fs::file_type::not_found) {
      return absl::NotFoundError(absl::StrCat(path.string(), ": no such config file", context));
    }
    if (error) {
      return absl::InvalidArgumentError(
          absl::StrCat(path.string(), ": cannot read: ", error.message(), context));
    }
    const fs::path canonical = fs::weakly_canonical(path, error);
    if (error) {
      return absl::InvalidArgumentError(
          absl::StrCat(path.string(), ": cannot read: ", error.message(), context));
    }
    // Reading a directory yields no text, which would silently mean "all defaults".
    if (fs::is_directory(status)) {
      return absl::InvalidArgumentError(
          absl::StrCat(path.string(), ": is a directory, not a config file", context));
    }
    if (chain_.count(canonical.string()) != 0) {
      return absl::InvalidArgumentError(
          absl::StrCat(path.string(), ": inheritance cycle: ", absl::StrJoin(order_, " -> "),
                       " -> ", path.string()));
    }
    chain_.insert(canonical.string());
    order_.push_back(path.string());
    std::ifstream file(path, std::ios::binary);
    std::stringstream text;
    text << file.rdbuf();
    if (!file) return absl::InvalidArgumentError(absl::StrCat(path.string(), ": cannot read"));
    return LoadText(text.str(), path.string(), path.parent_path());
  }

  absl::Status LoadText(const std::string& text, const std::string& source_name,
                        const std::optional<fs::path>& directory) {
    toml::table root;
    try {
      root = toml::parse(text, source_name);
    } catch (const toml::parse_error& error) {
      return absl::InvalidArgumentError(
          absl::StrCat(source_name, ":", error.source().begin.line,
                       ": invalid TOML: ", std::string(error.description())));
    }
    // The base comes first, so this file's keys override it.
    if (const toml::node* base = root.get("base")) {
      const std::string where = absl::StrCat(source_name, ":", base->source().begin.line);
      if (!base->is_string())
        return absl::InvalidArgumentError(absl::StrCat(where, ": `base` must be a string path"));
      if (!directory)
        return absl::InvalidArgumentError(absl::StrCat(where, ": `base` needs a file location"));
      RETURN_IF_ERROR(LoadFile(*directory / std::string(*base->value<std::string>()), where));
    }
    for (const auto& [table_key, node] : root) {
      const std::string table_name(table_key.str());
      if (table_name == "base") continue;
      const std::string where = absl::StrCat(source_name, ":", node.source().begin.line);
      const toml::table* table = node.as_table();
      if (table == nullptr) {
        return absl::InvalidArgumentError(
            absl::StrCat(where, ": unknown top-level key '", table_name,
                         "'; keys live in tables such as [model]; did you mean '",
                         NearestConfigKey(table_name), "'?"));
      }
      for (const auto& [key, value] : *table) {
        RETURN_IF_ERROR(SetFromNode(absl::StrCat(table_name, ".", std::string(key.str())), value,
                                    absl::StrCat(source_name, ":", value.source().begin.line)));
      }
    }
    return absl::OkStatus();
  }

 private:
  absl::Status SetFromNode(const std::string& name, const toml::node& node,
                           const std::string& where) {
    ConfigValue value;
    if (const auto integer = node.value_exact<int64_t>()) {
      value = *integer;
    } else if (const auto floating = node.value_exact<double>()) {
      value = *floating;
    } else if (const auto boolean = node.value_exact<bool>()) {
      value = *boolean;
    } else if (const auto string = node.value_exact<std::string>()) {
      value = *string;
    } else {
      const ConfigKey* key = FindConfigKey(name);
      if (key == nullptr) return UnknownKeyError(name, where);
      return TypeError(*key, where);
    }
    return SetValue(name, std::move(value), where);
  }

 public:
  static absl::Status UnknownKeyError(const std::string& name, const std::string& where) {
    return absl::InvalidArgumentError(absl::StrCat(
        where, ": unknown key '", name, "'; did you mean '", NearestConfigKey(name), "'?"));
  }

  static absl::Status TypeError(const ConfigKey& key, const std::string& where) {
    return absl::InvalidArgumentError(
        absl::StrCat(where, ": '", key.name, "' must be ", ValueTypeWithArticle(key.type)));
  }

  absl::Status SetValue(const std::string& name, ConfigValue value, const std::string& where) {
    const ConfigKey* key = FindConfigKey(name);
    if (key == nullptr) return UnknownKeyError(name, where);
    const bool matches =
        (key->type == ValueType::kInt && std::holds_alternative<int64_t>(value)) ||
        (key->type == ValueType::kFloat &&
         (std::holds_alternative<double>(value) || std::holds_alternative<int64_t>(value))) ||
        (key->type == ValueType::kBool && std::holds_alternative<bool>(value)) ||
        (key->type == ValueType::kString && std::holds_alternative<std::string>(value));
    if (!matches) return TypeError(*key, where);
    if (key->type == ValueType::kFloat && std::holds_alternative<int64_t>(value)) {
      value = static_cast<double>(std::get<int64_t>(value));
    }
    return Assign(*key, std::move(value), where);
  }

  // An integer key's bounds print as integers ("[1, 1024]", not "[1.0, 1024.0]").
  static std::string FormatBound(const ConfigKey& key, double bound) {
    return key.type == ValueType::kInt ? FormatConfigValue(static_cast<int64_t>(bound))
                                       : FormatConfigValue(bound);
  }

  absl::Status Assign(const ConfigKey& key, ConfigValue value, const std::string& where) {
    if (const auto* d = std::get_if<double>(&value); d != nullptr && !std::isfinite(*d)) {
      // Both TOML and --set read nan and inf; no key means anything by them, and a NaN
      // passes every range comparison below.
      return absl::OutOfRangeError(absl::StrCat(
          where, ": '", key.name, "' = ", FormatConfigValue(value), " is not a finite number"));
    }
    if (const auto* text = std::get_if<std::string>(&value)) {
      // Names become directory names and messages: a NUL would cut both short.
      const auto control = std::find_if(text->begin(), text->end(), [](char c) {
        return static_cast<unsigned char>(c) < 0x20 || c == 0x7F;
      });
      if (control != text->end()) {
        return absl::InvalidArgumentError(
            absl::StrCat(where, ": '", key.name, "' = ", FormatConfigValue(value),
                         " contains a control character (",
                         absl::StrFormat("\\u%04X", static_cast<unsigned char>(*control)), ")"));
      }
    }
    double number = 0;
    if (const auto* i = std::get_if<int64_t>(&value)) number = static_cast<double>(*i);
    if (const auto* d = std::get_if<double>(&value)) number = *d;
    const bool numeric = key.type == ValueType::kInt || key.type == ValueType::kFloat;
    if (numeric && ((key.min && number < *key.min) || (key.max && number > *key.max))) {
      return absl::OutOfRangeError(
          absl::StrCat(where, ": '", key.name, "' = ", FormatConfigValue(value),
                       " is out of range [", key.min ? FormatBound(key, *key.min) : "-inf", ", ",
                       key.max ? FormatBound(key, *key.max) : "inf", "]"));
    }
    if (!key.choices.empty()) {
      const std::string& text = std::get<std::string>(value);
      if (std::find(key.choices.begin(), key.choices.end(), text) == key.choices.end()) {
        return absl::InvalidArgumentError(
            absl::StrCat(where, ": '", key.name, "' = \"", text,
                         "\" is not one of: ", absl::StrJoin(key.choices, ", ")));
      }
    }
    config_.values_[key.name] = std::move(value);
    config_.origins_[key.name] = where;
    return absl::OkStatus();
  }

 private:
  Config& config_;
  std::set<std::string> chain_;
  std::vector<std::string> order_;
};

Config::Config() {
  for (const ConfigKey& key : ConfigSchema()) {
    values_[key.name] = key.default_value;
    origins_[key.name] = "default";
  }
}

absl::StatusOr<Config> Config::Load(const std::string& path,
                                    const std::vector<std::string>& overrides) {
  Config config;
  config.path_ = path;
  ConfigLoader loader(config);
  RETURN_IF_ERROR(loader.LoadFile(path));
  for (const std::string& assignment : overrides) RETURN_IF_ERROR(config.Set(assignment));
  RETURN_IF_ERROR(config.CheckConsistency());
  return config;
}

absl::StatusOr<Config> Config::Parse(const std::string& text, const std::string& source_name,
                                     const std::vector<std::string>& overrides) {
  Config config;
  ConfigLoader loader(config);
  RETURN_IF_ERROR(loader.LoadText(text, source_name, std::nullopt));
  for (const std::string& assignment : overrides) RETURN_IF_ERROR(config.Set(assignment));
  RETURN_IF_ERROR(config.CheckConsistency());
  return config;
}

absl::Status Config::SetValue(const std::string& name, const ConfigValue& value,
                              const std::string& where) {
  ConfigLoader loader(*this);
  return loader.SetValue(name, value, where);
}

absl::Status Config::Set(const std::string& assignment) {
  const size_t equals = assignment.find('=');
  const std::string where = absl::StrCat("--set ", assignment);
  if (equals == std::string::npos) {
    return absl::InvalidArgumentError(absl::StrCat(where, ": expected table.key=value"));
  }
  const std::string name = assignment.substr(0, equals);
  const std::string text = assignment.substr(equals + 1);
  const ConfigKey* key = FindConfigKey(name);
  if (key == nullptr) return ConfigLoader::UnknownKeyError(name, where);
  ConfigValue value;
  bool parsed = true;
  switch (key->type) {
    case ValueType::kInt: {
      int64_t number;
      parsed = absl::SimpleAtoi(text, &number);
      value = number;
      break;
    }
    case ValueType::kFloat: {
      double number;
      parsed = absl::SimpleAtod(text, &number);
      value = number;
      break;
    }
    case ValueType::kBool:
      parsed = text == "true" || text == "false";
      value = text == "true";
      break;
    case ValueType::kString: {
      // Accept both bare and TOML-quoted strings.
      std::string unquoted = text;
      if (unquoted.size() >= 2 && unquoted.front() == '"' && unquoted.back() == '"') {
        unquoted = unquoted.substr(1, unquoted.size() - 2);
      }
      // The resolved config is saved as TOML, which is UTF-8 only: other bytes would make
      // it, and every checkpoint's copy of it, unreadable.
      if (FirstInvalidUtf8(unquoted).has_value()) {
        return absl::InvalidArgumentError(absl::StrCat(where, ": '", name, "' must be UTF-8 text"));
      }
      value = unquoted;
      break;
    }
  }
  if (!parsed) {
    return absl::InvalidArgumentError(
        absl::StrCat(where, ": '", name, "' must be ", ValueTypeWithArticle(key->type)));
  }
  ConfigLoader loader(*this);
  return loader.Assign(*key, std::move(value), "--set");
}

std::string Config::Describe(const std::string& key) const {
  return absl::StrCat(key, " = ", FormatConfigValue(values_.at(key)), " (", Origin(key), ")");
}

absl::Status Config::CheckConsistency() const {
  if (GetInt("train.max_steps") == 0 && GetInt("train.epochs") == 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(Describe("train.max_steps"), " and ", Describe("train.epochs"),
                     ": the run would take no step; set one of them"));
  }
  const int64_t d_model = GetInt("model.d_model");
  const int64_t heads = GetInt("model.heads");
  if (GetString("model.type") == "transformer" && GetInt("model.key_size") == 0 &&
      d_model % heads != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(Describe("model.d_model"), " is not divisible by ", Describe("model.heads"),
                     "; change one, or set model.key_size (the per-head size) explicitly"));
  }
  return absl::OkStatus();
}

const ConfigValue& Config::Get(const std::string& key, ValueType type) const {
  const ConfigKey* schema_key = FindConfigKey(key);
  ATTNLAB_CHECK(schema_key != nullptr, "Config: no key '", key, "' in the schema");
  ATTNLAB_CHECK(schema_key->type == type, "Config: '", key, "' is a ",
                ValueTypeName(schema_key->type), ", not a ", ValueTypeName(type));
  return values_.at(key);
}

int64_t Config::GetInt(const std::string& key) const {
  return std::get<int64_t>(Get(key, ValueType::kInt));
}
double Config::GetFloat(const std::string& key) const {
  return std::get<double>(Get(key, ValueType::kFloat));
}
bool Config::GetBool(const std::string& key) const {
  return std::get<bool>(Get(key, ValueType::kBool));
}
const std::string& Config::GetString(const std::string& key) const {
  return std::get<std::string>(Get(key, ValueType::kString));
}
const std::string& Config::Origin(const std::string& key) const { return origins_.at(key); }

std::string Config::ToToml() const {
  std::string out;
  std::string table;
  for (const ConfigKey& key : ConfigSchema()) {  // schema order keeps related keys together
    const std::string key_table = key.name.substr(0, key.name.find('.'));
    if (key_table != table) {
      absl::StrAppend(&out, out.empty() ? "" : "\n", "[", key_table, "]\n");
      table = key_table;
    }
    absl::StrAppend(&out, key.name.substr(table.size() + 1), " = ",
                    FormatConfigValue(values_.at(key.name)), "\n");
  }
  return out;
}

}  // namespace attnlab::experiments
