// The one place that includes SentencePiece's headers. They define absl::string_view as
// an alias of std::string_view, which clashes with Debian's Abseil (where it is a class
// of its own), so this interface uses only the standard library and reports errors as
// strings; experiments/data/subword_tokenizer.h wraps it in absl::Status.
#pragma once

#include <memory>
#include <string>
#include <vector>

namespace attnlab::experiments::sentencepiece_backend {

struct TrainOptions {
  int vocab_size = 8000;
  std::string model_type = "unigram";  // or "bpe"
};

// Trains a model on `sentences` (deterministically: one thread, every sentence, in
// order, a fixed random seed, no normalisation so that decoding gives back the text).
// Returns an empty string on success, else SentencePiece's error message.
std::string Train(const std::vector<std::string>& sentences, const TrainOptions& options,
                  std::string* serialized_model);

class Processor {
 public:
  Processor();
  ~Processor();
  // Returns an empty string on success, else the error message.
  std::string Load(const std::string& serialized_model);
  std::vector<std::string> Encode(const std::string& text) const;
  std::string Decode(const std::vector<std::string>& pieces) const;
  // Every piece of the model, in id order.
  std::vector<std::string> Pieces() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace attnlab::experiments::sentencepiece_backend
