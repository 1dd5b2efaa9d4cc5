#include "experiments/trainer/run_result.h"

#include <cmath>
#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "framework/core/error.h"
#include "framework/io/atomic_file.h"
#include "framework/io/text_file.h"

namespace attnlab::experiments {
namespace {

using Json = nlohmann::json;
constexpr int kFormat = 1;

// JSON has no NaN: a diverged metric is written as null and read back as NaN.
Json MetricsToJson(const std::map<std::string, double>& metrics) {
  Json json = Json::object();
  for (const auto& [name, value] : metrics)
    json[name] = std::isfinite(value) ? Json(value) : Json();
  return json;
}

bool MetricsFromJson(const Json& json, std::map<std::string, double>* metrics) {
  if (!json.is_object()) return false;
  for (const auto& [name, value] : json.items()) {
    if (value.is_number()) {
      (*metrics)[name] = value.get<double>();
    } else if (value.is_null()) {
      (*metrics)[name] = std::nan("");
    } else {
      return false;
    }
  }
  return true;
}

}  // namespace

absl::Status WriteRunResult(const std::string& path, const RunResult& result) {
  const Json json = {{"format", kFormat},
                     {"steps", result.steps},
                     {"train_seconds", result.train_seconds},
                     {"wall_seconds", result.wall_seconds},
                     {"parameters", result.parameters},
                     {"test", MetricsToJson(result.test_metrics)},
                     {"valid", MetricsToJson(result.valid_metrics)}};
  return WriteFileAtomically(path, json.dump(1) + "\n");
}

absl::StatusOr<RunResult> ReadRunResult(const std::string& path) {
  ASSIGN_OR_RETURN(const std::string text, ReadTextFile(path));
  const Json json = Json::parse(text, nullptr, /*allow_exceptions=*/false);
  const auto bad = [&](const std::string& problem) {
    return absl::DataLossError(absl::StrCat(path, ": ", problem));
  };
  if (!json.is_object()) return bad("not a JSON object");
  if (json.value("format", 0) != kFormat) {
    return bad(absl::StrCat("unknown format (expected \"format\": ", kFormat, ")"));
  }
  RunResult result;
  for (const char* field : {"steps", "train_seconds", "wall_seconds", "parameters"}) {
    if (!json.contains(field) || !json[field].is_number()) {
      return bad(absl::StrCat("missing the number \"", field, "\""));
    }
  }
  result.steps = json["steps"].get<int64_t>();
  result.train_seconds = json["train_seconds"].get<double>();
  result.wall_seconds = json["wall_seconds"].get<double>();
  result.parameters = json["parameters"].get<int64_t>();
  if (!json.contains("test") || !MetricsFromJson(json["test"], &result.test_metrics)) {
    return bad("\"test\" is not an object of numbers");
  }
  if (!json.contains("valid") || !MetricsFromJson(json["valid"], &result.valid_metrics)) {
    return bad("\"valid\" is not an object of numbers");
  }
  return result;
}

}  // namespace attnlab::experiments
