// de_en: German -> English translation of the Ding dictionary's entries (Debian's
// trans-de-en): words, phrases and example sentences ("Abholung der Waren am Bahnhof" ->
// "collection of the goods from the station"). Data: `tools/fetch-data de_en`; parsing
// in ding_parser.h (pairs longer than task.max_length characters are left out). The split
// is by German phrase (hashed_split.h); all English synonyms are references.
//
// Tokens: SentencePiece subwords (task_subwords.h), trained on the training split's
// German phrases and English references (task.subword_vocab_size, task.subword_model;
// one model for both languages unless task.shared_vocabulary = false) and cached in the
// data directory, so a checkpoint's reload uses the same model.
//
// Metrics (translation_metrics.h), on detokenised text: corpus BLEU as sacreBLEU
// computes it (main), chrF, and exact match.
#include "experiments/metrics/translation_metrics.h"
#include "experiments/tasks/ding_parser.h"
#include "experiments/tasks/fetched_data.h"
#include "experiments/tasks/hashed_split.h"
#include "experiments/tasks/task_subwords.h"
#include "framework/core/error.h"

namespace attnlab::experiments {
namespace {

class DeEnTask : public Task {
 public:
  absl::StatusOr<Splits> LoadSplits(const Config& config) const override {
    ASSIGN_OR_RETURN(const std::string text, ReadFetchedFile(config, "de_en", "de-en"));
    const std::string data_dir = FetchedDataDir(config, "de_en");
    ASSIGN_OR_RETURN(DingDictionary dictionary,
                     ParseDing(text, data_dir + "/de-en", config.task().max_length));
    Splits splits =
        SplitBySourceHash(std::move(dictionary.examples), static_cast<uint64_t>(config.task().seed),
                          SplitCapsFromConfig(config));
    ASSIGN_OR_RETURN(tokenizers_, TaskSubwordTokenizers(config, splits.train, data_dir));
    return splits;
  }
  std::shared_ptr<Tokenizer> SourceTokenizer() const override {
    return Trained(tokenizers_.source);
  }
  std::shared_ptr<Tokenizer> TargetTokenizer() const override {
    return Trained(tokenizers_.target);
  }
  std::vector<MetricSpec> Metrics() const override {
    return {{"bleu", true}, {"chrf", true}, {"exact_match", true}};
  }
  std::map<std::string, double> Score(const std::vector<std::string>& predictions,
                                      const std::vector<Example>& examples) const override {
    std::vector<std::vector<std::string>> references;
    references.reserve(examples.size());
    for (const Example& example : examples) references.push_back(example.references);
    return {{"bleu", CorpusBleu(predictions, references).score},
            {"chrf", CorpusChrf(predictions, references)},
            {"exact_match", ExactMatchPercent(predictions, examples)}};
  }

 private:
  static std::shared_ptr<Tokenizer> Trained(const std::shared_ptr<SubwordTokenizer>& tokenizer) {
    ATTNLAB_CHECK(tokenizer != nullptr, "de_en: the tokenizers are trained by LoadSplits");
    return tokenizer;
  }
  // Trained (or loaded) from the training split by LoadSplits.
  mutable SubwordTokenizers tokenizers_;
};

ATTNLAB_REGISTER_TASK(de_en, "de_en", [](const Config&) -> absl::StatusOr<std::unique_ptr<Task>> {
  return std::make_unique<DeEnTask>();
});

}  // namespace
}  // namespace attnlab::experiments
