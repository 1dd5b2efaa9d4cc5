#include "framework/core/error.h"

#include <cstring>

namespace attnlab::internal {

void ThrowCheckFailure(const char* file, int line, const char* condition,
                       const std::string& message) {
  // Keep only the path below the repository root so messages stay short.
  const char* shown = std::strstr(file, "framework/");
  if (shown == nullptr) shown = std::strstr(file, "layers/");
  if (shown == nullptr) shown = file;
  throw Error(absl::StrCat(shown, ":", line, ": ", message.empty() ? "check failed: " : message,
                           message.empty() ? condition : ""));
}

}  // namespace attnlab::internal
