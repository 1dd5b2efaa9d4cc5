#include "experiments/config/config.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <utility>

#define TOML_HEADER_ONLY 0
#define TOML_SHARED_LIB 1
#include <toml++/toml.h>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "framework/core/error.h"
#include "framework/io/utf8.h"

namespace attnlab::experiments {

namespace fs = std::filesystem;

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
      RETURN_IF_ERROR(LoadTable(*table, table_name, source_name));
    }
    return absl::OkStatus();
  }

 private:
  // The keys of `table` (and of its sub-tables, e.g. [attention.local]) under `prefix`.
  absl::Status LoadTable(const toml::table& table, const std::string& prefix,
                         const std::string& source_name) {
    for (const auto& [key, value] : table) {
      const std::string name = absl::StrCat(prefix, ".", std::string(key.str()));
      if (const toml::table* sub_table = value.as_table();
          sub_table != nullptr && FindConfigKey(name) == nullptr) {
        RETURN_IF_ERROR(LoadTable(*sub_table, name, source_name));
        continue;
      }
      RETURN_IF_ERROR(
          SetFromNode(name, value, absl::StrCat(source_name, ":", value.source().begin.line)));
    }
    return absl::OkStatus();
  }

  absl::Status SetFromNode(const std::string& name, const toml::node& node,
                           const std::string& where) {
    OptionValue value;
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
        absl::StrCat(where, ": '", key.name, "' must be ", OptionTypeWithArticle(key.type)));
  }

  absl::Status SetValue(const std::string& name, OptionValue value, const std::string& where) {
    const ConfigKey* key = FindConfigKey(name);
    if (key == nullptr) return UnknownKeyError(name, where);
    return Assign(*key, std::move(value), where);
  }

  // Checks `value` against the key's rules (type, finite, range, choices) and stores it.
  absl::Status Assign(const ConfigKey& key, OptionValue value, const std::string& where) {
    absl::StatusOr<OptionValue> checked =
        CheckOptionValue(RulesOf(key), key.name, std::move(value));
    if (!checked.ok()) {
      return absl::Status(checked.status().code(),
                          absl::StrCat(where, ": ", checked.status().message()));
    }
    key.set(config_.values_, *checked);
    config_.origins_[key.name] = where;
    return absl::OkStatus();
  }

 private:
  Config& config_;
  std::set<std::string> chain_;
  std::vector<std::string> order_;
};

Config::Config() {
  for (const ConfigKey& key : ConfigSchema()) origins_[key.name] = "default";
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

absl::Status Config::SetValue(const std::string& name, const OptionValue& value,
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
  OptionValue value;
  bool parsed = true;
  switch (key->type) {
    case OptionType::kInt: {
      int64_t number;
      parsed = absl::SimpleAtoi(text, &number);
      value = number;
      break;
    }
    case OptionType::kFloat: {
      double number;
      parsed = absl::SimpleAtod(text, &number);
      value = number;
      break;
    }
    case OptionType::kBool:
      parsed = text == "true" || text == "false";
      value = text == "true";
      break;
    case OptionType::kString: {
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
        absl::StrCat(where, ": '", name, "' must be ", OptionTypeWithArticle(key->type)));
  }
  ConfigLoader loader(*this);
  return loader.Assign(*key, std::move(value), "--set");
}

std::string Config::Describe(const std::string& key) const {
  return absl::StrCat(key, " = ", FormatOptionValue(Value(key)), " (", Origin(key), ")");
}

absl::Status Config::CheckConsistency() const {
  if (values_.train.max_steps == 0 && values_.train.epochs == 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(Describe("train.max_steps"), " and ", Describe("train.epochs"),
                     ": the run would take no step; set one of them"));
  }
  if (values_.train.ema_decay >= 1.0) {
    return absl::InvalidArgumentError(
        absl::StrCat(Describe("train.ema_decay"),
                     ": a decay of 1 would never move the average; it must be below 1"));
  }
  const nn::ModelOptions& model = values_.model;
  if (model.type == "transformer" && model.attention.key_size == 0 &&
      model.d_model % model.attention.heads != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(Describe("model.d_model"), " is not divisible by ", Describe("model.heads"),
                     "; change one, or set model.key_size (the per-head size) explicitly"));
  }
  return absl::OkStatus();
}

OptionValue Config::Value(const std::string& key) const {
  const ConfigKey* schema_key = FindConfigKey(key);
  ATTNLAB_CHECK(schema_key != nullptr, "Config: no key '", key, "' in the schema");
  return schema_key->get(values_);
}

const std::string& Config::Origin(const std::string& key) const { return origins_.at(key); }

std::string Config::ToToml() const {
  std::string out;
  std::string table;
  for (const ConfigKey& key : ConfigSchema()) {  // schema order keeps related keys together
    const std::string key_table = key.name.substr(0, key.name.rfind('.'));
    if (key_table != table) {
      absl::StrAppend(&out, out.empty() ? "" : "\n", "[", key_table, "]\n");
      table = key_table;
    }
    absl::StrAppend(&out, key.name.substr(table.size() + 1), " = ",
                    FormatOptionValue(key.get(values_)), "\n");
  }
  return out;
}

std::vector<KeyDifference> DifferingKeys(const Config& before, const Config& after,
                                         const std::function<bool(const std::string&)>& compared) {
  std::vector<KeyDifference> differences;
  for (const ConfigKey& key : ConfigSchema()) {
    if (!compared(key.name)) continue;
    std::string before_value = FormatOptionValue(key.get(before.values()));
    std::string after_value = FormatOptionValue(key.get(after.values()));
    if (before_value != after_value) {
      differences.push_back({key.name, std::move(before_value), std::move(after_value)});
    }
  }
  return differences;
}

}  // namespace attnlab::experiments
