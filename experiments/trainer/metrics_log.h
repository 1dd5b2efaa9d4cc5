// metrics.jsonl: one JSON object per line, appended and flushed as training goes, so a
// crashed run keeps every record written before the crash.
#pragma once

#include <cstdio>
#include <nlohmann/json.hpp>
#include <string>

#include "absl/status/statusor.h"

namespace attnlab::experiments {

class MetricsLog {
 public:
  // Opens `path` for appending. With `keep_until_step` >= 0 (resuming), first drops
  // records of steps after it and every test record, so the log matches the checkpoint
  // being resumed (and a resumed run's end writes its test records once).
  static absl::StatusOr<MetricsLog> Open(const std::string& path, int64_t keep_until_step);
  MetricsLog(MetricsLog&& other) noexcept : file_(other.file_), path_(std::move(other.path_)) {
    other.file_ = nullptr;
  }
  MetricsLog(const MetricsLog&) = delete;
  ~MetricsLog();

  absl::Status Write(const nlohmann::json& record);

 private:
  MetricsLog(std::FILE* file, std::string path) : file_(file), path_(std::move(path)) {}
  std::FILE* file_;
  std::string path_;
};

}  // namespace attnlab::experiments
