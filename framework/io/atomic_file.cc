#include "framework/io/atomic_file.h"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <filesystem>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "framework/core/error.h"

namespace attnlab {
namespace {

std::string DirectoryOf(const std::string& path) {
  const size_t slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

}  // namespace

absl::Status ErrnoStatus(int error, const std::string& path, std::string_view what) {
  std::string message = absl::StrCat(path, ": ", std::string(what), ": ", std::strerror(error));
  if (error == EFBIG) absl::StrAppend(&message, " (over the file-size limit, see ulimit -f)");
  switch (error) {
    case ENOENT:
    case ENOTDIR:
      return absl::NotFoundError(message);
    case EACCES:
    case EPERM:
    case EROFS:
      return absl::PermissionDeniedError(message);
    case ENOSPC:
    case EDQUOT:
    case EFBIG:
      return absl::ResourceExhaustedError(message);
    default:
      return absl::InternalError(message);
  }
}

AtomicFile::~AtomicFile() {
  if (file_ != nullptr) std::fclose(file_);
  if (!temporary_path_.empty()) ::unlink(temporary_path_.c_str());
}

absl::Status AtomicFile::Open() {
  static std::atomic<uint64_t> counter{0};
  temporary_path_ = absl::StrCat(final_path_, ".tmp.", ::getpid(), ".", counter++);
  const int descriptor =
      ::open(temporary_path_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
  if (descriptor < 0) {
    const int error = errno;
    temporary_path_.clear();  // nothing was created
    return ErrnoStatus(error, final_path_, "cannot create a temporary file to write");
  }
  file_ = ::fdopen(descriptor, "wb");
  if (file_ == nullptr) {
    const int error = errno;
    ::close(descriptor);
    return ErrnoStatus(error, final_path_, "cannot open the temporary file");
  }
  return absl::OkStatus();
}

absl::Status AtomicFile::Write(const void* data, size_t bytes) {
  if (bytes == 0) return absl::OkStatus();
  if (std::fwrite(data, 1, bytes, file_) != bytes) {
    return ErrnoStatus(errno, final_path_, "write failed");
  }
  return absl::OkStatus();
}

absl::Status AtomicFile::Commit() {
  if (std::fflush(file_) != 0) return ErrnoStatus(errno, final_path_, "write failed");
  if (::fsync(::fileno(file_)) != 0) return ErrnoStatus(errno, final_path_, "fsync failed");
  const int close_result = std::fclose(file_);
  file_ = nullptr;
  if (close_result != 0) return ErrnoStatus(errno, final_path_, "close failed");
  if (std::rename(temporary_path_.c_str(), final_path_.c_str()) != 0) {
    return ErrnoStatus(errno, final_path_, "cannot replace the file");
  }
  temporary_path_.clear();
  // Make the rename itself durable. Best effort: the new file is already in place.
  const int directory = ::open(DirectoryOf(final_path_).c_str(), O_RDONLY | O_CLOEXEC);
  if (directory >= 0) {
    ::fsync(directory);
    ::close(directory);
  }
  return absl::OkStatus();
}

absl::Status WriteFileAtomically(const std::string& path, std::string_view contents) {
  AtomicFile file(path);
  RETURN_IF_ERROR(file.Open());
  RETURN_IF_ERROR(file.Write(contents.data(), contents.size()));
  return file.Commit();
}

namespace {

// The writer's pid if `name` is an AtomicFile temporary (`<file>.tmp.<pid>.<n>`), else 0.
pid_t TemporaryFileOwner(const std::string& name) {
  const size_t marker = name.rfind(".tmp.");
  if (marker == std::string::npos || marker == 0) return 0;
  const std::vector<std::string> parts = absl::StrSplit(name.substr(marker + 5), '.');
  int64_t pid = 0;
  uint64_t counter = 0;
  if (parts.size() != 2 || !absl::SimpleAtoi(parts[0], &pid) ||
      !absl::SimpleAtoi(parts[1], &counter) || pid <= 0) {
    return 0;
  }
  return static_cast<pid_t>(pid);
}

bool ProcessExists(pid_t pid) { return ::kill(pid, 0) == 0 || errno == EPERM; }

}  // namespace

std::vector<std::string> RemoveStaleTemporaryFiles(const std::string& directory) {
  std::vector<std::string> removed;
  std::error_code error;
  for (const auto& entry : std::filesystem::directory_iterator(directory, error)) {
    const std::string name = entry.path().filename().string();
    const pid_t owner = TemporaryFileOwner(name);
    if (owner == 0 || ProcessExists(owner) || !entry.is_regular_file(error)) continue;
    if (std::filesystem::remove(entry.path(), error)) removed.push_back(name);
  }
  return removed;
}

}  // namespace attnlab
