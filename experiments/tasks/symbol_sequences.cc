// copy, reverse and sort: sequences of random symbols (written as numbers separated by
// spaces, one token each) mapped to themselves, reversed, or sorted. `copy` is the
// Annotated Transformer's first recipe; `reverse` needs attention to move information
// across the whole sequence; `sort` needs it to compare every pair.
#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "experiments/tasks/generation.h"

namespace attnlab::experiments {
namespace {

enum class Transform { kCopy, kReverse, kSort };

class SymbolSequenceTask : public Task {
 public:
  explicit SymbolSequenceTask(Transform transform, const char* name)
      : transform_(transform), name_(name) {}

  absl::StatusOr<Splits> LoadSplits(const Config& config) const override {
    const int64_t vocab_size = config.task().vocab_size;
    return GenerateSplits(config, name_, [&](TaskRandom& random, const LengthRange& lengths) {
      std::vector<int64_t> symbols(random.Uniform(lengths.min, lengths.max));
      for (int64_t& symbol : symbols) symbol = random.Uniform(1, vocab_size);
      std::vector<int64_t> target = symbols;
      if (transform_ == Transform::kReverse) std::reverse(target.begin(), target.end());
      if (transform_ == Transform::kSort) std::sort(target.begin(), target.end());
      return Example{absl::StrJoin(symbols, " "), {absl::StrJoin(target, " ")}};
    });
  }
  std::shared_ptr<Tokenizer> SourceTokenizer() const override {
    return std::make_shared<WhitespaceTokenizer>();
  }
  std::shared_ptr<Tokenizer> TargetTokenizer() const override {
    return std::make_shared<WhitespaceTokenizer>();
  }

 private:
  Transform transform_;
  const char* name_;
};

template <Transform transform>
absl::StatusOr<std::unique_ptr<Task>> Make(const Config&) {
  static constexpr const char* kNames[] = {"copy", "reverse", "sort"};
  return std::unique_ptr<Task>(
      new SymbolSequenceTask(transform, kNames[static_cast<int>(transform)]));
}

ATTNLAB_REGISTER_TASK(copy, "copy", Make<Transform::kCopy>);
ATTNLAB_REGISTER_TASK(reverse, "reverse", Make<Transform::kReverse>);
ATTNLAB_REGISTER_TASK(sort, "sort", Make<Transform::kSort>);

}  // namespace
}  // namespace attnlab::experiments
