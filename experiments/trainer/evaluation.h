// Evaluation of a model on a split: teacher-forced loss and token accuracy, then
// decoding (greedy or beam) scored by exact match and the task's own metrics.
#pragma once

#include <functional>
#include <map>
#include <string>
#include <vector>

#include "experiments/trainer/experiment_data.h"
#include "layers/decoding/seq2seq_model.h"

namespace attnlab::experiments {

struct EvaluationOptions {
  int64_t batch_tokens = 4096;
  int64_t max_batch_size = 256;
  int64_t beam_size = 1;  // 1 = greedy
  float length_penalty = 0.6f;
  int64_t max_decode_length = 0;  // 0: 2 x each source (eos included) + 10
  bool decode = true;             // false: loss and token accuracy only
  // Asked between batches (of the loss pass and of decoding); true abandons the
  // evaluation. Decoding itself (layers/decoding) knows nothing of it.
  std::function<bool()> stop_requested;
};

struct EvaluationResult {
  // loss (mean cross-entropy per target token, no smoothing), token_accuracy (% of
  // target tokens predicted by argmax under teacher forcing), exact_match (%), and the
  // task's metrics.
  std::map<std::string, double> metrics;
  std::vector<std::string> predictions;  // in the split's order (when decoding)
  double seconds = 0.0;
  bool interrupted = false;  // stop_requested() said so: the metrics are incomplete
};

EvaluationResult Evaluate(nn::Seq2SeqModel& model, const ExperimentData& data,
                          const std::string& split, const EvaluationOptions& options);

// Decodes raw source texts (e.g. from `attnlab decode`) in batches. When stop_requested()
// interrupts it, the sources not decoded get no prediction (the result is shorter).
std::vector<std::string> DecodeTexts(nn::Seq2SeqModel& model, const ExperimentData& data,
                                     const std::vector<std::string>& sources,
                                     const EvaluationOptions& options);

}  // namespace attnlab::experiments
