// Corpus-level translation metrics computed exactly as sacreBLEU 2.x computes its defaults
// (`sacrebleu -m bleu chrf`, i.e. BLEU() and CHRF() with no arguments):
//
// BLEU: each line right-stripped, then 13a-tokenised; word n-grams 1..4; per segment the
// hypothesis n-gram counts are clipped by the reference counts and the closest reference
// length is taken; these statistics are summed over the corpus before any ratio. Then
// BP = 1 if hyp_len >= ref_len, else exp(1 - ref_len / hyp_len) (0 if hyp_len = 0), and
// BLEU = BP * exp(mean over n = 1..4 of log p_n), p_n = 100 * matches_n / total_n, with
// sacreBLEU's default smooth_method='exp' (NIST smoothing): if an order has no match at
// all, the k-th such order (k = 1, 2, ...) gets p_n = 100 / (2^k * total_n) instead of 0;
// orders that do match are untouched. If no order matches at all the score is 0; if the
// corpus has no n-grams of some order (every hypothesis shorter than n tokens), that
// p_n and the score are 0 (effective_order is off, as in sacreBLEU's corpus BLEU).
//
// chrF: whitespace removed, character (Unicode code point) n-grams 1..6, no word n-grams,
// beta = 2, no eps smoothing: per segment, counts of hypothesis n-grams, reference n-grams
// and clipped matches per order (hypothesis n-grams of an order count only if the reference
// has n-grams of that order), summed over the corpus; then precision and recall averaged
// over the orders where both counts are nonzero, and F_beta = (1 + beta^2) P R /
// (beta^2 P + R), x100.
//
// references[i] holds the references of segment i (at least one, else ATTNLAB_CHECK
// fails; so does a hypotheses/references count mismatch). With several, BLEU clips n-gram
// counts by the largest count in any one reference and takes the closest reference
// length (ties: the shorter); chrF takes, per segment, the statistics of the reference
// with the best sentence-level chrF (ties: the first). Both as sacreBLEU's multi-reference
// scoring does. Segments may have different numbers of references (sacreBLEU's API wants
// reference streams of equal length, padded with None). An empty corpus scores 0.
// Text is UTF-8; whitespace means Python's str.isspace() (Unicode), as in sacreBLEU.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

namespace attnlab::experiments {

// sacreBLEU's `13a` tokeniser (mteval-v13a.pl's): drops "<skipped>" and "-\n", turns "\n"
// into a space, unescapes &quot; &amp; &lt; &gt; (in that order, each once over the
// line), pads ASCII symbols other than ' , - . with spaces, splits a period or comma off
// unless it sits between digits, splits a dash off after a digit ("a-b" stays, "1-2" ->
// "1 - 2"); returns the tokens joined by single spaces. (CorpusBleu right-strips each line
// first, as sacreBLEU does; this function, like sacreBLEU's Tokenizer13a, does not.)
std::string Tokenize13a(const std::string& line);

struct BleuScore {
  double score = 0.0;  // 0..100
  // Modified n-gram precisions, %, as sacreBLEU reports them (exp-smoothed where an order
  // has no match).
  std::array<double, 4> precisions{};
  double brevity_penalty = 0.0;
  int64_t hypothesis_length = 0;  // tokens, after 13a
  int64_t reference_length = 0;   // effective reference length
};

BleuScore CorpusBleu(const std::vector<std::string>& hypotheses,
                     const std::vector<std::vector<std::string>>& references);

// chrF (Popović 2015) with sacreBLEU 2.x's defaults, 0..100.
double CorpusChrf(const std::vector<std::string>& hypotheses,
                  const std::vector<std::vector<std::string>>& references);

}  // namespace attnlab::experiments
