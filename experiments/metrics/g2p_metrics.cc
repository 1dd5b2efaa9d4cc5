#include "experiments/metrics/g2p_metrics.h"

#include <algorithm>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "absl/strings/str_split.h"
#include "framework/core/edit_distance.h"
#include "framework/core/error.h"

namespace attnlab::experiments {
namespace {

std::vector<std::string> Phonemes(const std::string& text) {
  return absl::StrSplit(text, ' ', absl::SkipEmpty());
}

}  // namespace

G2pErrorRates G2pErrors(const std::vector<std::string>& predictions,
                        const std::vector<Example>& examples) {
  ATTNLAB_CHECK(predictions.size() == examples.size(), predictions.size(), " predictions for ",
                examples.size(), " examples");
  G2pErrorRates rates;
  if (examples.empty()) return rates;
  int64_t wrong_words = 0;
  int64_t phoneme_errors = 0;
  int64_t reference_phonemes = 0;
  for (size_t i = 0; i < examples.size(); ++i) {
    const std::vector<std::string>& references = examples[i].references;
    ATTNLAB_CHECK(!references.empty(), "example ", i, " has no reference");
    if (std::find(references.begin(), references.end(), predictions[i]) == references.end()) {
      ++wrong_words;
    }
    const std::vector<std::string> predicted = Phonemes(predictions[i]);
    // The closest reference: fewest edits; ties go to the first listed one.
    int64_t best_distance = std::numeric_limits<int64_t>::max();
    int64_t best_length = 0;
    for (const std::string& reference : references) {
      const std::vector<std::string> phonemes = Phonemes(reference);
      const int64_t distance = EditDistance(predicted, phonemes);
      if (distance < best_distance) {
        best_distance = distance;
        best_length = static_cast<int64_t>(phonemes.size());
      }
    }
    phoneme_errors += best_distance;
    reference_phonemes += best_length;
  }
  rates.word_error_rate = 100.0 * static_cast<double>(wrong_words) / examples.size();
  if (reference_phonemes > 0) {
    rates.phoneme_error_rate = 100.0 * phoneme_errors / reference_phonemes;
  } else {
    // Every chosen reference is empty: the ratio is undefined; report all or nothing.
    rates.phoneme_error_rate = phoneme_errors > 0 ? 100.0 : 0.0;
  }
  return rates;
}

}  // namespace attnlab::experiments
