// cmudict: grapheme-to-phoneme conversion on the CMU Pronouncing Dictionary, letters in,
// ARPAbet phonemes out ("aalborg" -> "AO L B AO R G"), as in the G2P literature (CMU
// Sphinx's g2p-seq2seq, Yao & Zweig 2015). Data: `tools/fetch-data cmudict`; parsing in
// cmudict_parser.h. Alternative pronunciations are extra references (a word is right if
// it matches any); the split is by headword (hashed_split.h), so no word crosses splits.
//
// Metrics (g2p_metrics.h): word error rate (main, lower is better), phoneme error rate,
// and exact match (100 - WER).
#include "experiments/metrics/g2p_metrics.h"
#include "experiments/tasks/cmudict_parser.h"
#include "experiments/tasks/fetched_data.h"
#include "experiments/tasks/hashed_split.h"
#include "framework/core/error.h"

namespace attnlab::experiments {
namespace {

class CmudictTask : public Task {
 public:
  absl::StatusOr<Splits> LoadSplits(const Config& config) const override {
    ASSIGN_OR_RETURN(const std::string text, ReadFetchedFile(config, "cmudict", "index.js"));
    ASSIGN_OR_RETURN(std::vector<Example> examples,
                     ParseCmudict(text, FetchedDataDir(config, "cmudict") + "/index.js",
                                  config.task().keep_stress));
    return SplitBySourceHash(std::move(examples), static_cast<uint64_t>(config.task().seed),
                             SplitCapsFromConfig(config));
  }
  // Source: one token per letter (the default). Target: one token per phoneme.
  std::shared_ptr<Tokenizer> TargetTokenizer() const override {
    return std::make_shared<WhitespaceTokenizer>();
  }
  std::vector<MetricSpec> Metrics() const override {
    return {{"wer", false}, {"per", false}, {"exact_match", true}};
  }
  std::map<std::string, double> Score(const std::vector<std::string>& predictions,
                                      const std::vector<Example>& examples) const override {
    const G2pErrorRates rates = G2pErrors(predictions, examples);
    return {{"wer", rates.word_error_rate},
            {"per", rates.phoneme_error_rate},
            {"exact_match", ExactMatchPercent(predictions, examples)}};
  }
};

ATTNLAB_REGISTER_TASK(cmudict, "cmudict",
                      [](const Config&) -> absl::StatusOr<std::unique_ptr<Task>> {
                        return std::make_unique<CmudictTask>();
                      });

}  // namespace
}  // namespace attnlab::experiments
