// BLEU and chrF following sacreBLEU 2.x (sacrebleu/metrics/bleu.py, chrf.py, helpers.py,
// tokenizers/tokenizer_13a.py, tokenizer_re.py). Text is UTF-8; "whitespace" and
// "character" mean what they mean to Python's str (Unicode whitespace, code points), since
// sacreBLEU works on decoded str.
#include "experiments/metrics/translation_metrics.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "framework/core/error.h"

namespace attnlab::experiments {
namespace {

// One decoded UTF-8 character: its code point and its length in bytes. A byte that does
// not start a valid sequence decodes alone, to U+DC80..U+DCFF (Python's surrogateescape),
// so malformed text still counts as characters and never matches valid ones.
struct Utf8Char {
  char32_t code_point;
  size_t length;
};

Utf8Char DecodeUtf8(std::string_view text, size_t position) {
  const auto byte = [&](size_t i) { return static_cast<unsigned char>(text[i]); };
  const unsigned char lead = byte(position);
  if (lead < 0x80) return {lead, 1};
  size_t length = 0;
  char32_t code_point = 0;
  char32_t smallest = 0;  // the shortest encoding's lower bound (rejects overlong forms)
  if ((lead & 0xE0) == 0xC0) {
    length = 2, code_point = lead & 0x1F, smallest = 0x80;
  } else if ((lead & 0xF0) == 0xE0) {
    length = 3, code_point = lead & 0x0F, smallest = 0x800;
  } else if ((lead & 0xF8) == 0xF0) {
    length = 4, code_point = lead & 0x07, smallest = 0x10000;
  }
  const Utf8Char invalid{static_cast<char32_t>(0xDC00 + lead), 1};
  if (length == 0 || position + length > text.size()) return invalid;
  for (size_t i = 1; i < length; ++i) {
    if ((byte(position + i) & 0xC0) != 0x80) return invalid;
    code_point = (code_point << 6) | (byte(position + i) & 0x3F);
  }
  if (code_point < smallest || code_point > 0x10FFFF ||
      (code_point >= 0xD800 && code_point <= 0xDFFF)) {
    return invalid;
  }
  return {code_point, length};
}

// Python's str.isspace(), which str.split() and str.rstrip() use.
bool IsPythonSpace(char32_t c) {
  return (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x20) || c == 0x85 || c == 0xA0 ||
         c == 0x1680 || (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F ||
         c == 0x205F || c == 0x3000;
}

// Python's str.split() with no argument: the runs of non-whitespace.
std::vector<std::string_view> SplitOnWhitespace(std::string_view text) {
  std::vector<std::string_view> words;
  size_t start = 0;
  bool in_word = false;
  for (size_t i = 0; i < text.size();) {
    const Utf8Char c = DecodeUtf8(text, i);
    if (IsPythonSpace(c.code_point)) {
      if (in_word) words.push_back(text.substr(start, i - start));
      in_word = false;
    } else if (!in_word) {
      start = i;
      in_word = true;
    }
    i += c.length;
  }
  if (in_word) words.push_back(text.substr(start));
  return words;
}

// Python's str.rstrip() with no argument.
std::string_view RightStrip(std::string_view text) {
  size_t end = 0;  // one past the last non-whitespace character
  for (size_t i = 0; i < text.size();) {
    const Utf8Char c = DecodeUtf8(text, i);
    i += c.length;
    if (!IsPythonSpace(c.code_point)) end = i;
  }
  return text.substr(0, end);
}

// The code points of `text` with whitespace removed (chrF's whitespace=False).
std::u32string CharactersWithoutWhitespace(std::string_view text) {
  std::u32string characters;
  for (size_t i = 0; i < text.size();) {
    const Utf8Char c = DecodeUtf8(text, i);
    if (!IsPythonSpace(c.code_point)) characters.push_back(c.code_point);
    i += c.length;
  }
  return characters;
}

void ReplaceAll(std::string& text, std::string_view from, std::string_view to) {
  std::string result;
  size_t start = 0;
  for (size_t found; (found = text.find(from, start)) != std::string::npos;) {
    result.append(text, start, found - start);
    result.append(to);
    start = found + from.size();
  }
  result.append(text, start);
  text = std::move(result);
}

bool IsDigit(char c) { return c >= '0' && c <= '9'; }

// 13a's first rule pads these with spaces: the class [{-~[-` -&(-+:-@/], i.e. ASCII
// punctuation and symbols except ' , - . (and the space itself, which is harmless).
bool IsPaddedSymbol(char c) {
  return (c >= '{' && c <= '~') || (c >= '[' && c <= '`') || (c >= ' ' && c <= '&') ||
         (c >= '(' && c <= '+') || (c >= ':' && c <= '@') || c == '/';
}

// re.sub of a two-character pattern (first, second) with `replace`: non-overlapping
// matches, left to right, the scan resuming after each match. Working on UTF-8 bytes gives
// the same result as on code points: the patterns' fixed characters are ASCII, and a
// multi-byte character's bytes all fall in the "anything but a digit" classes.
template <typename First, typename Second, typename Replace>
std::string SubstitutePairs(const std::string& text, First first, Second second, Replace replace) {
  std::string result;
  result.reserve(text.size() + text.size() / 2);
  size_t i = 0;
  while (i < text.size()) {
    if (i + 1 < text.size() && first(text[i]) && second(text[i + 1])) {
      replace(text[i], text[i + 1], result);
      i += 2;
    } else {
      result.push_back(text[i++]);
    }
  }
  return result;
}

std::string JoinWords(const std::vector<std::string_view>& words) {
  std::string joined;
  for (const std::string_view word : words) {
    if (!joined.empty()) joined.push_back(' ');
    joined.append(word);
  }
  return joined;
}

// ---- BLEU ----

constexpr int kMaxNgramOrder = 4;

// Every n-gram (n = 1..4) of a tokenised line, as a view into it: tokens are joined by
// single spaces, so an n-gram is a substring, and equal substrings are equal n-grams.
using NgramCounts = std::unordered_map<std::string_view, int64_t>;

// Returns the token count.
int64_t CountWordNgrams(std::string_view tokenized, NgramCounts& counts) {
  const std::vector<std::string_view> tokens = SplitOnWhitespace(tokenized);
  const auto offset = [&](size_t i) { return tokens[i].data() - tokenized.data(); };
  for (size_t i = 0; i < tokens.size(); ++i) {
    for (size_t n = 1; n <= kMaxNgramOrder && i + n <= tokens.size(); ++n) {
      const size_t end = offset(i + n - 1) + tokens[i + n - 1].size();
      ++counts[tokenized.substr(offset(i), end - offset(i))];
    }
  }
  return static_cast<int64_t>(tokens.size());
}

int NgramOrder(std::string_view ngram) {
  return 1 + static_cast<int>(std::count(ngram.begin(), ngram.end(), ' '));
}

// sacreBLEU's _get_closest_ref_len: the reference length nearest the hypothesis length,
// the shorter one on a tie.
int64_t ClosestReferenceLength(int64_t hypothesis_length, const std::vector<int64_t>& lengths) {
  int64_t closest = lengths.front();
  for (const int64_t length : lengths) {
    const int64_t difference = std::abs(hypothesis_length - length);
    const int64_t best_difference = std::abs(hypothesis_length - closest);
    if (difference < best_difference || (difference == best_difference && length < closest)) {
      closest = length;
    }
  }
  return closest;
}

// ---- chrF ----

constexpr int kCharOrder = 6;
constexpr double kBeta = 2.0;

using CharNgramCounts = std::array<std::unordered_map<std::u32string_view, int64_t>, kCharOrder>;

CharNgramCounts CountCharNgrams(const std::u32string& characters) {
  CharNgramCounts counts;
  const std::u32string_view view(characters);
  for (size_t n = 1; n <= kCharOrder; ++n) {
    for (size_t i = 0; i + n <= view.size(); ++i) ++counts[n - 1][view.substr(i, n)];
  }
  return counts;
}

// Per order: hypothesis n-grams, reference n-grams, matches (clipped by the reference).
struct ChrfStatistics {
  std::array<int64_t, kCharOrder> hypothesis{}, reference{}, matches{};
};

ChrfStatistics MatchCharNgrams(const CharNgramCounts& hypothesis, size_t hypothesis_characters,
                               const CharNgramCounts& reference, size_t reference_characters) {
  ChrfStatistics statistics;
  for (size_t n = 1; n <= kCharOrder; ++n) {
    int64_t matches = 0;
    for (const auto& [ngram, count] : hypothesis[n - 1]) {
      const auto found = reference[n - 1].find(ngram);
      if (found != reference[n - 1].end()) matches += std::min(count, found->second);
    }
    const auto ngrams = [n](size_t characters) {
      return characters >= n ? static_cast<int64_t>(characters - n + 1) : int64_t{0};
    };
    // sacreBLEU counts no hypothesis n-grams of an order the reference is too short for.
    statistics.hypothesis[n - 1] = reference_characters >= n ? ngrams(hypothesis_characters) : 0;
    statistics.reference[n - 1] = ngrams(reference_characters);
    statistics.matches[n - 1] = matches;
  }
  return statistics;
}

// sacreBLEU's _compute_f_score with eps_smoothing=False: precision and recall averaged
// over the orders where both hypothesis and reference have n-grams, then F-beta, x100.
double ChrfScore(const ChrfStatistics& statistics) {
  const double factor = kBeta * kBeta;
  double average_precision = 0.0, average_recall = 0.0;
  int effective_order = 0;
  for (int i = 0; i < kCharOrder; ++i) {
    if (statistics.hypothesis[i] > 0 && statistics.reference[i] > 0) {
      average_precision += static_cast<double>(statistics.matches[i]) / statistics.hypothesis[i];
      average_recall += static_cast<double>(statistics.matches[i]) / statistics.reference[i];
      ++effective_order;
    }
  }
  if (effective_order == 0) return 0.0;
  average_precision /= effective_order;
  average_recall /= effective_order;
  if (average_precision + average_recall == 0.0) return 0.0;
  double score = (1 + factor) * average_precision * average_recall;
  score /= factor * average_precision + average_recall;
  return 100 * score;
}

}  // namespace

std::string Tokenize13a(const std::string& line) {
  std::string text = line;
  ReplaceAll(text, "<skipped>", "");
  ReplaceAll(text, "-\n", "");
  ReplaceAll(text, "\n", " ");
  ReplaceAll(text, "&quot;", "\"");
  ReplaceAll(text, "&amp;", "&");
  ReplaceAll(text, "&lt;", "<");
  ReplaceAll(text, "&gt;", ">");

  // Symbols become tokens of their own.
  std::string padded = " ";
  for (const char c : text) {
    if (IsPaddedSymbol(c)) {
      padded.push_back(' ');
      padded.push_back(c);
      padded.push_back(' ');
    } else {
      padded.push_back(c);
    }
  }
  padded.push_back(' ');

  const auto not_digit = [](char c) { return !IsDigit(c); };
  const auto period_or_comma = [](char c) { return c == '.' || c == ','; };
  // A period or comma splits off unless it sits between digits ("3.14", "1,000")...
  padded =
      SubstitutePairs(padded, not_digit, period_or_comma, [](char a, char b, std::string& out) {
        out.push_back(a);
        out.push_back(' ');
        out.push_back(b);
        out.push_back(' ');
      });
  padded =
      SubstitutePairs(padded, period_or_comma, not_digit, [](char a, char b, std::string& out) {
        out.push_back(' ');
        out.push_back(a);
        out.push_back(' ');
        out.push_back(b);
      });
  // ...and a dash splits off after a digit ("1-2" -> "1 - 2", but "a-b" stays).
  padded = SubstitutePairs(
      padded, IsDigit, [](char c) { return c == '-'; },
      [](char a, char b, std::string& out) {
        out.push_back(a);
        out.push_back(' ');
        out.push_back(b);
        out.push_back(' ');
      });
  return JoinWords(SplitOnWhitespace(padded));
}

BleuScore CorpusBleu(const std::vector<std::string>& hypotheses,
                     const std::vector<std::vector<std::string>>& references) {
  ATTNLAB_CHECK(hypotheses.size() == references.size(), hypotheses.size(),
                " hypotheses for the references of ", references.size(), " segments");
  // Corpus statistics: summed over segments before any ratio is taken.
  std::array<int64_t, kMaxNgramOrder> correct{}, total{};
  BleuScore result;
  result.precisions.fill(0.0);
  for (size_t segment = 0; segment < hypotheses.size(); ++segment) {
    ATTNLAB_CHECK(!references[segment].empty(), "segment ", segment, " has no reference");
    // Reference n-gram counts: per n-gram, the largest count in any one reference.
    std::vector<std::string> tokenized_references;
    tokenized_references.reserve(references[segment].size());
    std::vector<int64_t> reference_lengths;
    NgramCounts reference_counts;
    for (const std::string& reference : references[segment]) {
      tokenized_references.push_back(Tokenize13a(std::string(RightStrip(reference))));
      NgramCounts counts;
      reference_lengths.push_back(CountWordNgrams(tokenized_references.back(), counts));
      for (const auto& [ngram, count] : counts) {
        int64_t& merged = reference_counts[ngram];
        merged = std::max(merged, count);
      }
    }
    const std::string tokenized = Tokenize13a(std::string(RightStrip(hypotheses[segment])));
    NgramCounts hypothesis_counts;
    const int64_t hypothesis_length = CountWordNgrams(tokenized, hypothesis_counts);
    result.hypothesis_length += hypothesis_length;
    result.reference_length += ClosestReferenceLength(hypothesis_length, reference_lengths);
    for (const auto& [ngram, count] : hypothesis_counts) {
      const int order = NgramOrder(ngram);
      total[order - 1] += count;
      const auto found = reference_counts.find(ngram);
      if (found != reference_counts.end()) correct[order - 1] += std::min(count, found->second);
    }
  }

  // sacreBLEU's compute_bleu with smooth_method='exp', effective_order=False.
  const double hypothesis_length = static_cast<double>(result.hypothesis_length);
  const double reference_length = static_cast<double>(result.reference_length);
  result.brevity_penalty = 1.0;
  if (result.hypothesis_length < result.reference_length) {
    result.brevity_penalty =
        result.hypothesis_length > 0 ? std::exp(1 - reference_length / hypothesis_length) : 0.0;
  }
  if (std::all_of(correct.begin(), correct.end(), [](int64_t c) { return c == 0; })) {
    return result;  // score 0, precisions 0
  }
  double smoothing = 1.0;
  for (int n = 0; n < kMaxNgramOrder; ++n) {
    // No n-grams of this order anywhere (every hypothesis shorter than n): the precision
    // stays 0 and so does the score.
    if (total[n] == 0) break;
    if (correct[n] == 0) {
      // NIST "exp" smoothing: the k-th order without a match gets 1 / (2^k * total).
      smoothing *= 2;
      result.precisions[n] = 100.0 / (smoothing * total[n]);
    } else {
      result.precisions[n] = 100.0 * correct[n] / total[n];
    }
  }
  double log_sum = 0.0;
  for (const double precision : result.precisions) {
    log_sum += precision == 0.0 ? -9999999999.0 : std::log(precision);  // sacreBLEU's my_log
  }
  result.score = result.brevity_penalty * std::exp(log_sum / kMaxNgramOrder);
  return result;
}

double CorpusChrf(const std::vector<std::string>& hypotheses,
                  const std::vector<std::vector<std::string>>& references) {
  ATTNLAB_CHECK(hypotheses.size() == references.size(), hypotheses.size(),
                " hypotheses for the references of ", references.size(), " segments");
  ChrfStatistics corpus;
  for (size_t segment = 0; segment < hypotheses.size(); ++segment) {
    ATTNLAB_CHECK(!references[segment].empty(), "segment ", segment, " has no reference");
    const std::u32string hypothesis = CharactersWithoutWhitespace(hypotheses[segment]);
    const CharNgramCounts hypothesis_counts = CountCharNgrams(hypothesis);
    // The reference with the best sentence-level chrF; the first one on a tie.
    ChrfStatistics best;
    double best_score = -1.0;
    for (const std::string& reference_text : references[segment]) {
      const std::u32string reference = CharactersWithoutWhitespace(reference_text);
      const ChrfStatistics statistics = MatchCharNgrams(
          hypothesis_counts, hypothesis.size(), CountCharNgrams(reference), reference.size());
      const double score = ChrfScore(statistics);
      if (score > best_score) {
        best_score = score;
        best = statistics;
      }
    }
    for (int i = 0; i < kCharOrder; ++i) {
      corpus.hypothesis[i] += best.hypothesis[i];
      corpus.reference[i] += best.reference[i];
      corpus.matches[i] += best.matches[i];
    }
  }
  return ChrfScore(corpus);
}

}  // namespace attnlab::experiments
