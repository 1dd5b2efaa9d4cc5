// Reads the Ding German-English dictionary (Debian's trans-de-en: usr/share/trans/de-en)
// into German -> English examples. A line is
//
//   Aalleiter {f}; Aaltreppe {f} (Wasserbau) | Aalleitern {pl} :: eel ladder (water engineering) |
//   eel ladders
//
// German :: English, each side in `|`-separated segments that correspond one to one
// (headword, inflections, phrases, example sentences), each segment a `;`-separated
// list of synonyms. Every aligned pair of segments gives examples: each German synonym
// is a source whose references are the English synonyms, the first of them being the
// training target. A German phrase seen again (on another line or segment) gets the new
// translations appended to its references, without repeats.
//
// Annotations are dropped before synonyms are split (braces may hold ';'):
//   {f} {pl} {vt} {prp; +Dat.}    grammar: gender, number, part of speech, case
//   [techn.] [Am.] [coll.]        domain, region and register labels
//   <Aalmolch> <eel smoking ...>  alternative spellings and search keys, not text
//   /AHU/ /MI/                    abbreviations (a word that starts and ends with '/')
//   (Wasserbau) (on a menu)       glosses and optional words. Often on one side only
//                                 ("Aalstrich {m} (schmaler, dunkler Rückenstreifen ...)"
//                                 :: "dorsal stripe"); kept, they would teach the model
//                                 to invent or drop whole clauses.
// then spaces are tidied (runs become one; none before , . ; : ! ?). Lines starting with
// '#' are comments. A line whose sides have different numbers of segments cannot be
// aligned and is skipped (counted). So is a pair whose German synonym or English
// training target is longer than max_length characters (UTF-8 code points).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "experiments/tasks/task.h"

namespace attnlab::experiments {

struct DingDictionary {
  std::vector<Example> examples;  // in first-seen order, sources distinct
  int64_t misaligned_lines = 0;   // lines skipped: segment counts differ
  int64_t long_pairs = 0;         // pairs skipped: longer than max_length
};

// Removes the annotations listed above from one segment and tidies its spaces.
std::string StripDingAnnotations(const std::string& segment);

// `path` names the file in errors: a non-comment line without exactly one " :: " is an
// error "path:line: ...".
absl::StatusOr<DingDictionary> ParseDing(const std::string& text, const std::string& path,
                                         int64_t max_length);

}  // namespace attnlab::experiments
