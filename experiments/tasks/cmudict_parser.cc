#include "experiments/tasks/cmudict_parser.h"

#include <algorithm>
#include <cctype>
#include <optional>
#include <unordered_map>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"

namespace attnlab::experiments {
namespace {

// Reads a JavaScript string literal `"..."` starting at text[*position] (backslash escapes
// such as \" taken literally), moving *position past it. nullopt if there is none.
std::optional<std::string> ReadQuoted(const std::string& text, size_t* position) {
  if (*position >= text.size() || text[*position] != '"') return std::nullopt;
  std::string value;
  for (size_t i = *position + 1; i < text.size(); ++i) {
    if (text[i] == '\\' && i + 1 < text.size()) {
      value += text[++i];
    } else if (text[i] == '"') {
      *position = i + 1;
      return value;
    } else {
      value += text[i];
    }
  }
  return std::nullopt;
}

// ARPAbet: upper-case letters, then (with stress) one digit 0..2.
bool IsPhoneme(const std::string& phoneme) {
  size_t letters = 0;
  while (letters < phoneme.size() && std::isupper(static_cast<unsigned char>(phoneme[letters])))
    ++letters;
  if (letters == 0) return false;
  return letters == phoneme.size() ||
         (letters + 1 == phoneme.size() && phoneme[letters] >= '0' && phoneme[letters] <= '2');
}

// The module's frame around the entries: the type comment, the export, the closing brace.
bool IsFrameLine(const std::string& line) {
  return line.empty() || absl::StartsWith(line, "/*") || absl::StartsWith(line, "//") ||
         absl::StartsWith(line, "export ") || line == "}" || line == "};";
}

}  // namespace

absl::StatusOr<std::vector<Example>> ParseCmudict(const std::string& text, const std::string& path,
                                                  bool keep_stress) {
  // headword -> (alternate number, pronunciation); the headword itself is number 1.
  std::vector<std::pair<std::string, std::vector<std::pair<int, std::string>>>> entries;
  std::unordered_map<std::string, size_t> entry_of_headword;
  int64_t line_number = 0;
  for (const absl::string_view raw_line : absl::StrSplit(text, '\n')) {
    ++line_number;
    const std::string line(absl::StripAsciiWhitespace(raw_line));
    if (IsFrameLine(line)) continue;
    auto malformed = [&](const std::string& why) {
      return absl::InvalidArgumentError(absl::StrCat(path, ":", line_number, ": ", why,
                                                     " (expected `\"word\": \"PH ON EMES\",`)"));
    };
    size_t position = 0;
    const std::optional<std::string> key = ReadQuoted(line, &position);
    if (!key || key->empty()) return malformed("no quoted word");
    while (position < line.size() && line[position] == ' ') ++position;
    if (position >= line.size() || line[position] != ':') return malformed("no ':' after the word");
    ++position;
    while (position < line.size() && line[position] == ' ') ++position;
    const std::optional<std::string> value = ReadQuoted(line, &position);
    if (!value) return malformed("no quoted pronunciation");
    const std::string rest(absl::StripAsciiWhitespace(line.substr(position)));
    if (!rest.empty() && rest != ",") return malformed(absl::StrCat("unexpected '", rest, "'"));

    // "word(2)" is the second pronunciation of "word".
    std::string headword = *key;
    int number = 1;
    if (headword.size() > 3 && headword.back() == ')' && headword[headword.size() - 3] == '(' &&
        std::isdigit(static_cast<unsigned char>(headword[headword.size() - 2]))) {
      number = headword[headword.size() - 2] - '0';
      headword.resize(headword.size() - 3);
    }
    const std::string pronunciation(value->substr(0, value->find('#')));  // drop "# comment"
    std::vector<std::string> phonemes =
        absl::StrSplit(pronunciation, absl::ByAnyChar(" \t"), absl::SkipEmpty());
    if (phonemes.empty()) return malformed(absl::StrCat("empty pronunciation of '", *key, "'"));
    for (std::string& phoneme : phonemes) {
      if (!IsPhoneme(phoneme)) {
        return malformed(absl::StrCat("'", phoneme, "' in '", *key, "' is not an ARPAbet phoneme"));
      }
      if (!keep_stress && std::isdigit(static_cast<unsigned char>(phoneme.back())))
        phoneme.pop_back();
    }
    const auto [found, inserted] = entry_of_headword.emplace(headword, entries.size());
    if (inserted) entries.emplace_back(headword, std::vector<std::pair<int, std::string>>{});
    entries[found->second].second.emplace_back(number, absl::StrJoin(phonemes, " "));
  }

  std::vector<Example> examples;
  examples.reserve(entries.size());
  for (auto& [headword, pronunciations] : entries) {
    std::stable_sort(pronunciations.begin(), pronunciations.end(),
                     [](const auto& a, const auto& b) { return a.first < b.first; });
    Example example{headword, {}};
    for (auto& [number, pronunciation] : pronunciations) {
      if (std::find(example.references.begin(), example.references.end(), pronunciation) ==
          example.references.end()) {
        example.references.push_back(std::move(pronunciation));
      }
    }
    examples.push_back(std::move(example));
  }
  if (examples.empty()) return absl::InvalidArgumentError(absl::StrCat(path, ": no entries"));
  return examples;
}

}  // namespace attnlab::experiments
