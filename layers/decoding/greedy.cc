#include "layers/decoding/greedy.h"

#include <algorithm>
#include <vector>

#include "framework/autograd/grad_mode.h"
#include "framework/core/error.h"
#include "framework/ops/frozen_weights.h"
#include "layers/decoding/eval_mode_guard.h"

namespace attnlab::nn {

DecodeResult GreedyDecode(Seq2SeqModel& model, const Tensor& src, int64_t requested_max_len) {
  ATTNLAB_CHECK(src.dtype() == DType::kI32 && src.rank() == 2,
                "GreedyDecode: src should be i32 [batch, src_len], got ", src.Describe());
  ATTNLAB_CHECK(requested_max_len >= 0, "GreedyDecode: max_len ", requested_max_len,
                " is negative");
  // A Transformer cannot place a token beyond its positional table.
  const int64_t max_len = std::min(requested_max_len, model.max_decode_positions());
  NoGradGuard no_grad;
  EvalModeGuard eval_mode(model);
  FrozenWeights frozen_weights;  // each weight converted and packed once, not per token
  const SpecialTokens& special = model.special_tokens();
  const int64_t batch = src.size(0);
  const int64_t vocab = model.target_vocab_size();

  DecodeResult result;
  result.tokens.assign(batch, {});
  result.scores.assign(batch, 0.0f);
  std::vector<bool> finished(batch, false);
  std::vector<int32_t> last_tokens(batch, special.bos_id);
  int64_t unfinished = batch;
  std::unique_ptr<DecoderState> state = model.StartDecoding(src);
  for (int64_t step = 0; step < max_len && unfinished > 0; ++step) {
    const Tensor log_probs =
        model.DecodeStep(*state, Tensor::FromInts(last_tokens, {batch}));  // [batch, vocab]
    const std::vector<float> values = log_probs.ToFloats();
    for (int64_t row = 0; row < batch; ++row) {
      // Finished rows keep being fed (eos) so the batch stays whole; their output is unused.
      if (finished[row]) continue;
      const float* row_values = values.data() + row * vocab;
      int32_t best = -1;  // the first maximum among tokens a decoder may emit
      for (int32_t token = 0; token < vocab; ++token) {
        if (IsGeneratable(token, special) && (best < 0 || row_values[token] > row_values[best])) {
          best = token;
        }
      }
      result.scores[row] += row_values[best];
      last_tokens[row] = best;
      if (best == special.eos_id) {
        finished[row] = true;
        --unfinished;
      } else {
        result.tokens[row].push_back(best);
      }
    }
  }
  return result;
}

}  // namespace attnlab::nn
