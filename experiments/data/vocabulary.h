// Vocabulary: tokens <-> ids, with the reserved ids every model uses (pad 0, bos 1,
// eos 2, unk 3; layers/decoding/seq2seq_model.h's SpecialTokens).
#pragma once

#include <string>
#include <unordered_map>
#include <vector>

namespace attnlab::experiments {

class Vocabulary {
 public:
  static constexpr int32_t kPad = 0, kBos = 1, kEos = 2, kUnk = 3;

  Vocabulary();  // only the four reserved tokens
  // Builds from every token of `sequences`, ordered by first appearance (deterministic).
  static Vocabulary FromSequences(const std::vector<std::vector<std::string>>& sequences);
  static Vocabulary FromTokens(const std::vector<std::string>& tokens);

  int32_t Add(const std::string& token);
  // Unknown tokens map to kUnk.
  int32_t Id(const std::string& token) const;
  const std::string& Token(int32_t id) const;
  int64_t size() const { return static_cast<int64_t>(tokens_.size()); }
  const std::vector<std::string>& tokens() const { return tokens_; }

  // Token ids of `tokens` followed by eos.
  std::vector<int32_t> Encode(const std::vector<std::string>& tokens) const;
  // Tokens of `ids`, stopping at eos and skipping pad and bos.
  std::vector<std::string> Decode(const std::vector<int32_t>& ids) const;

 private:
  std::vector<std::string> tokens_;
  std::unordered_map<std::string, int32_t> ids_;
};

}  // namespace attnlab::experiments
