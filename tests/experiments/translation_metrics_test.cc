// sacreBLEU-compatible 13a tokenisation, corpus BLEU and chrF, against hand-worked values.
// There is no sacreBLEU on this machine; every expected number below is worked out in the
// comment next to it, and each was re-derived by a separate stdlib-Python implementation
// of the formulas (using sacreBLEU's 13a regular expressions), which agreed to 1e-12.
#include "experiments/metrics/translation_metrics.h"

#include <cmath>
#include <string>
#include <vector>

#include "framework/core/error.h"
#include "gtest/gtest.h"

namespace attnlab::experiments {
namespace {

constexpr double kTolerance = 1e-9;

TEST(Tokenize13aTest, SplitsPunctuationOffWords) {
  EXPECT_EQ(Tokenize13a("Hello, world!"), "Hello , world !");
  EXPECT_EQ(Tokenize13a("(hi)"), "( hi )");
  EXPECT_EQ(Tokenize13a("$5 @home #tag"), "$ 5 @ home # tag");
  // The apostrophe is not in 13a's symbol class.
  EXPECT_EQ(Tokenize13a("don't"), "don't");
}

TEST(Tokenize13aTest, PeriodAndCommaStayOnlyBetweenDigits) {
  EXPECT_EQ(Tokenize13a("It costs 3.14 dollars."), "It costs 3.14 dollars .");
  EXPECT_EQ(Tokenize13a("1,000 people"), "1,000 people");
  EXPECT_EQ(Tokenize13a("1.5,2"), "1.5,2");
  EXPECT_EQ(Tokenize13a("The end."), "The end .");
  // Preceded by a digit but followed by the end: still split.
  EXPECT_EQ(Tokenize13a("In 2020."), "In 2020 .");
  EXPECT_EQ(Tokenize13a("e.g. this"), "e . g . this");
}

TEST(Tokenize13aTest, DashSplitsOnlyAfterADigit) {
  EXPECT_EQ(Tokenize13a("a-b"), "a-b");
  EXPECT_EQ(Tokenize13a("1-2"), "1 - 2");
  EXPECT_EQ(Tokenize13a("1-2-3"), "1 - 2 - 3");
  // Matches do not overlap: after "1-" the scan resumes at the second dash, which does
  // not follow a digit.
  EXPECT_EQ(Tokenize13a("1--2"), "1 - -2");
}

TEST(Tokenize13aTest, UnescapesEntitiesInOrder) {
  EXPECT_EQ(Tokenize13a("&quot;Yes&quot; &amp; no"), "\" Yes \" & no");
  EXPECT_EQ(Tokenize13a("&lt;b&gt;"), "< b >");
  // &amp; is replaced before &lt;, so "&amp;lt;" becomes "&lt;" and then "<".
  EXPECT_EQ(Tokenize13a("&amp;lt;"), "<");
}

TEST(Tokenize13aTest, NormalisesWhitespaceAndLineBreaks) {
  EXPECT_EQ(Tokenize13a("  a \t b  "), "a b");
  EXPECT_EQ(Tokenize13a("hyphen-\nated"), "hyphenated");
  EXPECT_EQ(Tokenize13a("two\nlines"), "two lines");
  EXPECT_EQ(Tokenize13a("x<skipped>y"), "xy");
  // Python's str.split() splits on U+00A0 (no-break space) too.
  EXPECT_EQ(Tokenize13a("a\u00a0b"), "a b");
}

TEST(Tokenize13aTest, KeepsMultiByteCharactersWhole) {
  EXPECT_EQ(Tokenize13a("caf\u00e9."), "caf\u00e9 .");
  EXPECT_EQ(Tokenize13a("na\u00efve,word"), "na\u00efve , word");
}

TEST(CorpusBleuTest, PerfectMatchIs100) {
  const BleuScore bleu = CorpusBleu({"the cat sat on the mat"}, {{"the cat sat on the mat"}});
  EXPECT_NEAR(bleu.score, 100.0, kTolerance);
  for (const double precision : bleu.precisions) EXPECT_NEAR(precision, 100.0, kTolerance);
  EXPECT_DOUBLE_EQ(bleu.brevity_penalty, 1.0);
  EXPECT_EQ(bleu.hypothesis_length, 6);
  EXPECT_EQ(bleu.reference_length, 6);
}

// hyp "the cat sat on the mat", ref "the cat sat on a mat" (6 tokens each):
//   1-grams: the x2 (ref has 1: clipped to 1), cat, sat, on, mat -> 5/6
//   2-grams: the cat, cat sat, sat on match; on the, the mat do not -> 3/5
//   3-grams: the cat sat, cat sat on -> 2/4;  4-grams: the cat sat on -> 1/3
//   BP = 1; BLEU = 100 * (5/6 * 3/5 * 2/4 * 1/3)^(1/4) = 100 * (1/12)^(1/4) = 53.72850
TEST(CorpusBleuTest, OneSegmentWorkedExample) {
  const BleuScore bleu = CorpusBleu({"the cat sat on the mat"}, {{"the cat sat on a mat"}});
  EXPECT_NEAR(bleu.precisions[0], 100.0 * 5 / 6, kTolerance);
  EXPECT_NEAR(bleu.precisions[1], 60.0, kTolerance);
  EXPECT_NEAR(bleu.precisions[2], 50.0, kTolerance);
  EXPECT_NEAR(bleu.precisions[3], 100.0 / 3, kTolerance);
  EXPECT_DOUBLE_EQ(bleu.brevity_penalty, 1.0);
  EXPECT_NEAR(bleu.score, 53.7284965911771, 1e-9);
}

// Segment 1 as above (5/6, 3/5, 2/4, 1/3; lengths 6 and 6). Segment 2: hyp "it is raining"
// (3 tokens, no 4-gram), ref "it is raining today" (4): 3/3, 2/2, 1/1, 0/0.
// Corpus sums: 8/9, 5/7, 3/5, 1/3; hyp length 9, ref length 10.
//   BP = exp(1 - 10/9) = exp(-1/9) = 0.8948393
//   BLEU = 100 * BP * (8/9 * 5/7 * 3/5 * 1/3)^(1/4) = 100 * BP * (8/63)^(1/4) = 53.41736
// (Averaging the segments' own BLEU would give something else: statistics are summed.)
TEST(CorpusBleuTest, TwoSegmentsSumStatisticsAndApplyBrevityPenalty) {
  const BleuScore bleu = CorpusBleu({"the cat sat on the mat", "it is raining"},
                                    {{"the cat sat on a mat"}, {"it is raining today"}});
  EXPECT_EQ(bleu.hypothesis_length, 9);
  EXPECT_EQ(bleu.reference_length, 10);
  EXPECT_NEAR(bleu.precisions[0], 100.0 * 8 / 9, kTolerance);
  EXPECT_NEAR(bleu.precisions[1], 100.0 * 5 / 7, kTolerance);
  EXPECT_NEAR(bleu.precisions[2], 60.0, kTolerance);
  EXPECT_NEAR(bleu.precisions[3], 100.0 / 3, kTolerance);
  EXPECT_NEAR(bleu.brevity_penalty, std::exp(-1.0 / 9), kTolerance);
  EXPECT_NEAR(bleu.score, 53.41735956899851, 1e-9);
}

// hyp "the cat sat on the" (5) vs ref "the cat sat on the mat today" (7): every n-gram
// matches (5/5, 4/4, 3/3, 2/2), so BLEU = 100 * BP = 100 * exp(1 - 7/5) = 67.03200.
TEST(CorpusBleuTest, BrevityPenaltyForAShortHypothesis) {
  const BleuScore bleu = CorpusBleu({"the cat sat on the"}, {{"the cat sat on the mat today"}});
  EXPECT_NEAR(bleu.brevity_penalty, std::exp(-0.4), kTolerance);
  EXPECT_NEAR(bleu.score, 100.0 * std::exp(-0.4), 1e-9);
}

// hyp "the dog ran fast home" vs ref "the dog ran slow home":
//   1-grams 4/5 (the dog ran home), 2-grams 2/4 (the dog, dog ran), 3-grams 1/3
//   (the dog ran), 4-grams 0/2. Exp smoothing: the first order without a match gets
//   100 / (2 * 2) = 25 %. BLEU = 100 * (0.8 * 0.5 * 1/3 * 0.25)^(1/4) = 42.72870.
TEST(CorpusBleuTest, ExpSmoothingWhenOrderFourHasNoMatch) {
  const BleuScore bleu = CorpusBleu({"the dog ran fast home"}, {{"the dog ran slow home"}});
  EXPECT_NEAR(bleu.precisions[3], 25.0, kTolerance);
  EXPECT_NEAR(bleu.score, 42.72870063962342, 1e-9);
}

// hyp "the dog ran fast home" vs ref "the cat ran slow home": 1-grams 3/5 (the ran home);
// 2-, 3-, 4-grams 0/4, 0/3, 0/2. The smoothing factor doubles at each unmatched order:
//   p2 = 100 / (2 * 4) = 12.5, p3 = 100 / (4 * 3) = 8.3333, p4 = 100 / (8 * 2) = 6.25
//   BLEU = (60 * 12.5 * 8.3333 * 6.25)^(1/4) = 39062.5^(1/4) = 14.05853
TEST(CorpusBleuTest, ExpSmoothingDoublesPerUnmatchedOrder) {
  const BleuScore bleu = CorpusBleu({"the dog ran fast home"}, {{"the cat ran slow home"}});
  EXPECT_NEAR(bleu.precisions[0], 60.0, kTolerance);
  EXPECT_NEAR(bleu.precisions[1], 12.5, kTolerance);
  EXPECT_NEAR(bleu.precisions[2], 100.0 / 12, kTolerance);
  EXPECT_NEAR(bleu.precisions[3], 6.25, kTolerance);
  EXPECT_NEAR(bleu.score, 14.058533129758727, 1e-9);
}

TEST(CorpusBleuTest, NoMatchAtAllScoresZero) {
  const BleuScore bleu = CorpusBleu({"x y"}, {{"a b"}});
  EXPECT_EQ(bleu.score, 0.0);
  for (const double precision : bleu.precisions) EXPECT_EQ(precision, 0.0);
}

// A corpus whose hypotheses are all shorter than 4 tokens has no 4-grams: p4 = 0 (no
// smoothing applies to an empty order) and BLEU = 0, even for a perfect match. The
// orders that exist are still reported.
TEST(CorpusBleuTest, HypothesesShorterThanFourTokensScoreZero) {
  const BleuScore two = CorpusBleu({"the cat"}, {{"the cat"}});
  EXPECT_EQ(two.score, 0.0);
  EXPECT_NEAR(two.precisions[0], 100.0, kTolerance);
  EXPECT_NEAR(two.precisions[1], 100.0, kTolerance);
  EXPECT_EQ(two.precisions[2], 0.0);
  EXPECT_EQ(two.precisions[3], 0.0);
  const BleuScore three = CorpusBleu({"the cat sat"}, {{"the cat sat"}});
  EXPECT_EQ(three.score, 0.0);
  EXPECT_NEAR(three.precisions[2], 100.0, kTolerance);
  EXPECT_EQ(three.precisions[3], 0.0);
}

// hyp "a a b c d e" (6); ref1 "a b c d e f g" (7), ref2 "a a b x y" (5).
//   Reference length: |6-7| = |6-5| = 1, a tie, so the shorter: 5; BP = 1 (6 >= 5).
//   1-grams: "a" x2 clipped by max(1, 2) = 2 -> 6/6; 2-grams aa (ref2), ab, bc, cd, de -> 5/5;
//   3-grams aab (ref2), abc, bcd, cde (ref1) -> 4/4; 4-grams abcd, bcde match, aabc
//   (spanning both references) does not -> 2/3. BLEU = 100 * (2/3)^(1/4) = 90.36020.
// With ref1 alone: 5/6, 4/5, 3/4, 2/3 and BP = exp(1 - 7/6): 64.31870.
TEST(CorpusBleuTest, MultipleReferencesClipByTheBestAndTakeTheClosestLength) {
  const BleuScore bleu = CorpusBleu({"a a b c d e"}, {{"a b c d e f g", "a a b x y"}});
  EXPECT_EQ(bleu.reference_length, 5);
  EXPECT_DOUBLE_EQ(bleu.brevity_penalty, 1.0);
  EXPECT_NEAR(bleu.precisions[0], 100.0, kTolerance);
  EXPECT_NEAR(bleu.precisions[3], 200.0 / 3, kTolerance);
  EXPECT_NEAR(bleu.score, 90.36020036098454, 1e-9);
  const BleuScore single = CorpusBleu({"a a b c d e"}, {{"a b c d e f g"}});
  EXPECT_EQ(single.reference_length, 7);
  EXPECT_NEAR(single.score, 64.31870218238025, 1e-9);
}

// hyp "a a a" with refs "a a" and "a": per n-gram the LARGEST count in one reference clips
// (2 for "a"), not the sum over references (3). p1 = 2/3; p2: "a a" x2 vs 1 -> 1/2;
// p3: "a a a" 0/1 -> smoothed 100 / (2 * 1) = 50; no 4-gram -> p4 = 0 and BLEU = 0.
// Reference length: |3-2| = 1 beats |3-1| = 2 -> 2.
TEST(CorpusBleuTest, MultipleReferencesClipByTheLargestSingleCount) {
  const BleuScore bleu = CorpusBleu({"a a a"}, {{"a a", "a"}});
  EXPECT_NEAR(bleu.precisions[0], 200.0 / 3, kTolerance);
  EXPECT_NEAR(bleu.precisions[1], 50.0, kTolerance);
  EXPECT_NEAR(bleu.precisions[2], 50.0, kTolerance);
  EXPECT_EQ(bleu.precisions[3], 0.0);
  EXPECT_EQ(bleu.reference_length, 2);
  EXPECT_EQ(bleu.score, 0.0);
}

TEST(CorpusBleuTest, TokenisesBeforeCounting) {
  // 13a makes "Hello , world ! Fine day ." of both sides.
  const BleuScore bleu = CorpusBleu({"Hello, world! Fine day."}, {{"Hello , world !  Fine day ."}});
  EXPECT_NEAR(bleu.score, 100.0, kTolerance);
  EXPECT_EQ(bleu.hypothesis_length, 7);
}

TEST(CorpusBleuTest, RightStripsBeforeTokenising) {
  // sacreBLEU strips trailing whitespace first, so "well-\n" keeps its dash ("well-");
  // 13a alone would delete "-\n" and leave "well".
  EXPECT_EQ(Tokenize13a("well-\n"), "well");
  EXPECT_NEAR(CorpusBleu({"a b c well-"}, {{"a b c well-\n"}}).score, 100.0, kTolerance);
}

TEST(CorpusBleuTest, EmptyCorpusScoresZeroAndMismatchThrows) {
  EXPECT_EQ(CorpusBleu({}, {}).score, 0.0);
  EXPECT_THROW(CorpusBleu({"a"}, {}), Error);
  EXPECT_THROW(CorpusBleu({"a"}, {{}}), Error);
}

TEST(CorpusBleuTest, FiveThousandSegmentsAreFast) {
  // Quadratic work would show here; with hash maps this takes milliseconds.
  std::vector<std::string> hypotheses;
  std::vector<std::vector<std::string>> references;
  for (int i = 0; i < 5000; ++i) {
    std::string sentence;
    for (int j = 0; j < 30; ++j) {
      sentence += 'w';
      sentence += std::to_string((i * 7 + j * 13) % 101);
      sentence += ' ';
    }
    hypotheses.push_back(sentence);
    references.push_back({sentence});
  }
  EXPECT_NEAR(CorpusBleu(hypotheses, references).score, 100.0, 1e-9);
}

TEST(CorpusChrfTest, PerfectMatchIs100AndWhitespaceIsIgnored) {
  EXPECT_NEAR(CorpusChrf({"hello world"}, {{"hello world"}}), 100.0, kTolerance);
  EXPECT_NEAR(CorpusChrf({"helloworld"}, {{"hello  world"}}), 100.0, kTolerance);
}

// hyp "ab c" -> "abc", ref "abc d" -> "abcd" (whitespace removed):
//   n=1: a b c vs a b c d: 3 matches, P 3/3, R 3/4
//   n=2: ab bc vs ab bc cd: P 2/2, R 2/3
//   n=3: abc vs abc bcd:    P 1/1, R 1/2
//   n=4: no hypothesis 4-gram: not counted; n=5,6: no reference n-grams either.
//   P = 1, R = (3/4 + 2/3 + 1/2) / 3 = 0.6388889
//   chrF = 100 * 5 P R / (4 P + R) = 100 * 3.1944444 / 4.6388889 = 68.86228
TEST(CorpusChrfTest, WorkedPair) {
  EXPECT_NEAR(CorpusChrf({"ab c"}, {{"abc d"}}), 68.86227544910179, 1e-9);
  EXPECT_NEAR(CorpusChrf({"abc"}, {{"abcd"}}), 68.86227544910179, 1e-9);
}

// hyp "abx" vs ref "abc": n=1 2/3 both ways, n=2 (ab bx vs ab bc) 1/2, n=3 0/1:
// P = R = (2/3 + 1/2 + 0) / 3 = 0.3888889, and F_beta of P = R is P: 38.88889.
TEST(CorpusChrfTest, PrecisionAndRecallBelowOne) {
  EXPECT_NEAR(CorpusChrf({"abx"}, {{"abc"}}), 100.0 * 7 / 18, 1e-9);
}

// "café" vs "cafe" counts characters (code points), not bytes: n=1 3/4, n=2 2/3, n=3 1/2,
// n=4 0/1 both ways; P = R = (3/4 + 2/3 + 1/2 + 0) / 4 = 0.4791667 -> 47.91667.
TEST(CorpusChrfTest, CountsUnicodeCharacters) {
  EXPECT_NEAR(CorpusChrf({"caf\u00e9"}, {{"cafe"}}), 100.0 * 23 / 48, 1e-9);
}

// Segment 1: "abc" vs "abcd" (hyp/ref/match per order: 3/4/3, 2/3/2, 1/2/1, 0/1/0).
// Segment 2: "ab" vs "ab" (2/2/2, 1/1/1; no 3-grams in the reference).
// Summed: 5/6/5, 3/4/3, 1/2/1, 0/1/0: P = 1, R = (5/6 + 3/4 + 1/2) / 3 = 0.6944444,
// chrF = 100 * 5 R / (4 + R) = 73.96450 (the mean of the segment scores would be 84.43).
TEST(CorpusChrfTest, SumsStatisticsOverSegments) {
  EXPECT_NEAR(CorpusChrf({"abc", "ab"}, {{"abcd"}, {"ab"}}), 73.96449704142013, 1e-9);
}

TEST(CorpusChrfTest, MultipleReferencesUseTheBestSentenceScore) {
  // "xyz" shares nothing with "abc"; "abcd" scores 68.86 (see WorkedPair).
  EXPECT_NEAR(CorpusChrf({"abc"}, {{"xyz", "abcd"}}), 68.86227544910179, 1e-9);
  EXPECT_NEAR(CorpusChrf({"abc"}, {{"abcd", "abc"}}), 100.0, kTolerance);
}

TEST(CorpusChrfTest, EmptyCorpusScoresZeroAndMismatchThrows) {
  EXPECT_EQ(CorpusChrf({}, {}), 0.0);
  EXPECT_EQ(CorpusChrf({""}, {{""}}), 0.0);
  EXPECT_THROW(CorpusChrf({"a", "b"}, {{"a"}}), Error);
}

}  // namespace
}  // namespace attnlab::experiments
