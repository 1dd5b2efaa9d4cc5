// Tokenizers turn text into tokens and back: characters, or whitespace-separated words.
// (Subword tokenisation with SentencePiece plugs in here for the translation task.)
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace attnlab::experiments {

class Tokenizer {
 public:
  virtual ~Tokenizer() = default;
  virtual std::vector<std::string> Split(const std::string& text) const = 0;
  virtual std::string Join(const std::vector<std::string>& tokens) const = 0;
};

// One token per UTF-8 character (a multi-byte character stays one token).
class CharTokenizer : public Tokenizer {
 public:
  std::vector<std::string> Split(const std::string& text) const override;
  std::string Join(const std::vector<std::string>& tokens) const override;
};

// Tokens separated by runs of spaces/tabs; joined with single spaces.
class WhitespaceTokenizer : public Tokenizer {
 public:
  std::vector<std::string> Split(const std::string& text) const override;
  std::string Join(const std::vector<std::string>& tokens) const override;
};

// The byte offset of the first byte of `text` that does not start a well-formed UTF-8
// character (overlong forms, surrogates and code points past U+10FFFF included), or
// nullopt if `text` is valid UTF-8. Vocabularies are stored in JSON, which needs it.
std::optional<size_t> FirstInvalidUtf8(std::string_view text);

// "char" or "whitespace".
absl::StatusOr<std::shared_ptr<Tokenizer>> MakeTokenizer(const std::string& name);

}  // namespace attnlab::experiments
