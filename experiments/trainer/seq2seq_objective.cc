#include "experiments/trainer/seq2seq_objective.h"

#include <algorithm>
#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "experiments/data/batching.h"
#include "experiments/trainer/evaluation.h"
#include "experiments/trainer/experiment_data.h"
#include "experiments/trainer/model_factory.h"
#include "framework/io/atomic_file.h"
#include "framework/io/safetensors.h"
#include "framework/ops/dropout_batch_shard.h"
#include "framework/ops/ops.h"

namespace attnlab::experiments {
namespace {

using Json = nlohmann::json;

// Target tokens that are not padding in i32 ids.
int64_t CountNonPad(const Tensor& ids) {
  int64_t count = 0;
  for (const int32_t id : ids.contiguous().ToInts()) count += id != Vocabulary::kPad;
  return count;
}

// samples.txt: the first `count` validation examples with reference and prediction.
absl::Status WriteSamples(const std::string& path, const std::vector<Example>& examples,
                          const std::vector<std::string>& predictions, int64_t count) {
  std::string text;
  for (int64_t i = 0; i < std::min<int64_t>(count, static_cast<int64_t>(examples.size())); ++i) {
    const bool correct = std::find(examples[i].references.begin(), examples[i].references.end(),
                                   predictions[i]) != examples[i].references.end();
    absl::StrAppend(&text, "source:     ", examples[i].source,
                    "\nreference:  ", examples[i].references[0], "\nprediction: ", predictions[i],
                    correct ? "   (correct)" : "   (wrong)", "\n\n");
  }
  return WriteFileAtomically(path, text);
}

// attention.safetensors: attention maps of the first validation examples, for the report.
absl::Status WriteAttentionPlots(const std::string& path, nn::Seq2SeqModel& model,
                                 const ExperimentData& data, int64_t count, bool all_layers) {
  NamedTensors tensors;
  SafetensorsMetadata metadata;
  for (int64_t i = 0; i < std::min<int64_t>(count, static_cast<int64_t>(data.valid.size())); ++i) {
    const Batch batch = MakeBatch(data.valid, {i});
    const auto plots = AttentionForPlots(model, batch.source, batch.target_input, all_layers);
    for (const auto& [name, weights] : plots) {
      tensors.emplace_back(absl::StrCat("example", i, ".", name), weights);
    }
    std::vector<std::string> source_tokens, target_tokens;
    for (int32_t id : data.valid[i].source)
      source_tokens.push_back(data.source_vocabulary.Token(id));
    target_tokens.push_back(data.target_vocabulary.Token(Vocabulary::kBos));
    for (size_t t = 0; t + 1 < data.valid[i].target.size(); ++t) {
      target_tokens.push_back(data.target_vocabulary.Token(data.valid[i].target[t]));
    }
    // Rows of the maps are decoder inputs (bos, y1, ...); columns are source tokens.
    metadata[absl::StrCat("example", i, ".source_tokens")] = Json(source_tokens).dump();
    metadata[absl::StrCat("example", i, ".target_tokens")] = Json(target_tokens).dump();
  }
  if (tensors.empty()) return absl::OkStatus();
  return WriteSafetensors(path, tensors, metadata);
}

Evaluation ToEvaluation(const EvaluationResult& result) {
  return {result.metrics, result.seconds, result.interrupted};
}

class Seq2SeqObjective : public Objective {
 public:
  Seq2SeqObjective(const Config& config, ExperimentData data,
                   std::shared_ptr<nn::Seq2SeqModel> model)
      : config_(config), data_(std::move(data)), model_(std::move(model)) {
    eval_options_.batch_tokens = config.train().batch_tokens;
    eval_options_.max_batch_size = config.train().max_batch_size;
    eval_options_.max_decode_length = config.eval().max_decode_length;
    eval_options_.length_penalty = static_cast<float>(config.eval().length_penalty);
  }

  nn::Module& module() override { return *model_; }

  std::string Description() const override {
    return absl::StrFormat("%s on task %s: %d parameters, %d/%d/%d examples, vocabularies %d/%d",
                           config_.model().type, config_.task().name, model_->ParameterCount(),
                           data_.train.size(), data_.valid.size(), data_.test.size(),
                           data_.source_vocabulary.size(), data_.target_vocabulary.size());
  }

  void AddToCheckpoint(CheckpointContents& contents) const override {
    contents.source_vocabulary = data_.source_vocabulary.tokens();
    contents.target_vocabulary = data_.target_vocabulary.tokens();
  }

  std::vector<std::vector<int64_t>> EpochPlan(int64_t epoch) override {
    const uint64_t seed = static_cast<uint64_t>(config_.experiment().seed);
    return MakeBatchPlan(data_.train, eval_options_.batch_tokens, eval_options_.max_batch_size,
                         /*shuffle=*/true, seed * 1000003ull + static_cast<uint64_t>(epoch));
  }

