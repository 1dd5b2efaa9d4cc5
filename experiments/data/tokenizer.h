// Tokenizers turn text into tokens and back: characters, or whitespace-separated words.
// SentencePiece subwords (subword_tokenizer.h) are one too, trained on a task's data.
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

// "char" or "whitespace".
absl::StatusOr<std::shared_ptr<Tokenizer>> MakeTokenizer(const std::string& name);

}  // namespace attnlab::experiments
