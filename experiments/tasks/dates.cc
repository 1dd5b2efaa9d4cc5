// dates: a date written the way people write it -> ISO 8601 `YYYY-MM-DD`, characters in
// and out ("Wed, Mar 3 2021" -> "2021-03-03"). The classic small seq2seq exercise
// (Chollet's and Andrew Ng's date-normalisation notebooks): the model has to find the
// day, month and year wherever the format puts them, map month names to numbers, and
// ignore the weekday.
//
// Dates are uniform over the days of 1950-01-01 .. 2049-12-31 (not over year, month and
// day separately, which would over-represent short months). That range makes two-digit
// years unambiguous: 50..99 are 19xx, 00..49 are 20xx.
//
// Numeric conventions, chosen so that no source is ambiguous:
//   slashes are US month/day/year:  "03/04/21" is 4 March 2021;
//   dots are European day.month.year: "03.04.2021" is 3 April 2021.
// The ISO form itself is never a source (it is the target). Weekday names are computed
// from the date, so they are always right. Each source is written as in FormatDate below,
// or (one in five each) all lower or all upper case.
//
// The length keys (task.min_length/max_length, test_*) mean nothing here and are
// ignored; GenerateSplits still rejects min_length > max_length. Splits are disjoint in
// their sources; the same day may appear in two splits written differently, as it would
// in real text.
#include <array>
#include <cctype>
#include <string>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "experiments/tasks/generation.h"

