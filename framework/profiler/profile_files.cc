#include "framework/profiler/profile_files.h"

#include <filesystem>

#include "framework/core/error.h"
#include "framework/io/atomic_file.h"
#include "framework/profiler/chrome_trace.h"
#include "framework/profiler/summary.h"

namespace attnlab::profiler {

absl::StatusOr<std::string> WriteProfileFiles(const Recording& recording, int64_t steps,
                                              const std::string& directory) {
  const std::filesystem::path dir(directory);
  const std::string text = FormatSummary(Summarize(recording, steps));
  RETURN_IF_ERROR(WriteFileAtomically((dir / "profile.txt").string(), text));
  RETURN_IF_ERROR(WriteChromeTrace(recording, (dir / "trace.json").string()));
  return text;
}

}  // namespace attnlab::profiler
