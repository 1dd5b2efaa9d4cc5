// The Ding German-English dictionary reader, and its annotation stripping on every line.
#include <string>

#include "absl/strings/str_split.h"
#include "experiments/tasks/ding_parser.h"
#include "tests/fuzz/fuzz_support.h"

namespace {
// Short enough that the fuzzer also reaches the skipping of long pairs.
constexpr int64_t kMaxLength = 24;
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(attnlab::fuzz::AsText(data, size));
  (void)attnlab::experiments::ParseDing(text, "de-en", kMaxLength);
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    (void)attnlab::experiments::StripDingAnnotations(std::string(line));
  }
  return 0;
}
