#include "framework/core/option_fields.h"

#include <algorithm>
#include <charconv>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"

namespace attnlab {
namespace {

// Bounds print as values of the field's type: "[1, 1048576]" for an integer (not
// "[1.0, 1.04858e+06]"), "[0.0, 0.99]" for a float.
std::string FormatBound(OptionType type, double bound) {
  return type == OptionType::kInt ? absl::StrCat(static_cast<int64_t>(bound))
                                  : FormatOptionValue(bound);
}

std::string FormatRange(const OptionRules& rules) {
  return absl::StrCat("[", rules.min ? FormatBound(rules.type, *rules.min) : "-inf", ", ",
                      rules.max ? FormatBound(rules.type, *rules.max) : "inf", "]");
}

}  // namespace

std::string OptionTypeName(OptionType type) {
  switch (type) {
    case OptionType::kInt:
      return "integer";
    case OptionType::kFloat:
      return "float";
    case OptionType::kBool:
      return "boolean";
    case OptionType::kString:
      return "string";
  }
  return "?";
}

std::string OptionTypeWithArticle(OptionType type) {
  return (type == OptionType::kInt ? "an " : "a ") + OptionTypeName(type);
}

std::string FormatOptionValue(const OptionValue& value) {
  if (const auto* i = std::get_if<int64_t>(&value)) return absl::StrCat(*i);
  if (const auto* d = std::get_if<double>(&value)) {
    // The shortest text that reads back as exactly this double, so that a saved resolved
    // config reloads bit for bit (a fixed "%.10g" would round 0.123456789012 away).
    char buffer[64];
    const std::to_chars_result printed = std::to_chars(buffer, buffer + sizeof(buffer), *d);
    std::string text(buffer, printed.ptr);
    if (text.find_first_of(".eEn") == std::string::npos) text += ".0";
    return text;
  }
  if (const auto* b = std::get_if<bool>(&value)) return *b ? "true" : "false";
  // A TOML basic string: escape backslashes, quotes and control characters (a raw
  // newline would end a basic string, and TOML forbids the other raw control characters).
  std::string escaped;
  for (char c : std::get<std::string>(value)) {
    if (c == '\\' || c == '"') {
      escaped += '\\';
      escaped += c;
    } else if (c == '\n') {
      escaped += "\\n";
    } else if (static_cast<unsigned char>(c) < 0x20 || c == 0x7F) {
      absl::StrAppend(&escaped, absl::StrFormat("\\u%04X", static_cast<unsigned char>(c)));
    } else {
      escaped += c;
    }
  }
  return absl::StrCat("\"", escaped, "\"");
}

absl::StatusOr<OptionValue> CheckOptionValue(const OptionRules& rules, const std::string& full_name,
                                             OptionValue value) {
  const bool matches =
      (rules.type == OptionType::kInt && std::holds_alternative<int64_t>(value)) ||
      (rules.type == OptionType::kFloat &&
       (std::holds_alternative<double>(value) || std::holds_alternative<int64_t>(value))) ||
      (rules.type == OptionType::kBool && std::holds_alternative<bool>(value)) ||
      (rules.type == OptionType::kString && std::holds_alternative<std::string>(value));
  if (!matches) {
    return absl::InvalidArgumentError(
        absl::StrCat("'", full_name, "' must be ", OptionTypeWithArticle(rules.type)));
  }
  if (rules.type == OptionType::kFloat && std::holds_alternative<int64_t>(value)) {
    value = static_cast<double>(std::get<int64_t>(value));
  }
  if (const auto* d = std::get_if<double>(&value); d != nullptr && !std::isfinite(*d)) {
    // TOML and --set both read nan and inf; no option means anything by them, and a NaN
    // passes every range comparison below.
    return absl::OutOfRangeError(
        absl::StrCat("'", full_name, "' = ", FormatOptionValue(value), " is not a finite number"));
  }
  if (const auto* text = std::get_if<std::string>(&value)) {
    // Names become directory names and messages: a NUL would cut both short.
    const auto control = std::find_if(text->begin(), text->end(), [](char c) {
      return static_cast<unsigned char>(c) < 0x20 || c == 0x7F;
    });
    if (control != text->end()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "'", full_name, "' = ", FormatOptionValue(value), " contains a control character (",
          absl::StrFormat("\\u%04X", static_cast<unsigned char>(*control)), ")"));
    }
  }
  double number = 0;
  if (const auto* i = std::get_if<int64_t>(&value)) number = static_cast<double>(*i);
  if (const auto* d = std::get_if<double>(&value)) number = *d;
  const bool numeric = rules.type == OptionType::kInt || rules.type == OptionType::kFloat;
  if (numeric && ((rules.min && number < *rules.min) || (rules.max && number > *rules.max))) {
    return absl::OutOfRangeError(absl::StrCat("'", full_name, "' = ", FormatOptionValue(value),
                                              " is out of range ", FormatRange(rules)));
  }
  if (!rules.choices.empty()) {
    const std::string& text = std::get<std::string>(value);
    if (std::find(rules.choices.begin(), rules.choices.end(), text) == rules.choices.end()) {
      return absl::InvalidArgumentError(
          absl::StrCat("'", full_name, "' = \"", text,
                       "\" is not one of: ", absl::StrJoin(rules.choices, ", ")));
    }
  }
  return value;
}

std::string DescribeOptionRules(const OptionRules& rules) {
  std::string text = OptionTypeName(rules.type);
  if (!rules.choices.empty()) text = absl::StrCat("one of ", absl::StrJoin(rules.choices, ", "));
  if (rules.min || rules.max) absl::StrAppend(&text, " in ", FormatRange(rules));
  return text;
}

}  // namespace attnlab
