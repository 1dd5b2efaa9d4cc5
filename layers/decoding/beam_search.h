// Beam search (as in GNMT, Wu et al. 2016, section 7, and fairseq): every source keeps
// the beam_size best partial hypotheses by total log-probability. At each step the
// 2 x beam_size best one-token extensions are ranked; an extension ending in eos among
// the first beam_size ranks becomes a finished hypothesis, scored by its log-probability
// divided by the length penalty lp = ((5 + length) / 6)^alpha (length counts the eos);
// the best non-eos extensions form the next beam. A source is done when no live beam
// can still beat its nbest-th best finished hypothesis (a live beam's log-probability
// only falls, and the length penalty is at most lp(max_len), which bounds what it can
// reach); decoding stops when every source is done, or after max_len tokens, when the
// surviving beams are finished as they stand. Pad and bos are never extensions (see
// decode_result.h). Runs without autograd and in evaluation mode (restored after).
#pragma once

#include <cstdint>
#include <vector>

#include "framework/tensor/tensor.h"
#include "layers/decoding/decode_result.h"
#include "layers/decoding/seq2seq_model.h"

namespace attnlab::nn {

struct BeamSearchOptions {
  int64_t beam_size = 4;
  int64_t max_len = 100;        // generated tokens per hypothesis, eos included (at most the
                                // model's max_decode_positions())
  float length_penalty = 0.6f;  // alpha; 0 ranks by total log-probability
  // Finished hypotheses kept per source, in [1, beam_size]. A larger n-best list can make
  // the search run longer (until its nbest-th entry is safe), never changes its first.
  int64_t nbest = 1;
};

// The GNMT length penalty ((5 + length) / 6)^alpha.
float LengthPenalty(int64_t length, float alpha);

// src: i32 [batch, src_len] -> per source, its n-best list: the options.nbest best
// finished hypotheses, best score first (ties in the order they finished), each a
// different token sequence. A list is shorter only when the search space is (max_len 0
// gives empty lists; max_len 1 has one hypothesis per generatable token).
std::vector<std::vector<ScoredHypothesis>> BeamSearchNBest(Seq2SeqModel& model, const Tensor& src,
                                                           const BeamSearchOptions& options);

// src: i32 [batch, src_len] -> the best finished hypothesis of every source and its score
// (the first of its n-best list). Beam size 1 gives the same tokens as GreedyDecode (and,
// with alpha 0, the same score).
DecodeResult BeamSearch(Seq2SeqModel& model, const Tensor& src, const BeamSearchOptions& options);

}  // namespace attnlab::nn
