// What greedy decoding and beam search return, and which tokens they may emit.
#pragma once

#include <cstdint>
#include <vector>

#include "layers/decoding/seq2seq_model.h"

namespace attnlab::nn {

struct DecodeResult {
  // Per source row: the generated tokens, without bos and without the final eos.
  std::vector<std::vector<int32_t>> tokens;
  // Per source row: the hypothesis score (sum of token log-probabilities including the
  // eos, divided by the length penalty for beam search).
  std::vector<float> scores;
};

// A finished hypothesis of beam search, as an n-best list holds it.
struct ScoredHypothesis {
  std::vector<int32_t> tokens;  // without bos and without the final eos
  // Sum of the model's log-probabilities (nats) of the tokens, the eos included when the
  // hypothesis has one: what teacher forcing on tokens (+ eos) gives.
  float log_prob = 0.0f;
  // What beam search ranks by: log_prob / LengthPenalty(length), length counting the eos.
  float score = 0.0f;
  // False when max_len cut the hypothesis before it emitted eos (then no eos is scored).
  bool ended_with_eos = true;
};

// Decoders never emit pad or bos (fairseq likewise never selects pad): they are not
// target tokens, and an untrained model may well rank them first. The scores keep the
// model's log-probabilities, not renormalized over the remaining tokens.
inline bool IsGeneratable(int32_t token, const SpecialTokens& special) {
  return token != special.pad_id && token != special.bos_id;
}

}  // namespace attnlab::nn
