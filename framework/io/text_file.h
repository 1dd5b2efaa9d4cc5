// Whole text files: read one, or replace one atomically (temporary file in the same
// directory, flush, fsync, rename), so a reader never sees a half-written file and an
// interrupted write leaves the previous file as it was.
#pragma once

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace attnlab {

// Errors name the path: "<path>: cannot open: No such file or directory".
absl::StatusOr<std::string> ReadTextFile(const std::string& path);

absl::Status WriteTextFileAtomically(const std::string& path, const std::string& text);

}  // namespace attnlab
