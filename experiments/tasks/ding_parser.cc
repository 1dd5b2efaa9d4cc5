#include "experiments/tasks/ding_parser.h"

#include <algorithm>
#include <unordered_map>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace attnlab::experiments {
namespace {

char Closer(char opener) {
  switch (opener) {
    case '{':
      return '}';
    case '[':
      return ']';
    case '<':
      return '>';
    case '(':
      return ')';
    default:
      return 0;
  }
}

// The index of the bracket closing the one at `open` (same kind, nested), or npos.
size_t MatchingBracket(const std::string& text, size_t open) {
  const char opener = text[open], closer = Closer(opener);
  int depth = 0;
  for (size_t i = open; i < text.size(); ++i) {
    if (text[i] == opener) ++depth;
    if (text[i] == closer && --depth == 0) return i;
  }
  return std::string::npos;
}

// "/MI/" or "/MI/;" (an abbreviation, with the punctuation that follows it).
bool IsAbbreviation(absl::string_view word) {
  while (!word.empty() && (word.back() == ',' || word.back() == ';')) word.remove_suffix(1);
  return word.size() >= 3 && word.front() == '/' && word.back() == '/';
}

int64_t CodePoints(const std::string& text) {
  return std::count_if(text.begin(), text.end(),
                       [](char c) { return (static_cast<unsigned char>(c) & 0xC0) != 0x80; });
}

}  // namespace

std::string StripDingAnnotations(const std::string& segment) {
  std::string without_brackets;
  for (size_t i = 0; i < segment.size(); ++i) {
    if (Closer(segment[i]) != 0) {
      const size_t close = MatchingBracket(segment, i);
      if (close != std::string::npos) {
        without_brackets += ' ';
        i = close;
        continue;
      }
    }
    without_brackets += segment[i];  // an unmatched bracket is text
  }
  std::string tidy;
  for (const absl::string_view word :
       absl::StrSplit(without_brackets, absl::ByAnyChar(" \t"), absl::SkipEmpty())) {
    absl::string_view kept = word;
    if (IsAbbreviation(word)) {
      kept = word.substr(word.find_last_of('/') + 1);  // keep the trailing ',' or ';'
      if (kept.empty()) continue;
    }
    const bool punctuation_only = kept.find_first_not_of(",.;:!?") == absl::string_view::npos;
    if (!tidy.empty() && !punctuation_only) tidy += ' ';
    absl::StrAppend(&tidy, std::string(kept));
  }
  return tidy;
}

absl::StatusOr<DingDictionary> ParseDing(const std::string& text, const std::string& path,
                                         int64_t max_length) {
  DingDictionary dictionary;
  std::unordered_map<std::string, size_t> example_of_source;
  int64_t line_number = 0;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    ++line_number;
    absl::ConsumeSuffix(&line, "\r");
    if (absl::StripAsciiWhitespace(line).empty() || absl::StartsWith(line, "#")) continue;
    const std::vector<absl::string_view> sides = absl::StrSplit(line, "::");
    if (sides.size() != 2) {
      return absl::InvalidArgumentError(
          absl::StrCat(path, ":", line_number,
                       ": expected one `German :: English` separator, found ", sides.size() - 1));
    }
    const std::vector<absl::string_view> german_segments = absl::StrSplit(sides[0], '|');
    const std::vector<absl::string_view> english_segments = absl::StrSplit(sides[1], '|');
    if (german_segments.size() != english_segments.size()) {
      ++dictionary.misaligned_lines;
      continue;
    }
    for (size_t segment = 0; segment < german_segments.size(); ++segment) {
      auto synonyms = [](absl::string_view raw) {
        std::vector<std::string> list;
        for (const absl::string_view synonym :
             absl::StrSplit(StripDingAnnotations(std::string(raw)), ';')) {
          const std::string trimmed(absl::StripAsciiWhitespace(synonym));
          if (!trimmed.empty() && std::find(list.begin(), list.end(), trimmed) == list.end())
            list.push_back(trimmed);
        }
        return list;
      };
      const std::vector<std::string> german = synonyms(german_segments[segment]);
      const std::vector<std::string> english = synonyms(english_segments[segment]);
      if (german.empty() || english.empty()) continue;
      for (const std::string& source : german) {
        if (CodePoints(source) > max_length || CodePoints(english.front()) > max_length) {
          ++dictionary.long_pairs;
          continue;
        }
        const auto [found, inserted] =
            example_of_source.emplace(source, dictionary.examples.size());
        if (inserted) {
          dictionary.examples.push_back(Example{source, english});
          continue;
        }
        std::vector<std::string>& references = dictionary.examples[found->second].references;
        for (const std::string& translation : english) {
          if (std::find(references.begin(), references.end(), translation) == references.end())
            references.push_back(translation);
        }
      }
    }
  }
  if (dictionary.examples.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": no German :: English pairs"));
  }
  return dictionary;
}

}  // namespace attnlab::experiments
