#include "experiments/trainer/run_directory_lock.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "framework/io/atomic_file.h"

namespace attnlab::experiments {
namespace {

std::string LockPath(const std::string& directory) {
  return (std::filesystem::path(directory) / kRunDirectoryLockFile).string();
}

// The error for a lock held by someone else, naming the pid it recorded.
absl::Status InUseError(const std::string& directory, int descriptor) {
  char text[32] = {};
  const ssize_t length = ::pread(descriptor, text, sizeof(text) - 1, 0);
  const std::string pid =
      length > 0 ? std::string(absl::StripAsciiWhitespace(std::string(text, length))) : "";
  return absl::FailedPreconditionError(absl::StrCat(
      directory, " is in use by another attnlab process (pid ", pid.empty() ? "unknown" : pid,
      "); wait for it to end or choose another run directory"));
}

}  // namespace

absl::StatusOr<RunDirectoryLock> RunDirectoryLock::Acquire(const std::string& directory) {
  const std::string path = LockPath(directory);
  const int descriptor = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0666);
  if (descriptor < 0) return ErrnoStatus(errno, path, "cannot open the run directory's lock");
  if (::flock(descriptor, LOCK_EX | LOCK_NB) != 0) {
    const int error = errno;
    const absl::Status status = error == EWOULDBLOCK
                                    ? InUseError(directory, descriptor)
                                    : ErrnoStatus(error, path, "cannot lock the run directory");
    ::close(descriptor);
    return status;
  }
  // The pid is for the message of whoever comes next; the lock is the flock.
  const std::string pid = absl::StrCat(::getpid(), "\n");
  if (::ftruncate(descriptor, 0) != 0 ||
      ::pwrite(descriptor, pid.data(), pid.size(), 0) != static_cast<ssize_t>(pid.size())) {
    const absl::Status status = ErrnoStatus(errno, path, "cannot write the run directory's lock");
    ::close(descriptor);
    return status;
  }
  return RunDirectoryLock(descriptor);
}

absl::Status RunDirectoryLock::CheckUnlocked(const std::string& directory) {
  const int descriptor = ::open(LockPath(directory).c_str(), O_RDONLY | O_CLOEXEC);
  if (descriptor < 0) return absl::OkStatus();  // never locked
  absl::Status status = absl::OkStatus();
  if (::flock(descriptor, LOCK_SH | LOCK_NB) != 0 && errno == EWOULDBLOCK) {
    status = InUseError(directory, descriptor);
  }
  ::close(descriptor);  // also drops the shared lock this probe may have taken
  return status;
}

RunDirectoryLock::~RunDirectoryLock() {
  if (descriptor_ >= 0) ::close(descriptor_);
}

}  // namespace attnlab::experiments
