#include "experiments/trainer/experiment_data.h"

#include "absl/strings/str_cat.h"
#include "framework/core/error.h"

namespace attnlab::experiments {

const std::vector<Example>& ExperimentData::Examples(const std::string& split) const {
  if (split == "train") return splits.train;
  if (split == "valid") return splits.valid;
  ATTNLAB_CHECK(split == "test", "unknown split '", split, "'");
  return splits.test;
}

const std::vector<EncodedExample>& ExperimentData::Encoded(const std::string& split) const {
  if (split == "train") return train;
  if (split == "valid") return valid;
  ATTNLAB_CHECK(split == "test", "unknown split '", split, "'");
  return test;
}

std::vector<int32_t> ExperimentData::EncodeSource(const std::string& text) const {
  return source_vocabulary.Encode(source_tokenizer->Split(text));
}

std::vector<int32_t> ExperimentData::EncodeTarget(const std::string& text) const {
  return target_vocabulary.Encode(target_tokenizer->Split(text));
}

std::string ExperimentData::DecodeTarget(const std::vector<int32_t>& ids) const {
  return target_tokenizer->Join(target_vocabulary.Decode(ids));
}

std::optional<int64_t> LongestModelSequence(const Config& config) {
  const std::string& positional = config.model().positional;
  if (config.model().type != "transformer") return std::nullopt;
  if (positional != "sinusoidal" && positional != "learned") return std::nullopt;
  return config.model().max_len;
}

namespace {

// Every source and target of `split` fits the model's positions (the decoder reads
// bos + target, as long as the encoded target with its eos).
absl::Status CheckSequencesFit(const Config& config, const std::string& split_name,
                               const std::vector<Example>& examples,
                               const std::vector<EncodedExample>& encoded) {
  const std::optional<int64_t> longest = LongestModelSequence(config);
  if (!longest) return absl::OkStatus();
  int64_t too_long = 0;
  std::string first;
  for (size_t i = 0; i < encoded.size(); ++i) {
    for (const auto& [side, ids] :
         {std::pair{"source", &encoded[i].source}, std::pair{"target", &encoded[i].target}}) {
      const int64_t length = static_cast<int64_t>(ids->size());
      if (length <= *longest) continue;
      if (too_long++ > 0) continue;
      const std::string where =
          examples[i].origin.empty()
              ? absl::StrCat("task ", config.task().name, ", ", split_name, " example ", i + 1)
              : examples[i].origin;
      first = absl::StrCat(where, ": the ", side, " is ", length,
                           " tokens long with its bos/eos mark, more than ",
                           config.Describe("model.max_len"), " allows");
    }
  }
  if (too_long == 0) return absl::OkStatus();
  const char* length_key = split_name == "test" && config.task().test_max_length > 0
                               ? "task.test_max_length"
                               : "task.max_length";
  return absl::InvalidArgumentError(absl::StrCat(
      first,
      too_long > 1 ? absl::StrCat(" (and ", too_long - 1, " more sequences over the limit)") : "",
      "; raise model.max_len, or shorten the data (", config.Describe(length_key), ")"));
}

}  // namespace

absl::StatusOr<ExperimentData> LoadExperimentData(const Config& config,
                                                  const std::vector<std::string>* source_tokens,
                                                  const std::vector<std::string>* target_tokens) {
  ExperimentData data;
  ASSIGN_OR_RETURN(data.task, MakeTask(config));
  ASSIGN_OR_RETURN(data.splits, data.task->LoadSplits(config));
  if (data.splits.train.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("task ", config.task().name, ": the training split is empty"));
  }
  data.source_tokenizer = data.task->SourceTokenizer();
  data.target_tokenizer = data.task->TargetTokenizer();

  if (source_tokens != nullptr && target_tokens != nullptr) {
    data.source_vocabulary = Vocabulary::FromTokens(*source_tokens);
    data.target_vocabulary = Vocabulary::FromTokens(*target_tokens);
  } else {
    // Vocabularies from the training split only, in first-seen order (deterministic).
    std::vector<std::vector<std::string>> sources, targets;
    for (const Example& example : data.splits.train) {
      sources.push_back(data.source_tokenizer->Split(example.source));
      targets.push_back(data.target_tokenizer->Split(example.references.at(0)));
    }
    if (config.model().share_embeddings) {
      std::vector<std::vector<std::string>> both = sources;
      both.insert(both.end(), targets.begin(), targets.end());
      data.source_vocabulary = data.target_vocabulary = Vocabulary::FromSequences(both);
    } else {
      data.source_vocabulary = Vocabulary::FromSequences(sources);
      data.target_vocabulary = Vocabulary::FromSequences(targets);
    }
  }

  auto encode = [&](const std::vector<Example>& examples) {
    std::vector<EncodedExample> encoded;
    encoded.reserve(examples.size());
    for (const Example& example : examples) {
      encoded.push_back(
          {data.EncodeSource(example.source), data.EncodeTarget(example.references.at(0))});
    }
    return encoded;
  };
  data.train = encode(data.splits.train);
  data.valid = encode(data.splits.valid);
  data.test = encode(data.splits.test);
  RETURN_IF_ERROR(CheckSequencesFit(config, "train", data.splits.train, data.train));
  RETURN_IF_ERROR(CheckSequencesFit(config, "valid", data.splits.valid, data.valid));
  RETURN_IF_ERROR(CheckSequencesFit(config, "test", data.splits.test, data.test));
  return data;
}

}  // namespace attnlab::experiments
