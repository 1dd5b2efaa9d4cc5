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

std::optional<size_t> FirstInvalidUtf8(std::string_view text) {
  size_t i = 0;
  while (i < text.size()) {
    const auto byte = [&](size_t k) { return static_cast<unsigned char>(text[k]); };
    const unsigned char lead = byte(i);
    size_t length = 0;
    uint32_t code_point = 0;
    if (lead < 0x80) {
      ++i;
      continue;
    } else if (lead >= 0xC2 && lead <= 0xDF) {
      length = 2;
      code_point = lead & 0x1F;
    } else if (lead >= 0xE0 && lead <= 0xEF) {
      length = 3;
      code_point = lead & 0x0F;
    } else if (lead >= 0xF0 && lead <= 0xF4) {
      length = 4;
      code_point = lead & 0x07;
    } else {
      return i;  // a continuation byte, or a lead byte no valid character uses
    }
    if (i + length > text.size()) return i;
    for (size_t k = 1; k < length; ++k) {
      if ((byte(i + k) & 0xC0) != 0x80) return i;
      code_point = (code_point << 6) | (byte(i + k) & 0x3F);
    }
    const bool overlong =
        (length == 3 && code_point < 0x800) || (length == 4 && code_point < 0x10000);
    const bool surrogate = code_point >= 0xD800 && code_point <= 0xDFFF;
    if (overlong || surrogate || code_point > 0x10FFFF) return i;
    i += length;
  }
  return std::nullopt;
}

absl::StatusOr<std::shared_ptr<Tokenizer>> MakeTokenizer(const std::string& name) {
  if (name == "char") return std::make_shared<CharTokenizer>();
  if (name == "whitespace") return std::make_shared<WhitespaceTokenizer>();
  return absl::InvalidArgumentError(
      absl::StrCat("unknown tokenizer '", name, "' (char, whitespace)"));
}

}  // namespace attnlab::experiments
