// One example of a task: a source text and its reference targets. Tasks make them
// (experiments/tasks/), the data pipeline encodes them and the metrics score against them.
#pragma once

#include <string>
#include <vector>

namespace attnlab::experiments {

struct Example {
  std::string source;
  // references[0] is the training target; every reference counts when scoring
  // (e.g. alternative pronunciations).
  std::vector<std::string> references;
  // "train.tsv:12" for an example read from a file (its first line), for messages;
  // empty for generated examples.
  std::string origin = {};
};

}  // namespace attnlab::experiments
