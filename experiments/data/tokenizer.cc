#include "experiments/data/tokenizer.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"

namespace attnlab::experiments {

std::vector<std::string> CharTokenizer::Split(const std::string& text) const {
  std::vector<std::string> tokens;
  for (size_t i = 0; i < text.size();) {
    // Length of the UTF-8 sequence from its lead byte; stray continuation bytes stand alone.
    const unsigned char lead = static_cast<unsigned char>(text[i]);
    size_t length = lead < 0x80           ? 1
                    : (lead >> 5) == 0x6  ? 2
                    : (lead >> 4) == 0xE  ? 3
                    : (lead >> 3) == 0x1E ? 4
                                          : 1;
    length = std::min(length, text.size() - i);
    tokens.push_back(text.substr(i, length));
    i += length;
  }
  return tokens;
}

std::string CharTokenizer::Join(const std::vector<std::string>& tokens) const {
  return absl::StrJoin(tokens, "");
}

std::vector<std::string> WhitespaceTokenizer::Split(const std::string& text) const {
  return absl::StrSplit(text, absl::ByAnyChar(" \t"), absl::SkipEmpty());
}

std::string WhitespaceTokenizer::Join(const std::vector<std::string>& tokens) const {
  return absl::StrJoin(tokens, " ");
}

absl::StatusOr<std::shared_ptr<Tokenizer>> MakeTokenizer(const std::string& name) {
  if (name == "char") return std::make_shared<CharTokenizer>();
  if (name == "whitespace") return std::make_shared<WhitespaceTokenizer>();
  return absl::InvalidArgumentError(
      absl::StrCat("unknown tokenizer '", name, "' (char, whitespace)"));
}

}  // namespace attnlab::experiments
