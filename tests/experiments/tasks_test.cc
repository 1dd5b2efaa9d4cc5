// Tasks: every generated task (copy, reverse, sort, addition, dates) on fixed seeds —
// the first examples for seed 1234 (checked by hand against each task's rule, and kept
// as a golden record of the generator), every example obeying its rule, splits of the
// configured sizes and disjoint, the same seed giving the same splits and another seed
// others, settings that admit too few distinct examples failing with a clear message —
// plus addition's longer test numbers, 1000 dates read back from their sources, and the
// `files` task on fixture files (multiple references, blank lines, CRLF, tokenizers, and
// each error).
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "experiments/config/config.h"
#include "experiments/tasks/task.h"
#include "gtest/gtest.h"
#include "tests/support/temp_dir.h"

namespace attnlab::experiments {
namespace {

namespace fs = std::filesystem;

// A config with these overrides applied to the defaults.
Config MakeConfig(const std::vector<std::string>& overrides) {
  absl::StatusOr<Config> config = Config::Parse("", "tasks_test", overrides);
  EXPECT_TRUE(config.ok()) << config.status();
  return config.ok() ? *config : Config();
}

// Small splits, so the whole suite stays fast.
std::vector<std::string> SmallSplits(const std::string& task_name) {
  return {"task.name=" + task_name, "task.train_size=300", "task.valid_size=40",
          "task.test_size=60"};
}

absl::StatusOr<Splits> LoadSplits(const std::vector<std::string>& overrides) {
  const Config config = MakeConfig(overrides);
  absl::StatusOr<std::unique_ptr<Task>> task = MakeTask(config);
  if (!task.ok()) return task.status();
  return (*task)->LoadSplits(config);
}

Splits LoadOrFail(const std::vector<std::string>& overrides) {
  absl::StatusOr<Splits> splits = LoadSplits(overrides);
  EXPECT_TRUE(splits.ok()) << splits.status();
  return splits.ok() ? *splits : Splits();
}

std::vector<int64_t> Numbers(const std::string& text) {
  std::vector<int64_t> numbers;
  for (const absl::string_view token : absl::StrSplit(text, ' ', absl::SkipEmpty())) {
    int64_t number = 0;
    EXPECT_TRUE(absl::SimpleAtoi(token, &number)) << "'" << text << "' has a non-number";
    numbers.push_back(number);
  }
  return numbers;
}

bool AllDigits(const std::string& text) {
  return !text.empty() &&
         std::all_of(text.begin(), text.end(), [](char c) { return std::isdigit(c); });
}

// ---- Rules of the generated tasks -----------------------------------------------------

// Checks `example` against the rule of task `name` under the default lengths (1..10) and
// vocabulary (10 symbols).
::testing::AssertionResult ObeysRule(const std::string& name, const Example& example) {
  if (example.references.size() != 1) {
    return ::testing::AssertionFailure() << "expected one reference for '" << example.source << "'";
  }
  const std::string& target = example.references[0];
  if (name == "copy" || name == "reverse" || name == "sort") {
    const std::vector<int64_t> symbols = Numbers(example.source);
    if (symbols.empty() || symbols.size() > 10) {
      return ::testing::AssertionFailure() << "length " << symbols.size() << " outside 1..10";
    }
    for (const int64_t symbol : symbols) {
      if (symbol < 1 || symbol > 10) return ::testing::AssertionFailure() << "symbol " << symbol;
    }
    std::vector<int64_t> expected = symbols;
    if (name == "reverse") std::reverse(expected.begin(), expected.end());
    if (name == "sort") std::sort(expected.begin(), expected.end());
    if (Numbers(target) != expected) {
      return ::testing::AssertionFailure()
             << name << " of '" << example.source << "' is not '" << target << "'";
    }
    return ::testing::AssertionSuccess();
  }
  if (name == "addition") {
    const std::vector<std::string> operands = absl::StrSplit(example.source, '+');
    if (operands.size() != 2 || !AllDigits(operands[0]) || !AllDigits(operands[1])) {
      return ::testing::AssertionFailure() << "'" << example.source << "' is not a+b";
    }
    for (const std::string& operand : operands) {
      if (operand.size() > 10 || (operand.size() > 1 && operand[0] == '0')) {
        return ::testing::AssertionFailure() << "operand '" << operand << "'";
      }
    }
    // At most 10 digits each, so the sum fits in 64 bits.
    const uint64_t sum = std::stoull(operands[0]) + std::stoull(operands[1]);
    if (target != std::to_string(sum)) {
      return ::testing::AssertionFailure() << example.source << " = " << sum << ", not " << target;
    }
    return ::testing::AssertionSuccess();
  }
  if (name == "dates") {
    // Fully checked by DatesTest below; here only the target's form.
    if (target.size() != 10 || target[4] != '-' || target[7] != '-') {
      return ::testing::AssertionFailure() << "'" << target << "' is not YYYY-MM-DD";
    }
    return ::testing::AssertionSuccess();
  }
  return ::testing::AssertionFailure() << "no rule for task " << name;
}

// ---- Every generated task -------------------------------------------------------------

class GeneratedTaskTest : public ::testing::TestWithParam<std::string> {};

TEST_P(GeneratedTaskTest, IsRegistered) {
  const std::vector<std::string> names = TaskNames();
  EXPECT_NE(std::find(names.begin(), names.end(), GetParam()), names.end());
}

TEST_P(GeneratedTaskTest, SplitsHaveTheConfiguredSizes) {
  const Splits splits = LoadOrFail(SmallSplits(GetParam()));
  EXPECT_EQ(splits.train.size(), 300u);
  EXPECT_EQ(splits.valid.size(), 40u);
  EXPECT_EQ(splits.test.size(), 60u);
}

TEST_P(GeneratedTaskTest, SourcesAreDistinctWithinAndAcrossSplits) {
  const Splits splits = LoadOrFail(SmallSplits(GetParam()));
  std::set<std::string> sources;
  for (const std::vector<Example>* split : {&splits.train, &splits.valid, &splits.test}) {
    for (const Example& example : *split) {
      EXPECT_TRUE(sources.insert(example.source).second) << "repeated source " << example.source;
    }
  }
}

TEST_P(GeneratedTaskTest, EveryExampleObeysTheRule) {
  const Splits splits = LoadOrFail(SmallSplits(GetParam()));
  for (const std::vector<Example>* split : {&splits.train, &splits.valid, &splits.test}) {
    for (const Example& example : *split) EXPECT_TRUE(ObeysRule(GetParam(), example));
  }
}

TEST_P(GeneratedTaskTest, SameSeedGivesTheSameSplits) {
  const Splits first = LoadOrFail(SmallSplits(GetParam()));
  const Splits second = LoadOrFail(SmallSplits(GetParam()));
  auto same = [](const std::vector<Example>& a, const std::vector<Example>& b) {
    return std::equal(a.begin(), a.end(), b.begin(), b.end(),
                      [](const Example& x, const Example& y) {
                        return x.source == y.source && x.references == y.references;
                      });
  };
  EXPECT_TRUE(same(first.train, second.train));
  EXPECT_TRUE(same(first.valid, second.valid));
  EXPECT_TRUE(same(first.test, second.test));
}

TEST_P(GeneratedTaskTest, AnotherSeedGivesOtherSplits) {
  std::vector<std::string> overrides = SmallSplits(GetParam());
  const Splits first = LoadOrFail(overrides);
  overrides.push_back("task.seed=99");
  const Splits second = LoadOrFail(overrides);
  std::set<std::string> first_sources;
  for (const Example& example : first.train) first_sources.insert(example.source);
  int64_t shared = 0;
  for (const Example& example : second.train) shared += first_sources.count(example.source);
  // Some short sequences are bound to recur, but most of the split must differ.
  EXPECT_LT(shared, 150) << shared << " of 300 training sources shared between seeds";
}

TEST_P(GeneratedTaskTest, MinLengthAboveMaxLengthIsAnError) {
  std::vector<std::string> overrides = SmallSplits(GetParam());
  overrides.push_back("task.min_length=5");
  overrides.push_back("task.max_length=4");
  const absl::StatusOr<Splits> splits = LoadSplits(overrides);
  ASSERT_FALSE(splits.ok());
  EXPECT_NE(splits.status().message().find("task.min_length"), std::string::npos)
      << splits.status();
}

INSTANTIATE_TEST_SUITE_P(Tasks, GeneratedTaskTest,
                         ::testing::Values("copy", "reverse", "sort", "addition", "dates"));

// ---- Golden first examples (seed 1234, default settings) ------------------------------

struct FirstExample {
  std::string task, source, target;
};

TEST(TaskGoldenTest, FirstExamplesForSeed1234) {
  // Checked by hand: each target is the source copied / reversed / sorted / summed
  // (62376423 + 127599781 = 189976204), and 25 January 2023 was a Wednesday.
  const std::vector<FirstExample> expected = {
      {"copy", "6 3 4 8 7 5 3 4", "6 3 4 8 7 5 3 4"},
      {"reverse", "6 3 4 8 7 5 3 4", "4 3 5 7 8 4 3 6"},
      {"sort", "6 3 4 8 7 5 3 4", "3 3 4 4 5 6 7 8"},
      {"addition", "62376423+127599781", "189976204"},
      {"dates", "Wednesday, January 25, 2023", "2023-01-25"},
  };
  for (const FirstExample& example : expected) {
    const Splits splits = LoadOrFail(SmallSplits(example.task));
    ASSERT_FALSE(splits.train.empty());
    EXPECT_EQ(splits.train[0].source, example.source) << example.task;
    EXPECT_EQ(splits.train[0].references, std::vector<std::string>{example.target}) << example.task;
  }
}

// ---- Too few distinct examples --------------------------------------------------------

TEST(TaskErrorTest, TooFewDistinctSequencesIsAClearError) {
  // Two symbols and lengths 1..2 admit 2 + 4 = 6 distinct sequences.
  for (const std::string task : {"copy", "reverse", "sort"}) {
    const absl::StatusOr<Splits> splits =
        LoadSplits({"task.name=" + task, "task.vocab_size=2", "task.max_length=2",
                    "task.train_size=10", "task.valid_size=1", "task.test_size=1"});
    ASSERT_FALSE(splits.ok()) << task;
    const std::string message(splits.status().message());
    EXPECT_NE(message.find("task " + task), std::string::npos) << message;
    EXPECT_NE(message.find("could not draw 10 distinct training examples"), std::string::npos)
        << message;
  }
  // One-digit operands admit 10 x 10 = 100 sources: after 50 + 10, the test split cannot
  // find 60 more.
  const absl::StatusOr<Splits> sums =
      LoadSplits({"task.name=addition", "task.max_length=1", "task.train_size=50",
                  "task.valid_size=10", "task.test_size=60"});
  ASSERT_FALSE(sums.ok());
  EXPECT_NE(sums.status().message().find("distinct test examples"), std::string::npos)
      << sums.status();
}

TEST(TaskErrorTest, UnknownTaskListsTheKnownOnes) {
  const absl::StatusOr<std::unique_ptr<Task>> task = MakeTask(MakeConfig({"task.name=cpoy"}));
  ASSERT_FALSE(task.ok());
  const std::string message(task.status().message());
  EXPECT_NE(message.find("unknown task 'cpoy'"), std::string::npos) << message;
  EXPECT_NE(message.find("copy"), std::string::npos) << message;
  EXPECT_NE(message.find("dates"), std::string::npos) << message;
  EXPECT_NE(message.find("files"), std::string::npos) << message;
}

// ---- addition: longer test numbers ----------------------------------------------------

TEST(AdditionTest, TestNumbersCanBeLongerThanTrainingNumbers) {
  const Splits splits = LoadOrFail(
      {"task.name=addition", "task.min_length=1", "task.max_length=3", "task.test_min_length=5",
       "task.test_max_length=6", "task.train_size=200", "task.valid_size=20", "task.test_size=50"});
  auto operand_lengths = [](const Example& example) {
    const std::vector<std::string> operands = absl::StrSplit(example.source, '+');
    return std::make_pair(operands[0].size(), operands[1].size());
  };
  for (const std::vector<Example>* split : {&splits.train, &splits.valid}) {
    for (const Example& example : *split) {
      const auto [a, b] = operand_lengths(example);
      EXPECT_TRUE(a >= 1 && a <= 3 && b >= 1 && b <= 3) << example.source;
      EXPECT_TRUE(ObeysRule("addition", example));
    }
  }
  for (const Example& example : splits.test) {
    const auto [a, b] = operand_lengths(example);
    EXPECT_TRUE(a >= 5 && a <= 6 && b >= 5 && b <= 6) << example.source;
    EXPECT_TRUE(ObeysRule("addition", example));
  }
}

// ---- dates: read every source back ----------------------------------------------------

const char* const kMonths[] = {"january",   "february", "march",    "april",
                               "may",       "june",     "july",     "august",
                               "september", "october",  "november", "december"};
const char* const kWeekdays[] = {"monday", "tuesday",  "wednesday", "thursday",
                                 "friday", "saturday", "sunday"};

// 1-based index of `word` among `names` by full name or three-letter abbreviation, or 0.
template <size_t N>
int NameIndex(const std::string& word, const char* const (&names)[N]) {
  for (size_t i = 0; i < N; ++i) {
    const std::string name = names[i];
    if (word == name || word == name.substr(0, 3)) return static_cast<int>(i) + 1;
  }
  return 0;
}

std::string OrdinalSuffix(int day) {
  if (day / 10 == 1) return "th";
  return day % 10 == 1 ? "st" : day % 10 == 2 ? "nd" : day % 10 == 3 ? "rd" : "th";
}

struct ExpectedDate {
  int year, month, day;
  int iso_weekday;  // 1 = Monday .. 7 = Sunday
};

// Reads the date written in `source` by this test's own rules (US month/day with
// slashes, day.month with dots, names otherwise) and compares it with `expected`.
::testing::AssertionResult SourceNamesDate(const std::string& source,
                                           const ExpectedDate& expected) {
  auto fail = [&]() { return ::testing::AssertionFailure() << "'" << source << "': "; };
  const std::string text = absl::AsciiStrToLower(source);
  const std::vector<std::string> tokens =
      absl::StrSplit(text, absl::ByAnyChar(" ,/.-"), absl::SkipEmpty());
  const bool slashes = text.find('/') != std::string::npos;
  const bool dots = text.find('.') != std::string::npos;
  if (slashes || dots) {
    if (tokens.size() != 3 || !AllDigits(tokens[0]) || !AllDigits(tokens[1]) ||
        !AllDigits(tokens[2])) {
      return fail() << "not three numbers";
    }
    const int month = std::stoi(tokens[slashes ? 0 : 1]), day = std::stoi(tokens[slashes ? 1 : 0]);
    int year = std::stoi(tokens[2]);
    if (tokens[2].size() == 2) year += year < 50 ? 2000 : 1900;
    if (tokens[0].size() != 2 || tokens[1].size() != 2 ||
        (tokens[2].size() != 2 && tokens[2].size() != 4)) {
      return fail() << "numeric fields are not zero-padded";
    }
    if (year != expected.year || month != expected.month || day != expected.day) {
      return fail() << "names " << year << "/" << month << "/" << day;
    }
    return ::testing::AssertionSuccess();
  }
  int month = 0, weekday = 0, year = 0, day = 0;
  for (const std::string& token : tokens) {
    if (token == "of" || token == "the") continue;
    if (const int index = NameIndex(token, kMonths); index > 0) {
      if (month != 0) return fail() << "two months";
      month = index;
      continue;
    }
    if (const int index = NameIndex(token, kWeekdays); index > 0) {
      if (weekday != 0) return fail() << "two weekdays";
      weekday = index;
      continue;
    }
    size_t digits = 0;
    while (digits < token.size() && std::isdigit(static_cast<unsigned char>(token[digits])))
      ++digits;
    if (digits == 0) return fail() << "unexpected word '" << token << "'";
    const int number = std::stoi(token.substr(0, digits));
    const std::string suffix = token.substr(digits);
    if (digits == 4 && suffix.empty()) {
      if (year != 0) return fail() << "two years";
      year = number;
      continue;
    }
    if (digits > 2 || day != 0) return fail() << "unexpected number '" << token << "'";
    if (!suffix.empty() && suffix != OrdinalSuffix(number))
      return fail() << "wrong ordinal " << token;
    day = number;
  }
  if (year != expected.year || month != expected.month || day != expected.day) {
    return fail() << "names " << year << "-" << month << "-" << day;
  }
  if (weekday != 0 && weekday != expected.iso_weekday) {
    return fail() << "weekday " << kWeekdays[weekday - 1] << ", but it was a "
                  << kWeekdays[expected.iso_weekday - 1];
  }
  return ::testing::AssertionSuccess();
}

// Replaces runs of letters by 'a' and runs of digits by '9': "Wed, Mar 3 2021" -> "a, a 9 9".
std::string Layout(const std::string& source) {
  std::string layout;
  for (const char c : source) {
    const char kind = std::isalpha(static_cast<unsigned char>(c))   ? 'a'
                      : std::isdigit(static_cast<unsigned char>(c)) ? '9'
                                                                    : c;
    if ((kind == 'a' || kind == '9') && !layout.empty() && layout.back() == kind) continue;
    layout += kind;
  }
  return layout;
}

TEST(DatesTest, ThousandSourcesNameTheirTargetsDate) {
  const Splits splits = LoadOrFail(
      {"task.name=dates", "task.train_size=1000", "task.valid_size=1", "task.test_size=1"});
  ASSERT_EQ(splits.train.size(), 1000u);
  std::set<std::string> layouts;
  int lower = 0, upper = 0, with_weekday = 0;
  for (const Example& example : splits.train) {
    const std::string& iso = example.references[0];
    ASSERT_EQ(iso.size(), 10u) << iso;
    const int year = std::stoi(iso.substr(0, 4)), month = std::stoi(iso.substr(5, 2));
    const int day = std::stoi(iso.substr(8, 2));
    // The weekday from the standard library's calendar, independent of the task's.
    const std::chrono::year_month_day date{std::chrono::year(year), std::chrono::month(month),
                                           std::chrono::day(day)};
    ASSERT_TRUE(date.ok()) << iso << " is not a date";
    EXPECT_TRUE(year >= 1950 && year <= 2049) << iso;
    const ExpectedDate expected{
        year, month, day,
        static_cast<int>(std::chrono::weekday(std::chrono::sys_days(date)).iso_encoding())};
    EXPECT_TRUE(SourceNamesDate(example.source, expected));
    layouts.insert(Layout(absl::AsciiStrToLower(example.source)));
    const bool has_letters = std::any_of(example.source.begin(), example.source.end(), ::isalpha);
    if (has_letters && example.source == absl::AsciiStrToLower(example.source)) ++lower;
    if (has_letters && example.source == absl::AsciiStrToUpper(example.source)) ++upper;
    for (const char* weekday : kWeekdays) {
      if (absl::AsciiStrToLower(example.source).find(std::string(weekday).substr(0, 3)) !=
          std::string::npos) {
        ++with_weekday;
        break;
      }
    }
  }
  EXPECT_GE(layouts.size(), 10u) << "too few distinct formats";
  EXPECT_GT(lower, 50);
  EXPECT_GT(upper, 50);
  EXPECT_GT(with_weekday, 50);
}

TEST(DatesTest, TwoDigitYearsMapInto1950To2049) {
  // 50..99 are 19xx and 00..49 are 20xx, so a two-digit year is never ambiguous.
  const Splits splits = LoadOrFail({"task.name=dates", "task.train_size=5000", "task.valid_size=1",
                                    "task.test_size=1", "task.seed=7"});
  int two_digit_years = 0;
  for (const Example& example : splits.train) {
    if (example.source.size() == 8 && example.source[2] == '/') {
      ++two_digit_years;
      const int written = std::stoi(example.source.substr(6, 2));
      const int year = std::stoi(example.references[0].substr(0, 4));
      EXPECT_EQ(year % 100, written) << example.source;
      EXPECT_EQ(year < 2000, written >= 50) << example.source;
    }
  }
  EXPECT_GT(two_digit_years, 100);
}

// ---- files ----------------------------------------------------------------------------

class FileTaskTest : public attnlab::testing::TempDirTest {
 protected:
  std::string Write(const std::string& name, const std::string& contents) {
    const fs::path path = directory_ / name;
    std::ofstream(path, std::ios::binary) << contents;
    return path.string();
  }

