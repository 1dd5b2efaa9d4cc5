// Grapheme-to-phoneme error rates, as the G2P literature reports them (e.g. Yao & Zweig
// 2015; CMU Sphinx's g2p-seq2seq). Predictions and references are phoneme strings with
// phonemes separated by single spaces ("HH AH0 L OW1").
#pragma once

#include <string>
#include <vector>

#include "experiments/data/example.h"

namespace attnlab::experiments {

struct G2pErrorRates {
  // Word error rate, %: words whose prediction equals none of their references.
  double word_error_rate = 0.0;
  // Phoneme error rate, %: sum over words of the phoneme edit distance (Levenshtein over
  // space-separated phonemes) to the closest reference, over the sum of those closest
  // references' lengths. The closest reference is the one with the fewest edits; on a tie,
  // the first listed. If every chosen reference is empty the ratio is undefined: 0 when
  // the predictions are empty too, else 100.
  double phoneme_error_rate = 0.0;
};

// predictions[i] is the prediction for examples[i] (their counts must match, else
// ATTNLAB_CHECK fails; so does an example without references). No examples: both rates 0.
G2pErrorRates G2pErrors(const std::vector<std::string>& predictions,
                        const std::vector<Example>& examples);

}  // namespace attnlab::experiments
