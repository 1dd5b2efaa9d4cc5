#include "framework/io/text_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"

namespace attnlab {

absl::StatusOr<std::string> ReadTextFile(const std::string& path) {
  std::ifstream file(path, std::ios::binary);
  if (!file) {
    return absl::NotFoundError(absl::StrCat(path, ": cannot open: ", std::strerror(errno)));
  }
  std::stringstream text;
  text << file.rdbuf();
  if (file.bad()) return absl::DataLossError(absl::StrCat(path, ": read failed"));
  return text.str();
}

absl::Status WriteTextFileAtomically(const std::string& path, const std::string& text) {
  // Unique per process and call, so concurrent writers never share a temporary file.
  static std::atomic<uint64_t> counter{0};
  const std::string temporary = absl::StrCat(path, ".tmp.", ::getpid(), ".", counter++);
  const auto fail = [&](const std::string& what, int error) {
    ::unlink(temporary.c_str());
    return absl::UnavailableError(absl::StrCat(path, ": ", what, ": ", std::strerror(error)));
  };
  const int descriptor = ::open(temporary.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
  if (descriptor < 0) return fail("cannot create a temporary file", errno);
  size_t written = 0;
  while (written < text.size()) {
    const ssize_t n = ::write(descriptor, text.data() + written, text.size() - written);
    if (n < 0) {
      if (errno == EINTR) continue;
      const int error = errno;
      ::close(descriptor);
      return fail("write failed", error);
    }
    written += static_cast<size_t>(n);
  }
  if (::fsync(descriptor) != 0) {
    const int error = errno;
    ::close(descriptor);
    return fail("fsync failed", error);
  }
  if (::close(descriptor) != 0) return fail("close failed", errno);
  if (std::rename(temporary.c_str(), path.c_str()) != 0)
    return fail("cannot replace the file", errno);
  return absl::OkStatus();
}

}  // namespace attnlab
