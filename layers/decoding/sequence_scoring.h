// The log-probability a model gives a known target (fairseq's --score-reference): teacher
// forcing, so the decoder reads bos + the target without its last token, and each target
// token's log-probability is read off log_softmax of the logits at its position. The sum
// for a finished hypothesis (tokens + eos) equals the log_prob beam search reports for it.
// Runs without autograd and in evaluation mode (restored after), a batch at a time.
#pragma once

#include <cstdint>
#include <vector>

#include "framework/tensor/tensor.h"
#include "layers/decoding/seq2seq_model.h"

namespace attnlab::nn {

struct TargetScore {
  double log_prob = 0.0;  // sum over the target's tokens, in nats
  int64_t tokens = 0;     // how many tokens were scored (the target's length)

  // Mean log-probability per token; 0 for an empty target.
  double mean_log_prob() const { return tokens > 0 ? log_prob / static_cast<double>(tokens) : 0.0; }
};

// src: i32 [batch, src_len], padded with pad; targets: one id sequence per source row,
// without bos; end it with eos to score the end of the sequence too (as encoded targets
// and finished hypotheses do). Rows may differ in length: they are padded here, and the
// padding is never scored. Every id must be a target-vocabulary id, and no row longer
// than the model's max_decode_positions().
std::vector<TargetScore> ScoreTargets(Seq2SeqModel& model, const Tensor& src,
                                      const std::vector<std::vector<int32_t>>& targets);

}  // namespace attnlab::nn
