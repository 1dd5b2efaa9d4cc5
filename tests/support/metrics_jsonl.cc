#include "tests/support/metrics_jsonl.h"

#include <fstream>

#include "gtest/gtest.h"

namespace attnlab::testing {

using Json = nlohmann::json;

std::vector<Json> ReadMetricsJsonl(const std::filesystem::path& run_dir) {
  std::vector<Json> records;
  std::ifstream in(run_dir / "metrics.jsonl");
  for (std::string line; std::getline(in, line);) {
    const Json record = Json::parse(line, nullptr, /*allow_exceptions=*/false);
    EXPECT_TRUE(record.is_object()) << "not a JSON object: " << line;
    if (record.is_object()) records.push_back(record);
  }
  return records;
}

std::vector<Json> RecordsOfKind(const std::vector<Json>& records, const std::string& kind) {
  std::vector<Json> selected;
  for (const Json& record : records) {
    if (record.value("kind", "") == kind) selected.push_back(record);
  }
  return selected;
}

}  // namespace attnlab::testing
