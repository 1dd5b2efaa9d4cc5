// Atomic file replacement: write to a temporary file beside the destination, flush,
// fsync, rename over it. An interrupted or failed write leaves the old file as it was and
// no temporary file behind. Used by safetensors checkpoints and the profiler's trace.
#pragma once

#include <cstdio>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"

namespace attnlab {

// A Status for errno `error` on `path`: "path: what: strerror", with a code that says
// whether the file was missing, forbidden, or the disk full. A full disk, a full quota
// and the file-size limit (EFBIG; the CLI ignores SIGXFSZ so that such a write fails
// instead of killing the process) are ResourceExhausted and say which limit it was.
absl::Status ErrnoStatus(int error, const std::string& path, std::string_view what);

// A temporary file beside `final_path` (named `<final_path>.tmp.<pid>.<n>`), removed
// unless Commit() renames it over `final_path`.
class AtomicFile {
 public:
  explicit AtomicFile(std::string final_path) : final_path_(std::move(final_path)) {}
  ~AtomicFile();
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;

  absl::Status Open();
  absl::Status Write(const void* data, size_t bytes);
  // Flushes, syncs, closes and renames over the destination.
  absl::Status Commit();

 private:
  std::string final_path_;
  std::string temporary_path_;
  FILE* file_ = nullptr;
};

// Replaces the file at `path` with `contents`, atomically.
absl::Status WriteFileAtomically(const std::string& path, std::string_view contents);

// Removes the temporary files of AtomicFile (`*.tmp.<pid>.<n>`) in `directory` (not
// below it) whose process no longer exists: what a killed writer (SIGKILL, power loss)
// leaves behind. Returns the names removed.
std::vector<std::string> RemoveStaleTemporaryFiles(const std::string& directory);

}  // namespace attnlab
