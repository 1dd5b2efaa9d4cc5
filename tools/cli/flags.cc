#include "tools/cli/flags.h"

#include <algorithm>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "framework/core/edit_distance.h"
#include "framework/core/error.h"
#include "framework/parallel/parallel_for.h"

namespace attnlab::cli {
std::string ParsedFlags::Get(const std::string& name, const std::string& fallback) const {
  auto it = values_.find(name);
  return it == values_.end() || it->second.empty() ? fallback : it->second.back();
}

const std::vector<std::string>& ParsedFlags::GetAll(const std::string& name) const {
  static const std::vector<std::string> kNone;
  auto it = values_.find(name);
  return it == values_.end() ? kNone : it->second;
}

absl::StatusOr<int64_t> ParsedFlags::GetInt(const std::string& name, int64_t fallback) const {
  if (!Has(name)) return fallback;
  int64_t value;
  if (!absl::SimpleAtoi(Get(name), &value)) {
    return absl::InvalidArgumentError(
        absl::StrCat("--", name, " needs an integer, got '", Get(name), "'"));
  }
  return value;
}

absl::StatusOr<ParsedFlags> ParseFlags(const std::vector<std::string>& args,
                                       const std::vector<FlagSpec>& specs) {
  ParsedFlags parsed;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& arg = args[i];
    if (arg.rfind("--", 0) != 0 || arg == "--") {
      parsed.positional_.push_back(arg);
      continue;
    }
    const size_t equals = arg.find('=');
    const std::string name =
        arg.substr(2, equals == std::string::npos ? std::string::npos : equals - 2);
    auto spec =
        std::find_if(specs.begin(), specs.end(), [&](const FlagSpec& s) { return s.name == name; });
    if (spec == specs.end()) {
      std::string nearest;
      int64_t best = INT64_MAX;
      for (const FlagSpec& s : specs) {
        const int64_t distance = EditDistance(name, s.name);
        if (distance < best) {
          best = distance;
          nearest = s.name;
        }
      }
      return absl::InvalidArgumentError(
          absl::StrCat("unknown flag --", name,
                       nearest.empty() ? "" : absl::StrCat("; did you mean --", nearest, "?")));
    }
    std::string value;
    if (!spec->takes_value) {
      if (equals != std::string::npos) {
        return absl::InvalidArgumentError(absl::StrCat("--", name, " takes no value"));
      }
      value = "true";
    } else if (equals != std::string::npos) {
      value = arg.substr(equals + 1);
    } else if (i + 1 < args.size()) {
      value = args[++i];
    } else {
      return absl::InvalidArgumentError(absl::StrCat("--", name, " needs a value"));
    }
    auto& values = parsed.values_[name];
    if (!spec->repeated && !values.empty()) {
      return absl::InvalidArgumentError(absl::StrCat("--", name, " given twice"));
    }
    values.push_back(value);
  }
  return parsed;
}

std::string FlagsHelp(const std::vector<FlagSpec>& specs) {
  std::string out;
  for (const FlagSpec& spec : specs) {
    const std::string left = absl::StrCat("--", spec.name, spec.takes_value ? "=VALUE" : "");
    absl::StrAppend(&out, absl::StrFormat("  %-22s %s%s\n", left, spec.help,
                                          spec.repeated ? " (repeatable)" : ""));
  }
  return out;
}

FlagSpec ThreadsFlag() {
  return {"threads", "OpenMP/oneDNN threads (default: OMP_NUM_THREADS or all cores)"};
}

absl::Status ApplyThreadsFlag(const ParsedFlags& flags) {
  if (!flags.Has("threads")) return absl::OkStatus();
  ASSIGN_OR_RETURN(const int64_t threads, flags.GetInt("threads", 0));
  if (threads < 1 || threads > 1024) {
    return absl::InvalidArgumentError(
        absl::StrCat("--threads must be in [1, 1024], got ", threads));
  }
  SetNumThreads(static_cast<int>(threads));
  return absl::OkStatus();
}

}  // namespace attnlab::cli
