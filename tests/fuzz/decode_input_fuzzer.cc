// `attnlab decode`'s input path up to the model: each line of the input (split and
// stripped of a trailing '\r' as tools/cli/line_answering.cc does) becomes token ids
// through the tokenizer and vocabulary of a run (ExperimentData::EncodeSource), for each
// kind of tokenizer: characters and words (the `files` task on a fixed training file)
// and SentencePiece subwords (as de_en, trained once on a few sentences). The ids are
// turned back into text as predictions are.
//
// Every id must be one the model's embedding has, and the sequence must end in eos.
// Not covered: reading the checkpoint (checkpoint_fuzzer), and the model's forward pass
// and decoding (greedy, beam) on the ids.
#include <string>
#include <vector>

#include "absl/strings/str_split.h"
#include "experiments/config/config.h"
#include "experiments/data/subword_tokenizer.h"
#include "experiments/trainer/experiment_data.h"
#include "framework/core/error.h"
#include "tests/fuzz/files_task_config.h"
#include "tests/fuzz/fuzz_support.h"

namespace {

using namespace attnlab::experiments;
using attnlab::fuzz::FilesTaskConfig;
using attnlab::fuzz::SetUpOrDie;

constexpr char kTarget[] = "decode_input_fuzzer";

constexpr const char* kTrainingFile =
    "3 7 1 9\t9 1 7 3\n"
    "Haustür\tfront door\n"
    "Straße {f}\tstreet\n"
    "été\tsummer\n"
    "4821+937\t5758\n";

// Enough German and English for a small SentencePiece model with multi-byte pieces.
const std::vector<std::string> kSubwordSentences = {
    "die Haustür ist offen",   "the front door is open", "eine Straße in der Stadt",
    "a street in the city",    "der Aal schwimmt",       "the eel swims",
    "Grüße aus München",       "greetings from Munich",  "über die Brücke gehen",
    "to walk over the bridge", "ein schöner Sommertag",  "a beautiful summer day",
};

ExperimentData FilesData(const std::string& tokenizer) {
  const std::string path = attnlab::fuzz::WriteScratchFile("train.tsv", kTrainingFile);
  const Config config = SetUpOrDie(FilesTaskConfig(path, path, tokenizer), kTarget);
  return SetUpOrDie(LoadExperimentData(config), kTarget);
}

ExperimentData SubwordData() {
  const std::string model =
      SetUpOrDie(TrainSubwordModel(kSubwordSentences, {.vocab_size = 60}), kTarget);
  ExperimentData data;
  data.source_tokenizer = data.target_tokenizer =
      SetUpOrDie(SubwordTokenizer::FromModel(model), kTarget);
  std::vector<std::vector<std::string>> pieces;
  for (const std::string& sentence : kSubwordSentences) {
    pieces.push_back(data.source_tokenizer->Split(sentence));
  }
  data.source_vocabulary = data.target_vocabulary = Vocabulary::FromSequences(pieces);
  return data;
}

const std::vector<ExperimentData>& AllData() {
  static const std::vector<ExperimentData> all = [] {
    std::vector<ExperimentData> built;
    built.push_back(FilesData("char"));
    built.push_back(FilesData("whitespace"));
    built.push_back(SubwordData());
    return built;
  }();
  return all;
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  AllData();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  for (absl::string_view line : absl::StrSplit(attnlab::fuzz::AsText(data, size), '\n')) {
    std::string source(line);
    if (!source.empty() && source.back() == '\r') source.pop_back();
    for (const ExperimentData& run : AllData()) {
      const std::vector<int32_t> ids = run.EncodeSource(source);
      ATTNLAB_CHECK(!ids.empty() && ids.back() == Vocabulary::kEos, "no eos after \"", source,
                    "\"");
      for (int32_t id : ids) {
        ATTNLAB_CHECK(id >= 0 && id < run.source_vocabulary.size(), "id ", id,
                      " outside the vocabulary of ", run.source_vocabulary.size(), " for \"",
                      source, "\"");
      }
      // Back to text as predictions are (with the source side's vocabulary: these are
      // source ids).
      (void)run.source_tokenizer->Join(run.source_vocabulary.Decode(ids));
    }
  }
  return 0;
}
