// Whole text files: read one. (To replace one atomically, use WriteFileAtomically in
// framework/io/atomic_file.h.)
#pragma once

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace attnlab {

// Errors name the path: "<path>: cannot open: No such file or directory".
absl::StatusOr<std::string> ReadTextFile(const std::string& path);

}  // namespace attnlab
