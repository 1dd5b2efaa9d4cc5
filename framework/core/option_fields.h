// Typed options: a plain struct plus the list of its fields, each with its key, meaning and
// allowed values. The struct's member initialisers are the defaults (read from a
// default-constructed struct), so a default is written once, in the struct, and the
// field list beside it adds the range and the documentation:
//
//   struct WindowOptions {
//     int64_t window = 16;
//   };
//   const OptionFields<WindowOptions>& WindowOptionFields() {
//     static const auto* fields = new OptionFields<WindowOptions>{
//         IntOption("window", &WindowOptions::window, "Keys within this distance.", 1, 4096)};
//     return *fields;
//   }
//
// Configs (experiments/config) bind TOML tables to such lists, and layers declare their
// own (an attention variant's hyper-parameters); checking a value against a field is
// done here, once, so every place that sets an option reports the same error.
#pragma once

#include <any>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "absl/status/statusor.h"

namespace attnlab {

enum class OptionType { kInt, kFloat, kBool, kString };

using OptionValue = std::variant<int64_t, double, bool, std::string>;

// One field of options struct S.
template <class S>
struct OptionField {
  std::string name;  // the key within its table, e.g. "d_model"
  OptionType type = OptionType::kInt;
  std::string doc;
  std::optional<double> min, max;  // inclusive bounds of numbers
  // The closed set of values of a string field (a function, since it may be a registry's
  // names, known only once every registration has run); empty: any text.
  std::function<std::vector<std::string>()> choices;
  std::function<OptionValue(const S&)> get;
  // Stores a value already checked by CheckOptionValue().
  std::function<void(S&, const OptionValue&)> set;
};

template <class S>
using OptionFields = std::vector<OptionField<S>>;

std::string OptionTypeName(OptionType type);         // "integer", "float", ...
std::string OptionTypeWithArticle(OptionType type);  // "an integer", "a float", ...
// As TOML writes it: 3, 0.1, true, "text" (floats in the shortest form that reads back
// exactly, strings escaped).
std::string FormatOptionValue(const OptionValue& value);

// Describes the checks of one field without its struct, so CheckOptionValue is not a
// template. RulesOf(field) gives it.
struct OptionRules {
  std::string name;
  OptionType type;
  std::optional<double> min, max;
  std::vector<std::string> choices;
};
template <class S>
OptionRules RulesOf(const OptionField<S>& field) {
  return {field.name, field.type, field.min, field.max,
          field.choices ? field.choices() : std::vector<std::string>()};
}

// Converts `value` to the field's type (an integer is accepted for a float) and checks
// it: type, finite, range, choices, no control characters in text. Returns the value to
// store, or an error without location ("'model.heads' = 0 is out of range [1, 1024]":
// OutOfRange for numbers outside their range, InvalidArgument otherwise), which the
// caller prefixes with where the value came from.
absl::StatusOr<OptionValue> CheckOptionValue(const OptionRules& rules, const std::string& full_name,
                                             OptionValue value);

// "integer in [1, 1024]", "one of post, pre", "boolean": for references and errors.
std::string DescribeOptionRules(const OptionRules& rules);

// A closed set of names for StringOption's `choices`.
inline std::function<std::vector<std::string>()> FixedChoices(std::vector<std::string> names) {
  return [names = std::move(names)] { return names; };
}

// ---- Field makers ------------------------------------------------------------------
// `member` is a pointer to a member of S; min/max bound numbers (inclusive).

// A field stored as member `member` of type T (int64_t, double, bool or std::string).
template <class S, class T>
OptionField<S> MemberOption(std::string name, T S::*member, OptionType type, std::string doc,
                            std::optional<double> min, std::optional<double> max,
                            std::function<std::vector<std::string>()> choices) {
  return {std::move(name),
          type,
          std::move(doc),
          min,
          max,
          std::move(choices),
          [member](const S& s) { return OptionValue(s.*member); },
          [member](S& s, const OptionValue& v) { s.*member = std::get<T>(v); }};
}

template <class S>
OptionField<S> IntOption(std::string name, int64_t S::*member, std::string doc,
                         std::optional<double> min = 0, std::optional<double> max = std::nullopt) {
  return MemberOption(std::move(name), member, OptionType::kInt, std::move(doc), min, max, nullptr);
}

template <class S>
OptionField<S> FloatOption(std::string name, double S::*member, std::string doc,
                           std::optional<double> min = 0,
                           std::optional<double> max = std::nullopt) {
  return MemberOption(std::move(name), member, OptionType::kFloat, std::move(doc), min, max,
                      nullptr);
}

template <class S>
OptionField<S> BoolOption(std::string name, bool S::*member, std::string doc) {
  return MemberOption(std::move(name), member, OptionType::kBool, std::move(doc), std::nullopt,
                      std::nullopt, nullptr);
}

// A string; `choices` (if any) is its closed set of values, e.g. a registry's names.
template <class S>
OptionField<S> StringOption(std::string name, std::string S::*member, std::string doc,
                            std::function<std::vector<std::string>()> choices = nullptr) {
  return MemberOption(std::move(name), member, OptionType::kString, std::move(doc), std::nullopt,
                      std::nullopt, std::move(choices));
}

// An enum written as one of the names in `values` ({"post", kPost}, {"pre", kPre}).
template <class S, class E>
OptionField<S> EnumOption(std::string name, E S::*member,
                          std::vector<std::pair<std::string, E>> values, std::string doc) {
  std::vector<std::string> names;
  for (const auto& [text, value] : values) names.push_back(text);
  return {std::move(name),
          OptionType::kString,
          std::move(doc),
          std::nullopt,
          std::nullopt,
          [names] { return names; },
          [member, values](const S& s) {
            for (const auto& [text, value] : values) {
              if (s.*member == value) return OptionValue(text);
            }
            return OptionValue(std::string("?"));
          },
          [member, values](S& s, const OptionValue& v) {
            for (const auto& [text, value] : values) {
              if (std::get<std::string>(v) == text) s.*member = value;
            }
          }};
}

// The fields of sub-struct `member` as fields of S, under the same names: e.g. the
// attention keys of [model] (heads, key_size) living in ModelOptions::attention.
template <class S, class Part>
OptionFields<S> NestedOptions(Part S::*member, const OptionFields<Part>& fields) {
  OptionFields<S> lifted;
  for (const OptionField<Part>& field : fields) {
    lifted.push_back(
        {field.name, field.type, field.doc, field.min, field.max, field.choices,
         [member, get = field.get](const S& s) { return get(s.*member); },
         [member, set = field.set](S& s, const OptionValue& v) { set(s.*member, v); }});
  }
  return lifted;
}

// The fields of options struct S as fields of a std::any holding an S, for registries
// whose entries each have their own options type (attention variants).
template <class S>
OptionFields<std::any> ErasedOptions(const OptionFields<S>& fields) {
  OptionFields<std::any> erased;
  for (const OptionField<S>& field : fields) {
    erased.push_back(
        {field.name, field.type, field.doc, field.min, field.max, field.choices,
         [get = field.get](const std::any& s) { return get(std::any_cast<const S&>(s)); },
         [set = field.set](std::any& s, const OptionValue& v) { set(std::any_cast<S&>(s), v); }});
  }
  return erased;
}

}  // namespace attnlab