  BatchLoss Loss(const std::vector<int64_t>& indices, const BatchShard& shard) override {
    // The whole batch, padded as one process pads it, then this shard's rows of it.
    const Batch batch = MakeBatch(data_.train, indices);
    const int64_t rows = batch.source.size(0);
    const int64_t first = shard.FirstRow(rows), shard_rows = shard.EndRow(rows) - first;
    const float label_smoothing = static_cast<float>(config_.train().label_smoothing);
    auto loss_of = [&](const Tensor& source, const Tensor& target_input,
                       const Tensor& target_output) {
      const Tensor logits = model_->Forward(source, target_input);
      return CrossEntropy(Reshape(logits, {-1, logits.size(-1)}), Reshape(target_output, {-1}),
                          label_smoothing, Vocabulary::kPad);
    };
    if (shard.whole()) {
      return {loss_of(batch.source, batch.target_input, batch.target_output), batch.target_tokens};
    }
    // A shard with no rows (a batch of fewer rows than ranks) runs row 0 at weight 0: it
    // then draws the dropout masks the other ranks draw, and its generator stays in step.
    const bool stand_in = shard_rows == 0;
    const int64_t run_first = stand_in ? 0 : first, run_rows = stand_in ? 1 : shard_rows;
    const Tensor target_output = Narrow(batch.target_output, 0, run_first, run_rows);
    const int64_t shard_tokens = stand_in ? 0 : CountNonPad(target_output);
    const DropoutBatchShard dropout_rows(run_first, run_rows, rows);
    const Tensor shard_mean =
        loss_of(Narrow(batch.source, 0, run_first, run_rows),
                Narrow(batch.target_input, 0, run_first, run_rows), target_output);
    // The shard's token losses summed, over the whole batch's tokens.
    return {MulScalar(shard_mean, static_cast<float>(static_cast<double>(shard_tokens) /
                                                     static_cast<double>(batch.target_tokens))),
            batch.target_tokens};
  }

  std::vector<MetricSpec> Metrics() const override { return data_.task->Metrics(); }

  Evaluation Evaluate(const std::string& split, const StopRequestedFn& stop_requested) override {
    EvaluationOptions options = eval_options_;
    options.stop_requested = stop_requested;
    return ToEvaluation(experiments::Evaluate(*model_, data_, split, options));
  }

  absl::StatusOr<bool> WriteRunFiles(const std::string& run_dir,
                                     const StopRequestedFn& stop_requested) override {
    EvaluationOptions options = eval_options_;
    options.stop_requested = stop_requested;
    const EvaluationResult valid = experiments::Evaluate(*model_, data_, "valid", options);
    if (valid.interrupted) return false;
    RETURN_IF_ERROR(WriteSamples(absl::StrCat(run_dir, "/samples.txt"), data_.splits.valid,
                                 valid.predictions, config_.eval().samples));
    RETURN_IF_ERROR(WriteAttentionPlots(absl::StrCat(run_dir, "/attention.safetensors"), *model_,
                                        data_, config_.eval().attention_plots,
                                        config_.eval().all_heads));
    return true;
  }

  // Greedy decoding, then beam search with eval.beam_size > 1.
  int64_t TestPasses() const override { return config_.eval().beam_size > 1 ? 2 : 1; }

  TestPass Test(int64_t pass, const StopRequestedFn& stop_requested) override {
    EvaluationOptions options = eval_options_;
    options.stop_requested = stop_requested;
    if (pass == 0) {
      return {ToEvaluation(experiments::Evaluate(*model_, data_, "test", options)),
              {{"decoder", "greedy"}},
              ""};
    }
    options.beam_size = config_.eval().beam_size;
    return {ToEvaluation(experiments::Evaluate(*model_, data_, "test", options)),
            {{"decoder", absl::StrCat("beam", options.beam_size)}},
            "beam_"};
  }

 private:
  const Config config_;
  ExperimentData data_;
  std::shared_ptr<nn::Seq2SeqModel> model_;
  EvaluationOptions eval_options_;  // without a stop request: each call brings its own
};

}  // namespace

absl::StatusOr<std::unique_ptr<Objective>> MakeSeq2SeqObjective(const Config& config,
                                                                const CheckpointContents* resumed) {
  ASSIGN_OR_RETURN(
      ExperimentData data,
      resumed ? LoadExperimentData(config, &resumed->source_vocabulary, &resumed->target_vocabulary)
              : LoadExperimentData(config));
  ASSIGN_OR_RETURN(
      std::shared_ptr<nn::Seq2SeqModel> model,
      BuildModel(config, data.source_vocabulary.size(), data.target_vocabulary.size()));
  return std::unique_ptr<Objective>(
      new Seq2SeqObjective(config, std::move(data), std::move(model)));
}

absl::StatusOr<ReportedMetrics> Seq2SeqReportedMetrics(const Config& config) {
  ASSIGN_OR_RETURN(const std::unique_ptr<Task> task, MakeTask(config));
  ReportedMetrics reported;
  reported.validation = {{"loss", false}, {"token_accuracy", true}, {"exact_match", true}};
  for (const MetricSpec& spec : task->Metrics()) {
    const auto same = [&](const MetricSpec& other) { return other.name == spec.name; };
    if (std::find_if(reported.validation.begin(), reported.validation.end(), same) ==
        reported.validation.end()) {
      reported.validation.push_back(spec);
    }
  }
  for (const MetricSpec& spec : reported.validation) reported.test.push_back(spec.name);
  if (config.eval().beam_size > 1) {
    const size_t greedy = reported.test.size();
    for (size_t i = 0; i < greedy; ++i) reported.test.push_back("beam_" + reported.test[i]);
  }
  return reported;
}

}  // namespace attnlab::experiments
