// The study summary (experiments/ablation/summary.h): mean and sample standard deviation
// against hand-computed values, their formatting, deltas to the base cell, and the
// markdown and CSV tables built from hand-made results.
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "experiments/ablation/study_report.h"
#include "experiments/ablation/summary.h"
#include "experiments/report/report.h"
#include "gtest/gtest.h"

namespace attnlab::experiments {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

TEST(AblationSummaryTest, MeanAndSampleStandardDeviation) {
  // 90, 92, 97: mean 93; squared deviations 9 + 1 + 16 = 26; 26 / (3 - 1) = 13.
  Statistic s = MeanAndSampleStd({90, 92, 97});
  EXPECT_EQ(s.n, 3);
  EXPECT_DOUBLE_EQ(s.mean, 93.0);
  EXPECT_DOUBLE_EQ(s.std, std::sqrt(13.0));
  // 80, 84: mean 82; (4 + 4) / 1 = 8 (the population formula would give 4).
  s = MeanAndSampleStd({80, 84});
  EXPECT_DOUBLE_EQ(s.std, std::sqrt(8.0));
  // A diverged run's NaN is left out: 1, 3 -> mean 2, std sqrt(2).
  s = MeanAndSampleStd({1, kNaN, 3});
  EXPECT_EQ(s.n, 2);
  EXPECT_DOUBLE_EQ(s.mean, 2.0);
  EXPECT_DOUBLE_EQ(s.std, std::sqrt(2.0));
  s = MeanAndSampleStd({0.5});
  EXPECT_EQ(s.n, 1);
  EXPECT_DOUBLE_EQ(s.mean, 0.5);
  EXPECT_TRUE(std::isnan(s.std));
  s = MeanAndSampleStd({});
  EXPECT_EQ(s.n, 0);
  EXPECT_TRUE(std::isnan(s.mean));
}

TEST(AblationSummaryTest, MeanAndStdAreShownToTheStdsSecondSignificantDigit) {
  EXPECT_EQ(FormatMeanStd(MeanAndSampleStd({90, 92, 97})), "93.0 ± 3.6");
  EXPECT_EQ(FormatMeanStd(MeanAndSampleStd({0.010, 0.012})), "0.0110 ± 0.0014");
  EXPECT_EQ(FormatMeanStd(MeanAndSampleStd({1000, 1040})), "1020 ± 28");
  EXPECT_EQ(FormatMeanStd(MeanAndSampleStd({100, 100, 100})), "100 ± 0");
  EXPECT_EQ(FormatMeanStd(MeanAndSampleStd({0.123456})), "0.1235");
  EXPECT_EQ(FormatMeanStd(MeanAndSampleStd({})), "–");
  const Statistic reference = MeanAndSampleStd({90, 92, 97});  // one decimal
  EXPECT_EQ(FormatDelta(11.0, reference), "+11.0");
  EXPECT_EQ(FormatDelta(-0.26, reference), "-0.3");
  EXPECT_EQ(FormatDelta(0.04, reference), "0.0");
  EXPECT_EQ(FormatDelta(kNaN, reference), "–");
}

SeedRun Run(const std::string& cell, int64_t seed, double exact_match, double loss, double wall,
            double throughput, int64_t parameters) {
  SeedRun run;
  run.seed = seed;
  run.run_dir = "runs/s/" + cell + "/seed-" + std::to_string(seed);
  run.result.test_metrics = {{"exact_match", exact_match}, {"loss", loss}};
  run.result.wall_seconds = wall;
  run.result.parameters = parameters;
  run.tokens_per_second = throughput;
  return run;
}

// Two cells: "base" (seeds 1, 2) and "dot" (seeds 1, 2, 3; seed 3 of base missing).
struct Fixture {
  StudyPlan plan;
  std::vector<CellRuns> results;
  Fixture() {
    plan.study.name = "s";
    plan.study.path = "experiments/recipes/studies/s.toml";
    plan.study.base_config = "experiments/recipes/dates/transformer.toml";
    plan.study.seeds = {1, 2, 3};
    plan.study.metrics = {"exact_match", "loss"};
    plan.study_dir = "runs/s";
    plan.cells.resize(2);
    plan.cells[0].name = "base";
    plan.cells[0].base = true;
    plan.cells[0].levels = {"model.attention=\"scaled_dot\"", "model.heads=4"};
    plan.cells[1].name = "dot";
    plan.cells[1].levels = {"model.attention=\"dot\"", "model.heads=4"};
    plan.base_cell = 0;
    results.resize(2);
    results[0].name = "base";
    results[0].base = true;
    results[0].planned = 3;
    results[0].finished = {Run("base", 1, 80, 0.30, 100, 1000, 5000),
                           Run("base", 2, 84, 0.34, 110, 1100, 5000)};
    results[1].name = "dot";
    results[1].planned = 3;
    results[1].finished = {Run("dot", 1, 90, 0.20, 90, 1200, 4000),
                           Run("dot", 2, 92, 0.25, 95, 1300, 4000),
                           Run("dot", 3, 97, 0.21, 100, 1400, 4000)};
  }
};

TEST(AblationSummaryTest, RowsHoldStatisticsAndDeltasToTheBase) {
  const Fixture fixture;
  const StudySummary summary = Summarize(fixture.plan, fixture.results);
  ASSERT_EQ(summary.rows.size(), 2u);
  const SummaryRow& base = summary.rows[0];
  const SummaryRow& dot = summary.rows[1];
  EXPECT_EQ(base.finished, 2u);
  EXPECT_EQ(base.planned, 3u);
  EXPECT_DOUBLE_EQ(base.metrics[0].mean, 82.0);
  EXPECT_DOUBLE_EQ(base.metrics[0].std, std::sqrt(8.0));
  EXPECT_TRUE(std::isnan(base.deltas[0]));  // the base has no delta
  EXPECT_DOUBLE_EQ(dot.metrics[0].mean, 93.0);
  EXPECT_DOUBLE_EQ(dot.deltas[0], 11.0);  // 93 - 82
  // loss: base (0.30 + 0.34) / 2 = 0.32, dot (0.20 + 0.25 + 0.21) / 3 = 0.22.
  EXPECT_NEAR(dot.deltas[1], -0.10, 1e-12);
  EXPECT_DOUBLE_EQ(dot.parameters.mean, 4000);
  EXPECT_DOUBLE_EQ(dot.wall_seconds.mean, 95);
  EXPECT_DOUBLE_EQ(dot.tokens_per_second.mean, 1300);
  // The base lists all it sets, the other cells what differs from the base.
  EXPECT_EQ(base.settings, fixture.plan.cells[0].levels);
  EXPECT_EQ(dot.settings, (std::vector<std::string>{"model.attention=\"dot\""}));
}

TEST(AblationSummaryTest, MarkdownTable) {
  const Fixture fixture;
  const std::string md = SummaryMarkdown(Summarize(fixture.plan, fixture.results));
  EXPECT_NE(md.find("# Study `s`"), std::string::npos) << md;
  EXPECT_NE(md.find("n − 1 in the denominator"), std::string::npos);
  EXPECT_NE(md.find("| cell | seeds | exact_match | Δ | loss | Δ | parameters | wall time | "
                    "tokens/s |"),
            std::string::npos)
      << md;
  // base: 82 ± 2.828 -> one decimal; loss 0.32 ± 0.0283 -> three decimals.
  EXPECT_NE(md.find("| **base** (base) | 2/3 | 82.0 ± 2.8 |  | 0.320 ± 0.028 |  | 5000 | "
                    "1 min 45 s | 1050 |"),
            std::string::npos)
      << md;
  // dot: 93 ± 3.606; loss 0.22 ± 0.0265 -> three decimals; delta -0.100.
  EXPECT_NE(md.find("| dot | 3 | 93.0 ± 3.6 | +11.0 | 0.220 ± 0.026 | -0.100 | 4000 | "
                    "1 min 35 s | 1300 |"),
            std::string::npos)
      << md;
  EXPECT_NE(md.find("| dot | `model.attention=\"dot\"` |"), std::string::npos) << md;
}

TEST(AblationSummaryTest, CsvHasFullPrecisionAndEmptyFieldsForUndefinedValues) {
  Fixture fixture;
  fixture.results[0].finished.pop_back();  // base: one seed, no std
  const std::string csv = SummaryCsv(Summarize(fixture.plan, fixture.results));
  EXPECT_EQ(csv,
            "cell,base,seeds_finished,seeds_planned,exact_match_mean,exact_match_std,"
            "exact_match_delta,loss_mean,loss_std,loss_delta,parameters,wall_seconds_mean,"
            "tokens_per_second_mean\n"
            "base,true,1,3,80,,,0.3,,,5000,100,1000\n"
            "dot,false,3,3,93,3.605551275,13,0.22,0.02645751311,-0.08,4000,95,1300\n");
}

// The fixture with `time_to = { wer = 40, exact_match = 90 }` and one validation
// evaluation per (seed, step, elapsed time, wer, exact_match) below; no evaluation time.
struct TimeToFixture : Fixture {
  TimeToFixture() {
    plan.study.time_to = {{"wer", 40.0, false, "s.toml:5"},
                          {"exact_match", 90.0, true, "s.toml:5"}};
    // base: wer 40 reached at step 200 (100 s) and at 400 (130 s); exact_match never.
    Add(0, 0, {{100, 70, 45, 80}, {200, 100, 40, 85}});
    Add(0, 1, {{200, 100, 42, 80}, {400, 130, 39, 89.9}});
    // dot: wer 40 by seed 1 only (92.5 s); exact_match 90 at 60, 70 and 80 s.
    Add(1, 0, {{300, 60, 41, 90}, {400, 92.5, 40, 95}});
    Add(1, 1, {{300, 70, 41, 91}});
    Add(1, 2, {{300, 80, 44, 92}});
  }
  void Add(size_t cell, size_t seed, const std::vector<std::vector<double>>& evaluations) {
    for (const std::vector<double>& e : evaluations) {
      MetricsRecord record;
      record.kind = "eval";
      record.split = "valid";
      record.values = {
          {"step", e[0]}, {"elapsed_seconds", e[1]}, {"wer", e[2]}, {"exact_match", e[3]}};
      results[cell].finished[seed].records.push_back(record);
    }
  }
};

TEST(AblationSummaryTest, TimeToATargetIsOverTheSeedsThatReachedIt) {
  const TimeToFixture fixture;
  const StudySummary summary = Summarize(fixture.plan, fixture.results);
  const TimeToTarget& base_wer = summary.rows[0].time_to[0];
  EXPECT_EQ(base_wer.reached, 2u);
  EXPECT_DOUBLE_EQ(base_wer.seconds.mean, 115.0);
  EXPECT_DOUBLE_EQ(base_wer.seconds.std, std::sqrt(450.0));  // (15² + 15²) / 1
  EXPECT_DOUBLE_EQ(base_wer.step.mean, 300.0);
  EXPECT_EQ(summary.rows[0].time_to[1].reached, 0u);
  const TimeToTarget& dot_wer = summary.rows[1].time_to[0];
  EXPECT_EQ(dot_wer.reached, 1u);
  EXPECT_DOUBLE_EQ(dot_wer.seconds.mean, 92.5);
  EXPECT_DOUBLE_EQ(summary.rows[1].time_to[1].seconds.mean, 70.0);
  EXPECT_DOUBLE_EQ(summary.rows[1].time_to[1].seconds.std, 10.0);
}

TEST(AblationSummaryTest, TimeToColumnsInMarkdownAndCsv) {
  const TimeToFixture fixture;
  const StudySummary summary = Summarize(fixture.plan, fixture.results);
  const std::string md = SummaryMarkdown(summary);
  EXPECT_NE(md.find("| cell | seeds | exact_match | Δ | loss | Δ | parameters | wall time | "
                    "tokens/s | time to wer ≤ 40 | time to exact_match ≥ 90 |\n"
                    "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n"),
            std::string::npos)
      << md;
  // base: 115 ± 21.2 s -> no decimals; none reached exact_match 90.
  EXPECT_NE(md.find("| 5000 | 1 min 45 s | 1050 | 115 ± 21 s | – |\n"), std::string::npos) << md;
  // dot: one of three seeds reached wer 40; all three exact_match 90.
  EXPECT_NE(md.find("| 4000 | 1 min 35 s | 1300 | 92.5 s (1/3) | 70 ± 10 s |\n"), std::string::npos)
      << md;
  EXPECT_NE(md.find("Time to a target: training time"), std::string::npos);
  const std::string html = RenderStudyReport(summary, fixture.results);
  EXPECT_NE(html.find("<th class=\"num\">time to wer ≤ 40</th>"), std::string::npos);
  EXPECT_NE(html.find(">92.5 s (1/3)</td>"), std::string::npos);
  EXPECT_EQ(SummaryCsv(summary),
            "cell,base,seeds_finished,seeds_planned,exact_match_mean,exact_match_std,"
            "exact_match_delta,loss_mean,loss_std,loss_delta,parameters,wall_seconds_mean,"
            "tokens_per_second_mean,time_to_wer_le_40_seconds_mean,time_to_wer_le_40_seconds_std,"
            "time_to_wer_le_40_step_mean,time_to_wer_le_40_reached,"
            "time_to_exact_match_ge_90_seconds_mean,time_to_exact_match_ge_90_seconds_std,"
            "time_to_exact_match_ge_90_step_mean,time_to_exact_match_ge_90_reached\n"
            "base,true,2,3,82,2.828427125,,0.32,0.02828427125,,5000,105,1050,"
            "115,21.21320344,300,2,,,,0\n"
            "dot,false,3,3,93,3.605551275,11,0.22,0.02645751311,-0.1,4000,95,1300,"
            "92.5,,400,1,70,10,300,3\n");
}

TEST(AblationSummaryTest, WithoutTimeToTheTablesHaveNoTimeColumns) {
  const Fixture fixture;
  const StudySummary summary = Summarize(fixture.plan, fixture.results);
  EXPECT_EQ(SummaryMarkdown(summary).find("time to"), std::string::npos);
  EXPECT_EQ(SummaryCsv(summary).find("time_to"), std::string::npos);
}

TEST(AblationSummaryTest, TheReportOverlaysSeedsThinAndTheCellMeanBold) {
  Fixture fixture;
  // Validation exact match at steps 10 and 20 for each run of "dot": 50/70, 60/80, 70/90.
  for (size_t i = 0; i < fixture.results[1].finished.size(); ++i) {
    for (int step : {10, 20}) {
      MetricsRecord record;
      record.kind = "eval";
      record.split = "valid";
      record.values = {{"step", step}, {"exact_match", 50.0 + 10 * i + (step == 20 ? 20 : 0)}};
      fixture.results[1].finished[i].records.push_back(record);
    }
  }
  const std::string html =
      RenderStudyReport(Summarize(fixture.plan, fixture.results), fixture.results);
  EXPECT_NE(html.find("Validation exact_match"), std::string::npos);
  // Three thin seed lines and one bold mean line for "dot", named in the legend.
  size_t thin = 0, position = 0;
  while ((position = html.find("stroke-width=\"1\" stroke-linejoin=\"round\" "
                               "stroke-opacity=\"0.35\"",
                               position)) != std::string::npos) {
    ++thin, ++position;
  }
  EXPECT_EQ(thin, 3u);
  EXPECT_NE(html.find("stroke-width=\"2.6\""), std::string::npos);
  EXPECT_NE(html.find("<title>dot</title>"), std::string::npos);
  EXPECT_NE(html.find("<a href=\"dot/seed-2/report.html\">seed 2</a>"), std::string::npos);
  EXPECT_NE(html.find("93.0 ± 3.6"), std::string::npos);
}

}  // namespace
}  // namespace attnlab::experiments
