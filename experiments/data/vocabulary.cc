#include "experiments/data/vocabulary.h"

#include "framework/core/error.h"

namespace attnlab::experiments {

Vocabulary::Vocabulary() {
  for (const char* token : {"<pad>", "<s>", "</s>", "<unk>"}) Add(token);
}

Vocabulary Vocabulary::FromSequences(const std::vector<std::vector<std::string>>& sequences) {
  Vocabulary vocabulary;
  for (const auto& sequence : sequences) {
    for (const std::string& token : sequence) vocabulary.Add(token);
  }
  return vocabulary;
}

Vocabulary Vocabulary::FromTokens(const std::vector<std::string>& tokens) {
  Vocabulary vocabulary;
  for (const std::string& token : tokens) vocabulary.Add(token);
  return vocabulary;
}

int32_t Vocabulary::Add(const std::string& token) {
  auto [it, inserted] = ids_.try_emplace(token, static_cast<int32_t>(tokens_.size()));
  if (inserted) tokens_.push_back(token);
  return it->second;
}

int32_t Vocabulary::Id(const std::string& token) const {
  auto it = ids_.find(token);
  return it == ids_.end() ? kUnk : it->second;
}

const std::string& Vocabulary::Token(int32_t id) const {
  ATTNLAB_CHECK(id >= 0 && id < size(), "Vocabulary: id ", id, " outside [0, ", size(), ")");
  return tokens_[id];
}

std::vector<int32_t> Vocabulary::Encode(const std::vector<std::string>& tokens) const {
  std::vector<int32_t> ids;
  ids.reserve(tokens.size() + 1);
  for (const std::string& token : tokens) ids.push_back(Id(token));
  ids.push_back(kEos);
  return ids;
}

std::vector<std::string> Vocabulary::Decode(const std::vector<int32_t>& ids) const {
  std::vector<std::string> tokens;
  for (int32_t id : ids) {
    if (id == kEos) break;
    if (id == kPad || id == kBos) continue;
    tokens.push_back(Token(id));
  }
  return tokens;
}

}  // namespace attnlab::experiments
