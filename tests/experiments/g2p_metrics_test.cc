// G2P word and phoneme error rates with alternative pronunciations, hand-worked.
#include "experiments/metrics/g2p_metrics.h"

#include <string>
#include <vector>

#include "framework/core/error.h"
#include "gtest/gtest.h"

namespace attnlab::experiments {
namespace {

TEST(G2pErrorsTest, MatchingTheSecondReferenceIsRight) {
  const G2pErrorRates rates = G2pErrors({"R EH1 D"}, {{"read", {"R IY1 D", "R EH1 D"}}});
  EXPECT_EQ(rates.word_error_rate, 0.0);
  EXPECT_EQ(rates.phoneme_error_rate, 0.0);
}

// Four words:
//   read   refs "R IY1 D" | "R EH1 D", pred "R EH1 D": right; 0 edits to ref 2 (length 3)
//   cat    ref "K AE1 T", pred "K AE1 D": wrong; 1 edit, length 3
//   ab     refs "AH0 B" | "AH0 B K", pred "AH0 B X": wrong; 1 edit to either (delete X /
//          substitute X -> K), a tie: the first listed reference counts, length 2
//   tomato refs "T AH0 M EY1 T OW2" | "T AH0 M AA1 T OW2", pred "T AH0 M AA1 T OW0": wrong;
//          2 edits to ref 1, 1 to ref 2 -> ref 2, length 6
// WER = 3 / 4 = 75 %; PER = (0 + 1 + 1 + 1) / (3 + 3 + 2 + 6) = 3 / 14 = 21.428571 %.
TEST(G2pErrorsTest, WorkedExampleWithAlternates) {
  const std::vector<Example> examples = {
      {"read", {"R IY1 D", "R EH1 D"}},
      {"cat", {"K AE1 T"}},
      {"ab", {"AH0 B", "AH0 B K"}},
      {"tomato", {"T AH0 M EY1 T OW2", "T AH0 M AA1 T OW2"}},
  };
  const G2pErrorRates rates =
      G2pErrors({"R EH1 D", "K AE1 D", "AH0 B X", "T AH0 M AA1 T OW0"}, examples);
  EXPECT_DOUBLE_EQ(rates.word_error_rate, 75.0);
  EXPECT_DOUBLE_EQ(rates.phoneme_error_rate, 100.0 * 3 / 14);
}

TEST(G2pErrorsTest, PhonemesAreTokensNotCharacters) {
  // "AH0" vs "AH1" is one substitution of one phoneme out of 2: PER 50 %, not 1 / 7.
  const G2pErrorRates rates = G2pErrors({"AH1 B"}, {{"ab", {"AH0 B"}}});
  EXPECT_DOUBLE_EQ(rates.word_error_rate, 100.0);
  EXPECT_DOUBLE_EQ(rates.phoneme_error_rate, 50.0);
}

TEST(G2pErrorsTest, EmptyInputIsZeroAndMismatchThrows) {
  const G2pErrorRates rates = G2pErrors({}, {});
  EXPECT_EQ(rates.word_error_rate, 0.0);
  EXPECT_EQ(rates.phoneme_error_rate, 0.0);
  EXPECT_THROW(G2pErrors({"A"}, {}), Error);
  EXPECT_THROW(G2pErrors({}, {{"a", {"AH0"}}}), Error);
}

}  // namespace
}  // namespace attnlab::experiments
