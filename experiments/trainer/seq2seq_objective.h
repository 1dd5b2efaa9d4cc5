// The objective of a sequence-to-sequence model (model.type: a Transformer or an RNN
// encoder-decoder) on a registered Task (experiments/tasks/task.h):
//
//   batches   token-budgeted, length-bucketed (train.batch_tokens, train.max_batch_size),
//             shuffled per epoch from experiment.seed and the epoch's index
//   loss      label-smoothed cross-entropy per non-pad target token (train.label_smoothing)
//   metrics   loss and token accuracy (teacher-forced), exact match and the task's own
//             metrics of greedy decoding; the task's first metric is the main one
//   end       samples.txt and attention.safetensors of the first validation examples,
//             then the test split greedy and, with eval.beam_size > 1, by beam search
#pragma once

#include <memory>

#include "absl/status/statusor.h"
#include "experiments/config/config.h"
#include "experiments/trainer/checkpoint.h"
#include "experiments/trainer/objective.h"

namespace attnlab::experiments {

// Loads the task's data (with the checkpoint's vocabularies when resuming) and builds
// the model the config describes (model_factory.h).
absl::StatusOr<std::unique_ptr<Objective>> MakeSeq2SeqObjective(const Config& config,
                                                                const CheckpointContents* resumed);

// Validation: loss (lower is better), token_accuracy and exact_match (higher), then the
// task's own metrics. Test: the same names, and beam_<name> too with eval.beam_size > 1.
absl::StatusOr<ReportedMetrics> Seq2SeqReportedMetrics(const Config& config);

}  // namespace attnlab::experiments
