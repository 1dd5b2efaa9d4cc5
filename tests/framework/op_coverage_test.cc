// Every differentiable op in the op table (framework/ops/op_kind.h) must have a gradient
// check: a test file declares ATTNLAB_GRADCHECKED(identifier, "op name") next to the
// GradCheck of that op. The registrations run as static initialisers of this binary, so
// the list is complete by the time any test runs.
#include <algorithm>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_join.h"
#include "framework/ops/op_kind.h"
#include "gtest/gtest.h"
#include "tests/support/gradcheck.h"

namespace attnlab {
namespace {

std::set<std::string> RegisteredGradChecks() {
  const std::vector<std::string>& registered = testing::GradCheckedOps();
  return std::set<std::string>(registered.begin(), registered.end());
}

TEST(OpCoverageTest, EveryDifferentiableOpHasAGradientCheck) {
  const std::set<std::string> checked = RegisteredGradChecks();
  std::vector<std::string> unchecked;
  for (const OpInfo& op : kOpTable) {
    if (op.differentiable && !checked.contains(std::string(op.name))) {
      unchecked.emplace_back(op.name);
    }
  }
  EXPECT_TRUE(unchecked.empty())
      << unchecked.size() << " differentiable op(s) without a gradient check "
      << "(add a GradCheck and ATTNLAB_GRADCHECKED(identifier, \"name\")): "
      << absl::StrJoin(unchecked, ", ");
}

TEST(OpCoverageTest, EveryRegisteredNameIsAnOpInTheTable) {
  // Catches a misspelt registration, which would otherwise leave the real op unchecked.
  std::vector<std::string> unknown;
  for (const std::string& name : RegisteredGradChecks()) {
    const bool known = std::any_of(kOpTable.begin(), kOpTable.end(),
                                   [&](const OpInfo& op) { return op.name == name; });
    if (!known) unknown.push_back(name);
  }
  EXPECT_TRUE(unknown.empty()) << "ATTNLAB_GRADCHECKED names not in kOpTable: "
                               << absl::StrJoin(unknown, ", ");
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
