// Reads the CMU Pronouncing Dictionary as the npm package cmu-pronouncing-dictionary@3.0.0
// ships it: an ES module exporting one object, one entry per line,
//
//   export const dictionary = {
//     "a": "AH0",
//     "a(2)": "EY1",
//     "aalborg": "AO1 L B AO0 R G # place, danish",
//     ...
//   }
//
// into examples: source = the headword ("aalborg"), references = its pronunciations as
// ARPAbet phonemes separated by single spaces, the headword's own first and then its
// alternates `word(2)`, `word(3)`, ... in that order. A trailing `# comment` is dropped.
// Without keep_stress the stress digits go ("AO1" -> "AO": the 39-phoneme set of the
// G2P literature), and pronunciations that become equal are kept once.
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "experiments/tasks/task.h"

namespace attnlab::experiments {

// `path` names the file in errors: a line that is neither an entry nor part of the
// module's frame, a bad phoneme or an empty pronunciation is an error "path:line: ...".
absl::StatusOr<std::vector<Example>> ParseCmudict(const std::string& text, const std::string& path,
                                                  bool keep_stress);

}  // namespace attnlab::experiments
