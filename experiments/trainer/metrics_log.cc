#include "experiments/trainer/metrics_log.h"

#include <cerrno>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "framework/core/error.h"
#include "framework/io/atomic_file.h"

namespace attnlab::experiments {

absl::StatusOr<MetricsLog> MetricsLog::Open(const std::string& path, int64_t keep_until_step) {
  if (keep_until_step >= 0 && std::filesystem::exists(path)) {
    // Rewrite atomically with only the records up to the resumed step. Test records go
    // too: the end of the run (which writes them) runs again when it is resumed.
    std::ifstream in(path);
    std::ostringstream kept;
    std::string line;
    while (std::getline(in, line)) {
      const auto record = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
      if (!record.is_object()) continue;
      if (record.contains("step") && record["step"].is_number_integer() &&
          record["step"].get<int64_t>() > keep_until_step) {
        continue;
      }
      if (record.value("kind", "") == "test") continue;
      kept << line << "\n";
    }
    RETURN_IF_ERROR(WriteFileAtomically(path, kept.str()));
  }
  std::FILE* file = std::fopen(path.c_str(), "a");
  if (file == nullptr) return ErrnoStatus(errno, path, "cannot open for writing");
  return MetricsLog(file, path);
}

MetricsLog::~MetricsLog() {
  if (file_ != nullptr) std::fclose(file_);
}

absl::Status MetricsLog::Write(const nlohmann::json& record) {
  const std::string line = record.dump() + "\n";
  if (std::fwrite(line.data(), 1, line.size(), file_) != line.size() || std::fflush(file_) != 0) {
    return ErrnoStatus(errno, path_, "write failed");
  }
  return absl::OkStatus();
}

}  // namespace attnlab::experiments
