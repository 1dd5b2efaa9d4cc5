// Corpus-level translation metrics computed exactly as sacreBLEU computes its defaults:
// BLEU (13a tokenisation, n-grams 1..4, brevity penalty, no smoothing) and chrF
// (character n-grams 1..6, beta = 2, whitespace ignored, no word n-grams).
//
// references[i] holds the references of segment i. With one reference per segment the
// scores equal sacreBLEU's. With several, n-gram counts are clipped by the largest count in
// any reference and the reference length is the closest one (ties: the shorter), as in
// sacreBLEU's multi-reference BLEU; chrF takes, per segment, the reference with the best
// sentence-level chrF (as sacreBLEU does). Segments may have different numbers of
// references (sacreBLEU would need equal-length reference streams).
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

namespace attnlab::experiments {

// sacreBLEU's `13a` tokeniser (mteval-v13a.pl's): unescapes a few entities and splits
// punctuation off words; returns the tokens joined by single spaces.
std::string Tokenize13a(const std::string& line);

struct BleuScore {
  double score = 0.0;                // 0..100
  std::array<double, 4> precisions;  // modified n-gram precisions, %
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
