// The profiler's output files: profile.txt (the tables of summary.h) and trace.json (the
// Chrome trace of chrome_trace.h), both written atomically into one directory.
#pragma once

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "framework/profiler/recording.h"

namespace attnlab::profiler {

// Writes `directory`/profile.txt and `directory`/trace.json for a recording of `steps`
// training steps; returns the tables' text.
absl::StatusOr<std::string> WriteProfileFiles(const Recording& recording, int64_t steps,
                                              const std::string& directory);

}  // namespace attnlab::profiler