  // Overrides for a `files` task over these three paths.
  static std::vector<std::string> Files(const std::string& train, const std::string& valid,
                                        const std::string& test,
                                        const std::string& tokenizer = "char") {
    return {"task.name=files", "task.train_path=" + train, "task.valid_path=" + valid,
            "task.test_path=" + test, "task.tokenizer=" + tokenizer};
  }
};

TEST_F(FileTaskTest, ReadsLinesAndGroupsRepeatedSourcesAsReferences) {
  const std::string train = Write("train.tsv",
                                  "read\tR IY D\n"
                                  "live\tL IH V\n"
                                  "\n"
                                  "read\tR EH D\n"
                                  "live\tL AY V\r\n"
                                  "read\tR IY D\n"  // a repeated pair adds nothing
                                  "   \n"
                                  "cat\tK AE T");  // no final newline
  const std::string valid = Write("valid.tsv", "dog\tD AO G\n");
  const std::string test = Write("test.tsv", "a b\tc\td\n");  // splits at the first tab
  const Splits splits = LoadOrFail(Files(train, valid, test));
  ASSERT_EQ(splits.train.size(), 3u);
  EXPECT_EQ(splits.train[0].source, "read");
  EXPECT_EQ(splits.train[0].references, (std::vector<std::string>{"R IY D", "R EH D"}));
  EXPECT_EQ(splits.train[1].source, "live");
  EXPECT_EQ(splits.train[1].references, (std::vector<std::string>{"L IH V", "L AY V"}));
  EXPECT_EQ(splits.train[2].source, "cat");
  EXPECT_EQ(splits.train[2].references, (std::vector<std::string>{"K AE T"}));
  ASSERT_EQ(splits.valid.size(), 1u);
  EXPECT_EQ(splits.valid[0].references[0], "D AO G");
  ASSERT_EQ(splits.test.size(), 1u);
  EXPECT_EQ(splits.test[0].source, "a b");
  EXPECT_EQ(splits.test[0].references[0], "c\td");
}

TEST_F(FileTaskTest, TokenizerComesFromTheConfig) {
  const std::string path = Write("all.tsv", "ab cd\tx y\n");
  for (const std::string tokenizer : {"char", "whitespace"}) {
    const Config config = MakeConfig(Files(path, path, path, tokenizer));
    absl::StatusOr<std::unique_ptr<Task>> task = MakeTask(config);
    ASSERT_TRUE(task.ok()) << task.status();
    const std::vector<std::string> source_tokens = (*task)->SourceTokenizer()->Split("ab cd");
    const std::vector<std::string> target_tokens = (*task)->TargetTokenizer()->Split("x y");
    if (tokenizer == "char") {
      EXPECT_EQ(source_tokens, (std::vector<std::string>{"a", "b", " ", "c", "d"}));
      EXPECT_EQ(target_tokens.size(), 3u);
    } else {
      EXPECT_EQ(source_tokens, (std::vector<std::string>{"ab", "cd"}));
      EXPECT_EQ(target_tokens, (std::vector<std::string>{"x", "y"}));
    }
  }
}

TEST_F(FileTaskTest, RelativePathsAreResolvedAgainstTheCurrentDirectory) {
  Write("relative.tsv", "a\tb\n");
  const fs::path previous = fs::current_path();
  fs::current_path(directory_);
  const absl::StatusOr<Splits> splits =
      LoadSplits(Files("relative.tsv", "relative.tsv", "./relative.tsv"));
  fs::current_path(previous);
  ASSERT_TRUE(splits.ok()) << splits.status();
  EXPECT_EQ(splits->test[0].source, "a");
}

TEST_F(FileTaskTest, MissingFileIsAnErrorNamingIt) {
  const std::string good = Write("good.tsv", "a\tb\n");
  const std::string missing = (directory_ / "missing.tsv").string();
  const absl::StatusOr<Splits> splits = LoadSplits(Files(good, missing, good));
  ASSERT_FALSE(splits.ok());
  EXPECT_EQ(splits.status().code(), absl::StatusCode::kNotFound);
  const std::string message(splits.status().message());
  EXPECT_NE(message.find(missing), std::string::npos) << message;
  EXPECT_NE(message.find("task.valid_path"), std::string::npos) << message;
}

TEST_F(FileTaskTest, LineWithoutTabIsAnErrorNamingFileAndLine) {
  const std::string good = Write("good.tsv", "a\tb\n");
  const std::string bad = Write("bad.tsv", "a\tb\n\nno tab here\nc\td\n");
  const absl::StatusOr<Splits> splits = LoadSplits(Files(good, good, bad));
  ASSERT_FALSE(splits.ok());
  const std::string message(splits.status().message());
  EXPECT_NE(message.find(bad + ":3:"), std::string::npos) << message;
  EXPECT_NE(message.find("no tab"), std::string::npos) << message;
}

TEST_F(FileTaskTest, EmptyFileIsAnError) {
  const std::string good = Write("good.tsv", "a\tb\n");
  for (const std::string contents : {"", "\n\n  \n"}) {
    const std::string empty = Write("empty.tsv", contents);
    const absl::StatusOr<Splits> splits = LoadSplits(Files(empty, good, good));
    ASSERT_FALSE(splits.ok());
    const std::string message(splits.status().message());
    EXPECT_NE(message.find(empty), std::string::npos) << message;
    EXPECT_NE(message.find("no examples"), std::string::npos) << message;
  }
}

TEST_F(FileTaskTest, UnsetPathIsAnErrorNamingTheKey) {
  const std::string good = Write("good.tsv", "a\tb\n");
  const absl::StatusOr<Splits> splits = LoadSplits(Files(good, good, ""));
  ASSERT_FALSE(splits.ok());
  EXPECT_NE(splits.status().message().find("task.test_path is empty"), std::string::npos)
      << splits.status();
}

TEST_F(FileTaskTest, InvalidUtf8IsAnErrorNamingFileAndLine) {
  const std::string good = Write("good.tsv", "a\tb\n");
  // Line 2 holds a Latin-1 'é' (0xE9), as a file saved in the wrong encoding would.
  const std::string latin1 = Write("latin1.tsv", "a\tb\ncaf\xe9\tcoffee\n");
  const absl::StatusOr<Splits> splits = LoadSplits(Files(latin1, good, good));
  ASSERT_FALSE(splits.ok());
  const std::string message(splits.status().message());
  EXPECT_NE(message.find(latin1 + ":2: invalid UTF-8 (byte 4 of the line, 0xe9)"),
            std::string::npos)
      << message;
  // Valid multi-byte UTF-8 is fine.
  EXPECT_TRUE(LoadSplits(Files(Write("utf8.tsv", "caf\xc3\xa9\tcoffee\n"), good, good)).ok());
}

TEST_F(FileTaskTest, ExamplesKnowTheirFileAndLine) {
  const std::string train = Write("train.tsv", "a\tb\n\nc\td\na\tx\n");
  const Splits splits = LoadOrFail(Files(train, train, train));
  ASSERT_EQ(splits.train.size(), 2u);
  EXPECT_EQ(splits.train[0].origin, train + ":1");
  EXPECT_EQ(splits.train[1].origin, train + ":3");
}

TEST(TaskErrorTest, SplitsTooLargeForMemoryAreRefusedBeforeGenerating) {
  const absl::StatusOr<Splits> splits =
      LoadSplits({"task.train_size=10000000", "task.max_length=1048576", "task.min_length=1048576",
                  "task.vocab_size=100000"});
  ASSERT_FALSE(splits.ok());
  EXPECT_EQ(splits.status().code(), absl::StatusCode::kResourceExhausted) << splits.status();
  EXPECT_NE(splits.status().message().find("task.train_size = 10000000 (--set)"), std::string::npos)
      << splits.status();
}

TEST(TaskErrorTest, EmptyTestLengthRangeNamesTheKeys) {
  const absl::StatusOr<Splits> splits =
      LoadSplits({"task.test_min_length=8", "task.test_max_length=4"});
  ASSERT_FALSE(splits.ok());
  EXPECT_NE(splits.status().message().find("task.test_min_length = 8 (--set)"), std::string::npos)
      << splits.status();
}

}  // namespace
}  // namespace attnlab::experiments
