// What the fuzz targets share: a scratch directory for the parsers that read files, the
// check of a target's own set-up, and the split of one input into a main text and extra
// lines.
#pragma once

#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "framework/core/error.h"

namespace attnlab::fuzz {

// This process's own directory under $TMPDIR (tools/fuzz points TMPDIR at a RAM disk and
// removes it afterwards), made on first use.
inline const std::filesystem::path& ScratchDirectory() {
  static const std::filesystem::path directory = [] {
    std::string pattern = (std::filesystem::temp_directory_path() / "attnlab-fuzz-XXXXXX").string();
    ATTNLAB_CHECK(::mkdtemp(pattern.data()) != nullptr, "cannot create ", pattern);
    return std::filesystem::path(pattern);
  }();
  return directory;
}

// Writes `bytes` to ScratchDirectory()/name, replacing it, and returns its path.
inline std::string WriteScratchFile(const std::string& name, absl::string_view bytes) {
  const std::string path = (ScratchDirectory() / name).string();
  std::ofstream file(path, std::ios::binary | std::ios::trunc);
  file.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  file.close();
  ATTNLAB_CHECK(file.good(), "cannot write ", path);
  return path;
}

// The value of one step of a target's set-up (its fixed config, model or data). A set-up
// that fails is a bug of the target, not a finding: it stops, naming `target`.
template <typename T>
T SetUpOrDie(absl::StatusOr<T> result, absl::string_view target) {
  ATTNLAB_CHECK(result.ok(), target, " set-up: ", result.status().message());
  return *std::move(result);
}

inline absl::string_view AsText(const uint8_t* data, size_t size) {
  return absl::string_view(reinterpret_cast<const char*>(data), size);
}

// An input made of a main text and extra lines, separated by the first line that is
// exactly "---" (corpus files stay readable, and the fuzzer learns the separator from
// the comparison): "<text>\n---\n<line>\n<line>...". Without a separator, all is text.
struct TextAndLines {
  std::string text;
  std::vector<std::string> lines;
};

inline TextAndLines SplitAtSeparator(absl::string_view input) {
  constexpr absl::string_view kSeparator = "\n---\n";
  const size_t separator = input.find(kSeparator);
  if (separator == absl::string_view::npos) return {std::string(input), {}};
  TextAndLines split{std::string(input.substr(0, separator + 1)), {}};
  for (absl::string_view line :
       absl::StrSplit(input.substr(separator + kSeparator.size()), '\n', absl::SkipEmpty())) {
    split.lines.emplace_back(line);
  }
  return split;
}

}  // namespace attnlab::fuzz
