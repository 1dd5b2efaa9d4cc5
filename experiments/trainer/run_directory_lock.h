// A run directory belongs to one process at a time: the trainer holds an exclusive
// flock on `<run_dir>/.lock` (which holds its pid) for the whole run, and the ablation
// runner for its study directory. The kernel drops the lock when the process ends, however
// it ends, so a lock never outlives its holder; the file itself stays.
#pragma once

#include <string>

#include "absl/status/statusor.h"

namespace attnlab::experiments {

inline constexpr char kRunDirectoryLockFile[] = ".lock";

class RunDirectoryLock {
 public:
  // Locks `directory` (which must exist). A directory locked by another process is a
  // FailedPrecondition naming it and the holder's pid.
  static absl::StatusOr<RunDirectoryLock> Acquire(const std::string& directory);
  // OkStatus if nobody holds the lock of `directory` (or it has no lock file), else the
  // error Acquire would give. Takes nothing.
  static absl::Status CheckUnlocked(const std::string& directory);

  RunDirectoryLock(RunDirectoryLock&& other) noexcept : descriptor_(other.descriptor_) {
    other.descriptor_ = -1;
  }
  RunDirectoryLock(const RunDirectoryLock&) = delete;
  RunDirectoryLock& operator=(const RunDirectoryLock&) = delete;
  ~RunDirectoryLock();

 private:
  explicit RunDirectoryLock(int descriptor) : descriptor_(descriptor) {}
  int descriptor_;
};

}  // namespace attnlab::experiments
