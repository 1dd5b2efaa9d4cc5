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

// Decoders never emit pad or bos (fairseq likewise never selects pad): they are not
// target tokens, and an untrained model may well rank them first. The scores keep the
// model's log-probabilities, not renormalized over the remaining tokens.
inline bool IsGeneratable(int32_t token, const SpecialTokens& special) {
  return token != special.pad_id && token != special.bos_id;
}

}  // namespace attnlab::nn
