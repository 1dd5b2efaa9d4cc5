// addition: "4821+937" -> "5758", characters in and out. Each operand has between
// task.min_length and task.max_length digits (no leading zeros); the test split can use
// longer numbers (task.test_min_length/test_max_length) to probe length generalisation.
#include "absl/strings/str_cat.h"
#include "experiments/tasks/generation.h"

namespace attnlab::experiments {
namespace {

// A random number with exactly `digits` digits, as text (arbitrary length, no overflow).
std::string RandomNumber(TaskRandom& random, int64_t digits) {
  std::string number(
      1, static_cast<char>('0' + (digits == 1 ? random.Uniform(0, 9) : random.Uniform(1, 9))));
  for (int64_t i = 1; i < digits; ++i) number += static_cast<char>('0' + random.Uniform(0, 9));
  return number;
}

// Schoolbook addition of two decimal strings.
std::string AddDecimal(const std::string& a, const std::string& b) {
  std::string sum;
  int carry = 0;
  for (size_t i = 0; i < std::max(a.size(), b.size()) || carry; ++i) {
    const int da = i < a.size() ? a[a.size() - 1 - i] - '0' : 0;
    const int db = i < b.size() ? b[b.size() - 1 - i] - '0' : 0;
    const int total = da + db + carry;
    sum.insert(sum.begin(), static_cast<char>('0' + total % 10));
    carry = total / 10;
  }
  return sum;
}

class AdditionTask : public Task {
 public:
  absl::StatusOr<Splits> LoadSplits(const Config& config) const override {
    return GenerateSplits(config, "addition", [](TaskRandom& random, const LengthRange& lengths) {
      const std::string a = RandomNumber(random, random.Uniform(lengths.min, lengths.max));
      const std::string b = RandomNumber(random, random.Uniform(lengths.min, lengths.max));
      return Example{absl::StrCat(a, "+", b), {AddDecimal(a, b)}};
    });
  }
};

ATTNLAB_REGISTER_TASK(addition, "addition",
                      [](const Config&) -> absl::StatusOr<std::unique_ptr<Task>> {
                        return std::make_unique<AdditionTask>();
                      });

}  // namespace
}  // namespace attnlab::experiments
