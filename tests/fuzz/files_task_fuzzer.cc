// The `files` task's reader (experiments/tasks/file_task.cc): the input is a training
// file of source<TAB>target lines, loaded as a run loads it (examples, then vocabularies
// and token ids) with each of the task's tokenizers.
#include <string>

#include "experiments/config/config.h"
#include "experiments/trainer/experiment_data.h"
#include "tests/fuzz/files_task_config.h"
#include "tests/fuzz/fuzz_support.h"

namespace {

using attnlab::experiments::Config;

// The validation and test splits, fixed: the fuzzed file is the training split.
constexpr const char* kHeldOutSplit = "3 7 1\t1 7 3\nab\tba\n";

Config FilesConfig(const std::string& train_path, const std::string& held_out_path,
                   const std::string& tokenizer) {
  return attnlab::fuzz::SetUpOrDie(
      attnlab::fuzz::FilesTaskConfig(train_path, held_out_path, tokenizer), "files_task_fuzzer");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string train_path =
      attnlab::fuzz::WriteScratchFile("train.tsv", attnlab::fuzz::AsText(data, size));
  static const std::string held_out_path =
      attnlab::fuzz::WriteScratchFile("held_out.tsv", kHeldOutSplit);
  static const Config configs[] = {FilesConfig(train_path, held_out_path, "char"),
                                   FilesConfig(train_path, held_out_path, "whitespace")};
  for (const Config& config : configs) (void)attnlab::experiments::LoadExperimentData(config);
  return 0;
}
