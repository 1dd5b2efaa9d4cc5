// Every differentiable op in the op table (framework/ops/op_kind.h) must have at least
// one case in the table of op cases (op_cases.cc), which gives it a gradient check, a
// thread-count check and, where declared, naive-reference and bf16 checks.
#include <algorithm>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_join.h"
#include "framework/ops/op_kind.h"
#include "gtest/gtest.h"
#include "tests/framework/op_cases.h"

namespace attnlab {
namespace {

std::set<std::string> OpsWithCases() {
  std::set<std::string> ops;
  for (const testing::OpCase& op_case : testing::AllOpCases()) ops.emplace(op_case.op);
  return ops;
}

TEST(OpCoverageTest, EveryDifferentiableOpHasACase) {
  const std::set<std::string> covered = OpsWithCases();
  std::vector<std::string> uncovered;
  for (const OpInfo& op : kOpTable) {
    if (op.differentiable && !covered.contains(std::string(op.name))) {
      uncovered.emplace_back(op.name);
    }
  }
  EXPECT_TRUE(uncovered.empty()) << uncovered.size()
                                 << " differentiable op(s) without a case in tests/framework/"
                                 << "op_cases.cc: " << absl::StrJoin(uncovered, ", ");
}

TEST(OpCoverageTest, EveryCaseNamesAnOpInTheTable) {
  // Catches a misspelt op name, which would otherwise leave the real op uncovered.
  std::vector<std::string> unknown;
  for (const std::string& name : OpsWithCases()) {
    const bool known = std::any_of(kOpTable.begin(), kOpTable.end(),
                                   [&](const OpInfo& op) { return op.name == name; });
    if (!known) unknown.push_back(name);
  }
  EXPECT_TRUE(unknown.empty()) << "op cases naming no op in kOpTable: "
                               << absl::StrJoin(unknown, ", ");
}

TEST(OpCoverageTest, CaseNamesAreUnique) {
  std::set<std::string> names;
  for (const testing::OpCase& op_case : testing::AllOpCases()) {
    EXPECT_TRUE(names.insert(op_case.Name()).second) << "duplicate case " << op_case.Name();
  }
}

TEST(OpCoverageTest, TableEntriesAreInEnumOrderWithUniqueNames) {
  // OpName() indexes kOpTable by the enum value, so the two must line up.
  std::set<std::string_view> names;
  for (size_t i = 0; i < kNumOps; ++i) {
    EXPECT_EQ(static_cast<size_t>(kOpTable[i].kind), i) << kOpTable[i].name;
    EXPECT_TRUE(names.insert(kOpTable[i].name).second) << "duplicate name " << kOpTable[i].name;
  }
}

}  // namespace
}  // namespace attnlab