namespace attnlab::experiments {
namespace {

constexpr int kFirstYear = 1950, kLastYear = 2049;

constexpr std::array<const char*, 12> kMonthNames = {
    "January", "February", "March",     "April",   "May",      "June",
    "July",    "August",   "September", "October", "November", "December"};
// Monday first, as ISO 8601 numbers the days.
constexpr std::array<const char*, 7> kWeekdayNames = {"Monday", "Tuesday",  "Wednesday", "Thursday",
                                                      "Friday", "Saturday", "Sunday"};

struct CivilDate {
  int year, month, day;  // month 1..12, day 1..31
  int weekday;           // 0 = Monday .. 6 = Sunday
};

// Days since 1970-01-01 of a proleptic Gregorian date, and back: Howard Hinnant's
// days_from_civil / civil_from_days ("chrono-Compatible Low-Level Date Algorithms"),
// which count in 400-year eras of 146097 days whose years start on 1 March.
int64_t DaysFromCivil(int year, int month, int day) {
  year -= month <= 2;
  const int64_t era = (year >= 0 ? year : year - 399) / 400;
  const int64_t year_of_era = year - era * 400;                                          // [0, 399]
  const int64_t day_of_year = (153 * (month + (month > 2 ? -3 : 9)) + 2) / 5 + day - 1;  // [0, 365]
  const int64_t day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
  return era * 146097 + day_of_era - 719468;
}

CivilDate CivilFromDays(int64_t days) {
  days += 719468;
  const int64_t era = (days >= 0 ? days : days - 146096) / 146097;
  const int64_t day_of_era = days - era * 146097;  // [0, 146096]
  // [0, 399]: the leap days before day_of_era in its era, subtracted, leave 365-day years.
  const int64_t year_of_era =
      (day_of_era - day_of_era / 1460 + day_of_era / 36524 - day_of_era / 146096) / 365;
  const int64_t day_of_year =
      day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
  const int64_t month_index = (5 * day_of_year + 2) / 153;  // [0, 11], from March
  CivilDate date;
  date.day = static_cast<int>(day_of_year - (153 * month_index + 2) / 5 + 1);
  date.month = static_cast<int>(month_index < 10 ? month_index + 3 : month_index - 9);
  date.year = static_cast<int>(year_of_era + era * 400 + (date.month <= 2));
  // 1970-01-01 was a Thursday (3 when Monday is 0).
  date.weekday = static_cast<int>(((days - 719468) % 7 + 7 + 3) % 7);
  return date;
}

// "1st", "2nd", "3rd", "4th", ..., "11th", "12th", "13th", ..., "21st", ..., "31st".
std::string Ordinal(int day) {
  const char* suffix = "th";
  if (day / 10 != 1) {
    if (day % 10 == 1) suffix = "st";
    if (day % 10 == 2) suffix = "nd";
    if (day % 10 == 3) suffix = "rd";
  }
  return absl::StrCat(day, suffix);
}

std::string Abbreviation(const char* name) { return std::string(name, 3); }

// The source formats, in title case. `Month` is the full name, `Mon` its first three
// letters; likewise `Weekday` / `Wkd`.
std::string FormatDate(const CivilDate& date, int format) {
  const std::string month = kMonthNames[date.month - 1];
  const std::string mon = Abbreviation(kMonthNames[date.month - 1]);
  const std::string weekday = kWeekdayNames[date.weekday];
  const std::string wkd = Abbreviation(kWeekdayNames[date.weekday]);
  const int y = date.year, m = date.month, d = date.day;
  const std::string ordinal = Ordinal(d);
  // One format per line, with its example, reads as a table.
  // clang-format off
  switch (format) {
    case 0: return absl::StrCat(d, " ", month, " ", y);                  // 3 March 2021
    case 1: return absl::StrCat(month, " ", d, ", ", y);                 // March 3, 2021
    case 2: return absl::StrFormat("%02d/%02d/%02d", m, d, y % 100);     // 03/03/21 (US)
    case 3: return absl::StrFormat("%02d/%02d/%04d", m, d, y);           // 03/03/2021 (US)
    case 4: return absl::StrFormat("%02d.%02d.%04d", d, m, y);           // 03.03.2021
    case 5: return absl::StrCat(wkd, ", ", mon, " ", d, " ", y);         // Wed, Mar 3 2021
    case 6: return absl::StrCat(ordinal, " of ", month, " ", y);         // 3rd of March 2021
    case 7: return absl::StrCat(weekday, " ", d, " ", month, " ", y);    // Wednesday 3 March 2021
    case 8: return absl::StrCat(weekday, ", ", month, " ", d, ", ", y);  // Wednesday, March 3, 2021
    case 9: return absl::StrCat(d, " ", mon, " ", y);                    // 3 Mar 2021
    case 10: return absl::StrCat(mon, " ", d, ", ", y);                  // Mar 3, 2021
    case 11: return absl::StrCat(month, " ", ordinal, ", ", y);          // March 3rd, 2021
    case 12: return absl::StrFormat("%02d-%s-%04d", d, mon, y);          // 03-Mar-2021
    // "the 3rd of March, 2021":
    case 13: return absl::StrCat("the ", ordinal, " of ", month, ", ", y);
    default: return absl::StrCat(wkd, " ", d, " ", mon, " ", y);         // Wed 3 Mar 2021
  }
  // clang-format on
}
constexpr int kFormatCount = 15;  // cases 0..14 above

class DatesTask : public Task {
 public:
  absl::StatusOr<Splits> LoadSplits(const Config& config) const override {
    const int64_t first_day = DaysFromCivil(kFirstYear, 1, 1);
    const int64_t last_day = DaysFromCivil(kLastYear, 12, 31);
    return GenerateSplits(config, "dates", [&](TaskRandom& random, const LengthRange&) {
      const CivilDate date = CivilFromDays(random.Uniform(first_day, last_day));
      std::string source = FormatDate(date, static_cast<int>(random.Uniform(0, kFormatCount - 1)));
      const int64_t casing = random.Uniform(0, 4);  // 0..2 as written, 3 lower, 4 upper
      if (casing == 3) absl::AsciiStrToLower(&source);
      if (casing == 4) absl::AsciiStrToUpper(&source);
      return Example{std::move(source),
                     {absl::StrFormat("%04d-%02d-%02d", date.year, date.month, date.day)}};
    });
  }
};

ATTNLAB_REGISTER_TASK(dates, "dates", [](const Config&) -> absl::StatusOr<std::unique_ptr<Task>> {
  return std::make_unique<DatesTask>();
});

}  // namespace
}  // namespace attnlab::experiments
