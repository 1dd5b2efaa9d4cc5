#include "experiments/trainer/text_scoring.h"

#include <map>

#include "experiments/data/batching.h"
#include "framework/autograd/grad_mode.h"
#include "layers/decoding/beam_search.h"

namespace attnlab::experiments {

std::vector<std::vector<ScoredText>> DecodeTextsNBest(nn::Seq2SeqModel& model,
                                                      const ExperimentData& data,
                                                      const std::vector<std::string>& sources,
                                                      const EvaluationOptions& options,
                                                      int64_t nbest) {
  NoGradGuard no_grad;
  std::vector<EncodedExample> encoded;
  for (const std::string& source : sources) encoded.push_back({data.EncodeSource(source), {}});
  std::vector<std::vector<ScoredText>> lists(sources.size());
  nn::BeamSearchOptions beam;
  beam.beam_size = options.beam_size;
  beam.length_penalty = options.length_penalty;
  beam.nbest = nbest;
  for (const std::vector<int64_t>& batch_indices :
       MakeBatchPlan(encoded, options.batch_tokens, options.max_batch_size, /*shuffle=*/false, 0)) {
    // With the default limit, the batch is split by source length, so that the limit of
    // a batch is that of each of its sources (a hypothesis cut afterwards would no longer
    // match its scores).
    std::map<size_t, std::vector<int64_t>> groups;
    for (int64_t index : batch_indices) {
      groups[options.max_decode_length > 0 ? 0 : encoded[index].source.size()].push_back(index);
    }
    for (const auto& [source_length, indices] : groups) {
      const Batch batch = MakeBatch(encoded, indices);
      beam.max_len = options.max_decode_length > 0 ? options.max_decode_length
                                                   : 2 * static_cast<int64_t>(source_length) + 10;
      const std::vector<std::vector<nn::ScoredHypothesis>> found =
          nn::BeamSearchNBest(model, batch.source, beam);
      for (size_t row = 0; row < indices.size(); ++row) {
        for (const nn::ScoredHypothesis& hypothesis : found[row]) {
          lists[indices[row]].push_back(
              {data.DecodeTarget(hypothesis.tokens), hypothesis.log_prob, hypothesis.score});
        }
      }
    }
  }
  return lists;
}

std::vector<nn::TargetScore> ScoreTexts(nn::Seq2SeqModel& model, const ExperimentData& data,
                                        const std::vector<TextPair>& pairs,
                                        const EvaluationOptions& options) {
  NoGradGuard no_grad;
  std::vector<EncodedExample> encoded;
  for (const TextPair& pair : pairs) {
    encoded.push_back({data.EncodeSource(pair.source), data.EncodeTarget(pair.target)});
  }
  std::vector<nn::TargetScore> scores(pairs.size());
  for (const std::vector<int64_t>& indices :
       MakeBatchPlan(encoded, options.batch_tokens, options.max_batch_size, /*shuffle=*/false, 0)) {
    const Batch batch = MakeBatch(encoded, indices);
    std::vector<std::vector<int32_t>> targets;
    for (int64_t index : indices) targets.push_back(encoded[index].target);
    const std::vector<nn::TargetScore> batch_scores =
        nn::ScoreTargets(model, batch.source, targets);
    for (size_t row = 0; row < indices.size(); ++row) scores[indices[row]] = batch_scores[row];
  }
  return scores;
}

}  // namespace attnlab::experiments
