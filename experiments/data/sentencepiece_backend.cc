#include "experiments/data/sentencepiece_backend.h"

#include <sentencepiece_processor.h>
#include <sentencepiece_trainer.h>

#include <string>
#include <unordered_map>

namespace attnlab::experiments::sentencepiece_backend {
namespace {

// Feeds the sentences from memory (the trainer would otherwise read files).
class VectorIterator : public sentencepiece::SentenceIterator {
 public:
  explicit VectorIterator(const std::vector<std::string>& sentences) : sentences_(sentences) {}
  bool done() const override { return index_ >= sentences_.size(); }
  void Next() override { ++index_; }
  const std::string& value() const override { return sentences_[index_]; }
  sentencepiece::util::Status status() const override { return {}; }

 private:
  const std::vector<std::string>& sentences_;
  size_t index_ = 0;
};

}  // namespace

std::string Train(const std::vector<std::string>& sentences, const TrainOptions& options,
                  std::string* serialized_model) {
  // The seed of the trainer's sampling (SentencePiece's default is time-based in spirit:
  // std::random_device), fixed so that the same sentences give the same model.
  sentencepiece::SetRandomGeneratorSeed(1);
  const std::unordered_map<std::string, std::string> arguments = {
      {"model_type", options.model_type},
      {"vocab_size", std::to_string(options.vocab_size)},
      // Small corpora (tests) may not support the requested size: use what they do.
      {"hard_vocab_limit", "false"},
      {"character_coverage", "1.0"},            // every training character is a piece
      {"normalization_rule_name", "identity"},  // Decode(Encode(text)) == text
      {"num_threads", "1"},                     // deterministic
      {"input_sentence_size", "0"},             // every sentence, no sampling
      {"shuffle_input_sentence", "false"},
      {"max_sentence_length", "100000"},
      // Ids are attnlab's Vocabulary's business; only pieces are used. No bos/eos pieces.
      {"bos_id", "-1"},
      {"eos_id", "-1"},
      {"minloglevel", "2"},  // errors only: training logs hundreds of lines otherwise
  };
  VectorIterator iterator(sentences);
  const sentencepiece::util::Status status =
      sentencepiece::SentencePieceTrainer::Train(arguments, &iterator, serialized_model);
  return status.ok() ? std::string() : status.ToString();
}

struct Processor::Impl {
  sentencepiece::SentencePieceProcessor processor;
};

Processor::Processor() : impl_(std::make_unique<Impl>()) {}
Processor::~Processor() = default;

std::string Processor::Load(const std::string& serialized_model) {
  const sentencepiece::util::Status status =
      impl_->processor.LoadFromSerializedProto(serialized_model);
  return status.ok() ? std::string() : status.ToString();
}

std::vector<std::string> Processor::Encode(const std::string& text) const {
  return impl_->processor.EncodeAsPieces(text);
}

std::string Processor::Decode(const std::vector<std::string>& pieces) const {
  return impl_->processor.DecodePieces(pieces);
}

std::vector<std::string> Processor::Pieces() const {
  std::vector<std::string> pieces;
  pieces.reserve(static_cast<size_t>(impl_->processor.GetPieceSize()));
  for (int id = 0; id < impl_->processor.GetPieceSize(); ++id) {
    pieces.push_back(impl_->processor.IdToPiece(id));
  }
  return pieces;
}

}  // namespace attnlab::experiments::sentencepiece_backend
