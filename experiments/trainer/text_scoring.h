// A trained model's scores for texts a user gives (`attnlab decode --nbest`, `attnlab
// score`): n-best lists of hypotheses for source texts, and the log-probability of given
// targets. Both encode the texts with the run's tokenizers and vocabularies (tokens unseen
// in training become <unk>) and work in evaluation batches, in the caller's order.
#pragma once

#include <string>
#include <vector>

#include "experiments/trainer/evaluation.h"
#include "experiments/trainer/experiment_data.h"
#include "layers/decoding/seq2seq_model.h"
#include "layers/decoding/sequence_scoring.h"

namespace attnlab::experiments {

// A hypothesis as text, with the model's scores (see nn::ScoredHypothesis).
struct ScoredText {
  std::string text;
  double log_prob = 0.0;  // sum of its tokens' log-probabilities, eos included if it ended
  double score = 0.0;     // log_prob / length penalty: what beam search ranks by
};

// Per source, beam search's n-best list (options.beam_size beams, `nbest` <= beam_size
// hypotheses, best first, options.length_penalty). Without a fixed
// options.max_decode_length every source is decoded with its own limit, 2 x its length
// (eos included) + 10, rather than its batch's limit cut afterwards as DecodeTexts does,
// so each log_prob is that of the tokens the text shows.
std::vector<std::vector<ScoredText>> DecodeTextsNBest(nn::Seq2SeqModel& model,
                                                      const ExperimentData& data,
                                                      const std::vector<std::string>& sources,
                                                      const EvaluationOptions& options,
                                                      int64_t nbest);

struct TextPair {
  std::string source;
  std::string target;
};

// Per pair, the teacher-forced log-probability of the target (with its eos) given the
// source, and its token count (eos included). Uses options.batch_tokens and
// max_batch_size only.
std::vector<nn::TargetScore> ScoreTexts(nn::Seq2SeqModel& model, const ExperimentData& data,
                                        const std::vector<TextPair>& pairs,
                                        const EvaluationOptions& options);

}  // namespace attnlab::experiments
