// Levenshtein distance against hand-worked values.
#include "framework/core/edit_distance.h"

#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace attnlab {
namespace {

TEST(EditDistanceTest, HandWorkedStrings) {
  // kitten -> sitten (substitute k) -> sittin (substitute e) -> sitting (insert g).
  EXPECT_EQ(EditDistance(std::string("kitten"), std::string("sitting")), 3);
  EXPECT_EQ(EditDistance(std::string(""), std::string("abc")), 3);
  EXPECT_EQ(EditDistance(std::string("abc"), std::string("")), 3);
  EXPECT_EQ(EditDistance(std::string("d_model"), std::string("d_model")), 0);
  EXPECT_EQ(EditDistance(std::string("d_modle"), std::string("d_model")), 2);  // two substitutions
}

TEST(EditDistanceTest, TokenSequences) {
  // HH AH L OW vs HH EH L OW W: one substitution, one insertion.
  const std::vector<std::string> reference = {"HH", "AH", "L", "OW"};
  const std::vector<std::string> hypothesis = {"HH", "EH", "L", "OW", "W"};
  EXPECT_EQ(EditDistance(reference, hypothesis), 2);
}

}  // namespace
}  // namespace attnlab
