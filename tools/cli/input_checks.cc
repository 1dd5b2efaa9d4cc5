#include "tools/cli/input_checks.h"

#include <optional>

#include "absl/strings/str_cat.h"
#include "framework/io/utf8.h"

namespace attnlab::cli {
namespace {

absl::Status CheckFits(const char* side, int64_t length, const LoadedModel& loaded) {
  const std::optional<int64_t> longest = experiments::LongestModelSequence(loaded.config);
  if (!longest || length <= *longest) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat("the ", side, " is ", length,
                                                 " tokens long with its eos mark; this model "
                                                 "reads at most ",
                                                 loaded.config.Describe("model.max_len"),
                                                 ": split or shorten the line"));
}

}  // namespace

absl::Status CheckUtf8Line(const std::string& line) {
  if (const std::optional<size_t> invalid = FirstInvalidUtf8(line)) {
    return absl::InvalidArgumentError(
        absl::StrCat("invalid UTF-8 (byte ", *invalid + 1, " of the line)"));
  }
  return absl::OkStatus();
}

absl::Status CheckSourceFits(const std::string& source, const LoadedModel& loaded) {
  return CheckFits("source", static_cast<int64_t>(loaded.data.EncodeSource(source).size()), loaded);
}

absl::Status CheckTargetFits(const std::string& target, const LoadedModel& loaded) {
  return CheckFits("target", static_cast<int64_t>(loaded.data.EncodeTarget(target).size()), loaded);
}

}  // namespace attnlab::cli
