// The config of a `files` task run (experiments/tasks/file_task.cc) on files a fuzz target
// wrote: `train_path` is the training split, `held_out_path` the validation and test
// splits, `tokenizer` one of the task's tokenizers ("char", "whitespace").
#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "experiments/config/config.h"

namespace attnlab::fuzz {

inline absl::StatusOr<experiments::Config> FilesTaskConfig(const std::string& train_path,
                                                           const std::string& held_out_path,
                                                           const std::string& tokenizer) {
  return experiments::Config::Parse(
      absl::StrCat("[task]\nname = \"files\"\ntokenizer = \"", tokenizer, "\"\n"), "files.toml",
      {"task.train_path=" + train_path, "task.valid_path=" + held_out_path,
       "task.test_path=" + held_out_path});
}

}  // namespace attnlab::fuzz
