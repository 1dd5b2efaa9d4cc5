#include "layers/decoding/sequence_scoring.h"

#include <algorithm>

#include "framework/autograd/grad_mode.h"
#include "framework/core/error.h"
#include "framework/ops/ops.h"
#include "layers/decoding/eval_mode_guard.h"

namespace attnlab::nn {

std::vector<TargetScore> ScoreTargets(Seq2SeqModel& model, const Tensor& src,
                                      const std::vector<std::vector<int32_t>>& targets) {
  ATTNLAB_CHECK(src.dtype() == DType::kI32 && src.rank() == 2,
                "ScoreTargets: src should be i32 [batch, src_len], got ", src.Describe());
  const int64_t batch = src.size(0);
  ATTNLAB_CHECK(static_cast<int64_t>(targets.size()) == batch, "ScoreTargets: ", targets.size(),
                " targets for ", batch, " source rows");
  const SpecialTokens& special = model.special_tokens();
  const int64_t vocab = model.target_vocab_size();
  int64_t longest = 0;
  for (const std::vector<int32_t>& target : targets) {
    longest = std::max<int64_t>(longest, static_cast<int64_t>(target.size()));
    for (int32_t id : target) {
      ATTNLAB_CHECK(id >= 0 && id < vocab, "ScoreTargets: target id ", id,
                    " is outside the target vocabulary of ", vocab);
    }
  }
  ATTNLAB_CHECK(longest <= model.max_decode_positions(), "ScoreTargets: a target of ", longest,
                " tokens exceeds the model's ", model.max_decode_positions(), " positions");
  std::vector<TargetScore> scores(batch);
  if (longest == 0) return scores;

  // tgt_in: i32 [batch, longest], bos then the target without its last token; picks:
  // i32 [batch, longest, 1], the target (the pad id where a shorter row ends, unscored).
  std::vector<int32_t> tgt_in(batch * longest, special.pad_id);
  std::vector<int32_t> picks(batch * longest, special.pad_id);
  for (int64_t row = 0; row < batch; ++row) {
    const std::vector<int32_t>& target = targets[row];
    for (size_t t = 0; t < target.size(); ++t) {
      tgt_in[row * longest + t] = t == 0 ? special.bos_id : target[t - 1];
      picks[row * longest + t] = target[t];
    }
  }
  NoGradGuard no_grad;
  EvalModeGuard eval_mode(model);
  const Tensor log_probs =
      LogSoftmax(model.Forward(src, Tensor::FromInts(tgt_in, {batch, longest})));
  const std::vector<float> picked =
      Gather(log_probs, 2, Tensor::FromInts(picks, {batch, longest, 1})).ToFloats();
  for (int64_t row = 0; row < batch; ++row) {
    const int64_t length = static_cast<int64_t>(targets[row].size());
    for (int64_t t = 0; t < length; ++t) {
      scores[row].log_prob += static_cast<double>(picked[row * longest + t]);
    }
    scores[row].tokens = length;
  }
  return scores;
}

}  // namespace attnlab::nn
