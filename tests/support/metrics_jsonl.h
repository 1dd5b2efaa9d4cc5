// The records of a run's <run_dir>/metrics.jsonl (one JSON object a line) as raw JSON, for
// tests that check what a run logged without the report's own reader (ReadMetricsLog).
//
//   const std::vector<Json> train = RecordsOfKind(ReadMetricsJsonl(run_dir), "train");
#pragma once

#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace attnlab::testing {

// Every line of run_dir/metrics.jsonl, in order; a line that is not a JSON object fails
// the running test and is left out.
std::vector<nlohmann::json> ReadMetricsJsonl(const std::filesystem::path& run_dir);

// The records whose "kind" is `kind` ("train", "eval", "test", ...), in order.
std::vector<nlohmann::json> RecordsOfKind(const std::vector<nlohmann::json>& records,
                                          const std::string& kind);

}  // namespace attnlab::testing
