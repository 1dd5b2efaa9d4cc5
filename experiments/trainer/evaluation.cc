#include "experiments/trainer/evaluation.h"

#include <chrono>
#include <optional>

#include "framework/autograd/grad_mode.h"
#include "framework/ops/ops.h"
#include "layers/decoding/beam_search.h"
#include "layers/decoding/greedy.h"

namespace attnlab::experiments {
namespace {

bool StopRequested(const EvaluationOptions& options) {
  return options.stop_requested && options.stop_requested();
}

// Decodes encoded sources in length-sorted batches; returns id sequences in input order,
// or nothing when a stop request interrupts it.
std::optional<std::vector<std::vector<int32_t>>> DecodeEncoded(
    nn::Seq2SeqModel& model, const std::vector<EncodedExample>& examples,
    const EvaluationOptions& options) {
  std::vector<std::vector<int32_t>> outputs(examples.size());
  const auto plan = MakeBatchPlan(examples, options.batch_tokens, options.max_batch_size,
                                  /*shuffle=*/false, 0);
  for (const std::vector<int64_t>& indices : plan) {
    if (StopRequested(options)) return std::nullopt;
    const Batch batch = MakeBatch(examples, indices);
    const int64_t max_len =
        options.max_decode_length > 0 ? options.max_decode_length : 2 * batch.source.size(1) + 10;
    nn::DecodeResult result;
    if (options.beam_size > 1) {
      nn::BeamSearchOptions beam;
      beam.beam_size = options.beam_size;
      beam.max_len = max_len;
      beam.length_penalty = options.length_penalty;
      result = nn::BeamSearch(model, batch.source, beam);
    } else {
      result = nn::GreedyDecode(model, batch.source, max_len);
    }
    for (size_t row = 0; row < indices.size(); ++row) {
      std::vector<int32_t>& tokens = result.tokens[row];
      // Without a fixed limit each example gets its own, 2 x its source + 10 (eos
      // included), not its batch's: a prediction must not depend on the examples it is
      // batched with. Greedy decoding is causal, so cutting the batch's longer output is
      // exactly the output of decoding the example alone; for beam search it is the
      // batch's best hypothesis, cut.
      const size_t own_limit = 2 * examples[indices[row]].source.size() + 10;
      if (options.max_decode_length <= 0 && tokens.size() > own_limit) tokens.resize(own_limit);
      outputs[indices[row]] = std::move(tokens);
    }
  }
  return outputs;
}

}  // namespace

EvaluationResult Evaluate(nn::Seq2SeqModel& model, const ExperimentData& data,
                          const std::string& split, const EvaluationOptions& options) {
  const auto start = std::chrono::steady_clock::now();
  NoGradGuard no_grad;
  const bool was_training = model.is_training();
  model.Eval();
  const std::vector<EncodedExample>& encoded = data.Encoded(split);
  EvaluationResult result;

  // Teacher-forced loss and token accuracy, summed over tokens.
  double loss_sum = 0.0;
  int64_t tokens = 0, correct = 0;
  for (const auto& indices : MakeBatchPlan(encoded, options.batch_tokens, options.max_batch_size,
                                           /*shuffle=*/false, 0)) {
    if (StopRequested(options)) {
      result.interrupted = true;
      break;
    }
    const Batch batch = MakeBatch(encoded, indices);
    const Tensor logits = model.Forward(batch.source, batch.target_input);
    const int64_t vocab = logits.size(-1);
    const Tensor flat_logits = Reshape(logits, {-1, vocab});
    const Tensor flat_targets = Reshape(batch.target_output, {-1});
    const float loss = CrossEntropy(flat_logits, flat_targets, 0.0f, Vocabulary::kPad).item();
    loss_sum += static_cast<double>(loss) * static_cast<double>(batch.target_tokens);
    tokens += batch.target_tokens;
    const TokenCounts counts = CountCorrectTokens(Argmax(flat_logits, -1).ToInts(),
                                                  flat_targets.ToInts(), Vocabulary::kPad);
    correct += counts.correct;
  }
  result.metrics["loss"] = tokens > 0 ? loss_sum / static_cast<double>(tokens) : 0.0;
  result.metrics["token_accuracy"] =
      tokens > 0 ? 100.0 * correct / static_cast<double>(tokens) : 0.0;

  std::optional<std::vector<std::vector<int32_t>>> decoded;
  if (options.decode && !result.interrupted) {
    decoded = DecodeEncoded(model, encoded, options);
    result.interrupted = !decoded.has_value();
  }
  if (decoded) {
    for (const auto& ids : *decoded) result.predictions.push_back(data.DecodeTarget(ids));
    const std::vector<Example>& examples = data.Examples(split);
    result.metrics["exact_match"] = ExactMatchPercent(result.predictions, examples);
    for (const auto& [name, value] : data.task->Score(result.predictions, examples)) {
      result.metrics[name] = value;
    }
  }
  model.Train(was_training);
  result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return result;
}

std::vector<std::string> DecodeTexts(nn::Seq2SeqModel& model, const ExperimentData& data,
                                     const std::vector<std::string>& sources,
                                     const EvaluationOptions& options) {
  NoGradGuard no_grad;
  std::vector<EncodedExample> encoded;
  for (const std::string& source : sources) encoded.push_back({data.EncodeSource(source), {}});
  std::vector<std::string> predictions;
  const auto decoded = DecodeEncoded(model, encoded, options);
  if (!decoded) return predictions;
  for (const auto& ids : *decoded) predictions.push_back(data.DecodeTarget(ids));
  return predictions;
}

}  // namespace attnlab::experiments
