#include "layers/decoding/beam_search.h"

#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>
#include <vector>

#include "framework/autograd/grad_mode.h"
#include "framework/core/error.h"
#include "framework/ops/frozen_weights.h"
#include "layers/decoding/eval_mode_guard.h"

namespace attnlab::nn {
namespace {

constexpr float kNegativeInfinity = -std::numeric_limits<float>::infinity();

// A one-token extension of beam `beam` by `token`.
struct Candidate {
  float total_log_prob;
  int64_t beam;
  int32_t token;
};

// The best `count` extensions of one source's beams, best first; ties go to the lower
// (beam, token), so beam size 1 picks the same token as greedy's first maximum.
// beam_scores: [beam_size]; log_probs: [beam_size, vocab] rows of this source.
std::vector<Candidate> TopCandidates(const float* beam_scores, const float* log_probs,
                                     int64_t beam_size, int64_t vocab, int64_t count,
                                     const SpecialTokens& special) {
  std::vector<Candidate> candidates;
  candidates.reserve(beam_size * vocab);
  for (int64_t beam = 0; beam < beam_size; ++beam) {
    if (beam_scores[beam] == kNegativeInfinity) continue;  // an empty beam slot
    for (int32_t token = 0; token < vocab; ++token) {
      if (!IsGeneratable(token, special)) continue;
      const float total = beam_scores[beam] + log_probs[beam * vocab + token];
      if (total != kNegativeInfinity) candidates.push_back({total, beam, token});
    }
  }
  const auto better = [](const Candidate& a, const Candidate& b) {
    if (a.total_log_prob != b.total_log_prob) return a.total_log_prob > b.total_log_prob;
    return a.beam != b.beam ? a.beam < b.beam : a.token < b.token;
  };
  count = std::min<int64_t>(count, static_cast<int64_t>(candidates.size()));
  std::partial_sort(candidates.begin(), candidates.begin() + count, candidates.end(), better);
  candidates.resize(count);
  return candidates;
}

}  // namespace

float LengthPenalty(int64_t length, float alpha) {
  return std::pow((5.0f + static_cast<float>(length)) / 6.0f, alpha);
}

std::vector<std::vector<ScoredHypothesis>> BeamSearchNBest(Seq2SeqModel& model, const Tensor& src,
                                                           const BeamSearchOptions& options) {
  ATTNLAB_CHECK(src.dtype() == DType::kI32 && src.rank() == 2,
                "BeamSearch: src should be i32 [batch, src_len], got ", src.Describe());
  ATTNLAB_CHECK(options.beam_size >= 1, "BeamSearch: beam_size ", options.beam_size,
                " should be at least 1");
  ATTNLAB_CHECK(options.nbest >= 1 && options.nbest <= options.beam_size, "BeamSearch: nbest ",
                options.nbest, " should be in [1, beam_size ", options.beam_size, "]");
  ATTNLAB_CHECK(options.max_len >= 0, "BeamSearch: max_len ", options.max_len, " is negative");
  // A Transformer cannot place a token beyond its positional table.
  const int64_t max_len = std::min(options.max_len, model.max_decode_positions());
  NoGradGuard no_grad;
  EvalModeGuard eval_mode(model);
  FrozenWeights frozen_weights;  // each weight converted and packed once, not per token
  const SpecialTokens& special = model.special_tokens();
  const int64_t batch = src.size(0), beam_size = options.beam_size;
  const int64_t rows = batch * beam_size;  // row b * beam_size + i is beam i of source b
  const int64_t vocab = model.target_vocab_size();

  // Every source starts as beam_size copies of its encoding; only beam 0 is live, so the
  // first step does not pick the same token from identical beams.
  std::unique_ptr<DecoderState> state = model.StartDecoding(src);
  std::vector<int32_t> row_sources(rows);
  for (int64_t row = 0; row < rows; ++row) row_sources[row] = static_cast<int32_t>(row / beam_size);
  model.ReorderState(*state, Tensor::FromInts(row_sources, {rows}));
  std::vector<float> beam_scores(rows, kNegativeInfinity);
  for (int64_t source = 0; source < batch; ++source) beam_scores[source * beam_size] = 0.0f;
  std::vector<std::vector<int32_t>> beam_tokens(rows);
  std::vector<int32_t> last_tokens(rows, special.bos_id);

  std::vector<std::vector<ScoredHypothesis>> finished(batch);
  std::vector<bool> done(batch, false);
  int64_t sources_left = batch;
  for (int64_t step = 0; step < max_len && sources_left > 0; ++step) {
    const std::vector<float> log_probs =
        model.DecodeStep(*state, Tensor::FromInts(last_tokens, {rows})).ToFloats();
    const int64_t length = step + 1;  // of a hypothesis extended in this step
    const bool last_step = step + 1 == max_len;

    std::vector<int32_t> reorder(rows);
    std::vector<float> next_scores(rows, kNegativeInfinity);
    std::vector<std::vector<int32_t>> next_tokens(rows);
    std::vector<int32_t> next_last_tokens(rows, special.eos_id);
    for (int64_t source = 0; source < batch; ++source) {
      const int64_t first_row = source * beam_size;
      for (int64_t beam = 0; beam < beam_size; ++beam) {
        reorder[first_row + beam] = static_cast<int32_t>(first_row + beam);
      }
      if (done[source]) continue;  // its rows are carried along unchanged and unused

      const std::vector<Candidate> candidates =
          TopCandidates(beam_scores.data() + first_row, log_probs.data() + first_row * vocab,
                        beam_size, vocab, 2 * beam_size, special);
      int64_t filled = 0;
      for (size_t rank = 0; rank < candidates.size() && filled < beam_size; ++rank) {
        const Candidate& candidate = candidates[rank];
        const int64_t from_row = first_row + candidate.beam;
        if (candidate.token == special.eos_id) {
          // An eos ranked below beam_size would displace a better live hypothesis.
          if (static_cast<int64_t>(rank) < beam_size) {
            finished[source].push_back(
                {beam_tokens[from_row], candidate.total_log_prob,
                 candidate.total_log_prob / LengthPenalty(length, options.length_penalty),
                 /*ended_with_eos=*/true});
          }
          continue;
        }
        const int64_t to_row = first_row + filled++;
        reorder[to_row] = static_cast<int32_t>(from_row);
        next_scores[to_row] = candidate.total_log_prob;
        next_tokens[to_row] = beam_tokens[from_row];
        next_tokens[to_row].push_back(candidate.token);
        next_last_tokens[to_row] = candidate.token;
      }
      if (last_step) {
        // Out of steps: the live beams end here, without eos.
        for (int64_t beam = 0; beam < filled; ++beam) {
          const int64_t row = first_row + beam;
          finished[source].push_back(
              {next_tokens[row], next_scores[row],
               next_scores[row] / LengthPenalty(length, options.length_penalty),
               /*ended_with_eos=*/false});
        }
      }
      // Done when no live beam can still beat the nbest-th best finished hypothesis (the
      // best, for one). A live beam's log-probability only falls as it grows, and the
      // length penalty (alpha >= 0) is at most LengthPenalty(max_len), so next_score /
      // LengthPenalty(max_len) bounds every score it can still reach. (Stopping at
      // beam_size finished hypotheses, as fairseq does, lets improbable beams that
      // skipped tokens end first and cut off a far better live beam.)
      bool beaten = false;
      if (static_cast<int64_t>(finished[source].size()) >= options.nbest && filled > 0) {
        std::vector<float> finished_scores;
        for (const ScoredHypothesis& hypothesis : finished[source]) {
          finished_scores.push_back(hypothesis.score);
        }
        std::nth_element(finished_scores.begin(), finished_scores.begin() + options.nbest - 1,
                         finished_scores.end(), std::greater<float>());
        const float safe_score = finished_scores[options.nbest - 1];
        const float best_live = *std::max_element(next_scores.begin() + first_row,
                                                  next_scores.begin() + first_row + filled);
        beaten = safe_score >= best_live / LengthPenalty(max_len, options.length_penalty);
      }
      if (last_step || beaten || filled == 0) {
        done[source] = true;
        --sources_left;
      }
    }
    if (sources_left == 0) break;
    model.ReorderState(*state, Tensor::FromInts(reorder, {rows}));
    beam_scores = std::move(next_scores);
    beam_tokens = std::move(next_tokens);
    last_tokens = std::move(next_last_tokens);
  }

  // Each list best first; a stable sort keeps ties in the order they finished.
  for (std::vector<ScoredHypothesis>& hypotheses : finished) {
    std::stable_sort(
        hypotheses.begin(), hypotheses.end(),
        [](const ScoredHypothesis& a, const ScoredHypothesis& b) { return a.score > b.score; });
    if (static_cast<int64_t>(hypotheses.size()) > options.nbest) hypotheses.resize(options.nbest);
  }
  return finished;
}

DecodeResult BeamSearch(Seq2SeqModel& model, const Tensor& src, const BeamSearchOptions& options) {
  const std::vector<std::vector<ScoredHypothesis>> lists = BeamSearchNBest(model, src, options);
  DecodeResult result;
  result.tokens.resize(lists.size());
  result.scores.assign(lists.size(), 0.0f);
  for (size_t source = 0; source < lists.size(); ++source) {
    if (lists[source].empty()) continue;  // max_len == 0
    result.tokens[source] = lists[source].front().tokens;
    result.scores[source] = lists[source].front().score;
  }
  return result;
}

}  // namespace attnlab::nn
