// The run report: PNG encoding (read back with libpng), the viridis colour map, the SVG
// line chart, and whole reports made from fixture run directories (sections present or
// omitted, several runs overlaid, errors naming the file and line, atomic writing).
#include "experiments/report/report.h"

#include <png.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "experiments/report/heatmap.h"
#include "experiments/report/png_writer.h"
#include "experiments/report/svg_chart.h"
#include "framework/io/safetensors.h"
#include "gtest/gtest.h"
#include "tests/support/file_contents.h"
#include "tests/support/temp_dir.h"

namespace attnlab::experiments {
namespace {

namespace fs = std::filesystem;
using attnlab::testing::ReadFile;
using attnlab::testing::WriteFile;

// Occurrences of `needle` in `haystack`.
int Count(const std::string& haystack, const std::string& needle) {
  int count = 0;
  for (size_t at = haystack.find(needle); at != std::string::npos;
       at = haystack.find(needle, at + needle.size())) {
    ++count;
  }
  return count;
}

// A PNG decoded by libpng into 8-bit RGB.
struct DecodedPng {
  int width = 0, height = 0;
  std::vector<uint8_t> pixels;
  Rgb At(int x, int y) const {
    const uint8_t* p = &pixels[(static_cast<size_t>(y) * width + x) * 3];
    return {p[0], p[1], p[2]};
  }
};

DecodedPng DecodePng(const std::string& bytes) {
  png_image image;
  std::memset(&image, 0, sizeof(image));
  image.version = PNG_IMAGE_VERSION;
  EXPECT_TRUE(png_image_begin_read_from_memory(&image, bytes.data(), bytes.size()))
      << image.message;
  image.format = PNG_FORMAT_RGB;
  DecodedPng decoded;
  decoded.width = static_cast<int>(image.width);
  decoded.height = static_cast<int>(image.height);
  decoded.pixels.resize(PNG_IMAGE_SIZE(image));
  EXPECT_TRUE(png_image_finish_read(&image, nullptr, decoded.pixels.data(), 0, nullptr))
      << image.message;
  return decoded;
}

bool SameColor(Rgb a, Rgb b) { return a.r == b.r && a.g == b.g && a.b == b.b; }

// Relative luminance (sRGB, linearised), for the ordering of the colour map.
double Luminance(Rgb color) {
  auto linear = [](uint8_t v) {
    const double c = v / 255.0;
    return c <= 0.04045 ? c / 12.92 : std::pow((c + 0.055) / 1.055, 2.4);
  };
  return 0.2126 * linear(color.r) + 0.7152 * linear(color.g) + 0.0722 * linear(color.b);
}

TEST(PngWriterTest, WritesAPngThatLibpngReadsBack) {
  RgbImage image(5, 3);
  for (int y = 0; y < 3; ++y) {
    for (int x = 0; x < 5; ++x) image.Set(x, y, 50 * x, 100 * y, 7);
  }
  image.Set(4, 2, 255, 128, 1);
  const absl::StatusOr<std::string> png = EncodePng(image);
  ASSERT_TRUE(png.ok()) << png.status();
  ASSERT_GE(png->size(), 8u);
  EXPECT_EQ(png->substr(0, 8), std::string("\x89PNG\r\n\x1a\n", 8));
  const DecodedPng decoded = DecodePng(*png);
  EXPECT_EQ(decoded.width, 5);
  EXPECT_EQ(decoded.height, 3);
  EXPECT_TRUE(SameColor(decoded.At(0, 0), {0, 0, 7}));
  EXPECT_TRUE(SameColor(decoded.At(3, 1), {150, 100, 7}));
  EXPECT_TRUE(SameColor(decoded.At(4, 2), {255, 128, 1}));

  const absl::StatusOr<std::string> uri = PngDataUri(image);
  ASSERT_TRUE(uri.ok()) << uri.status();
  EXPECT_EQ(uri->rfind("data:image/png;base64,iVBORw0KGgo", 0), 0u) << uri->substr(0, 40);
}

TEST(PngWriterTest, RejectsEmptyAndInconsistentImages) {
  EXPECT_FALSE(EncodePng(RgbImage()).ok());
  RgbImage image(4, 4);
  image.pixels.pop_back();
  const absl::StatusOr<std::string> png = EncodePng(image);
  ASSERT_FALSE(png.ok());
  EXPECT_NE(png.status().message().find("needs 48 bytes, has 47"), std::string::npos)
      << png.status();
}

TEST(ViridisTest, EndpointsMiddleAndClamping) {
  // matplotlib's viridis: first entry (0.267004, 0.004874, 0.329415), last (0.993248,
  // 0.906157, 0.143936), the middle (index 128) (0.127568, 0.566949, 0.550556).
  EXPECT_TRUE(SameColor(Viridis(0.0), {68, 1, 84}));
  EXPECT_TRUE(SameColor(Viridis(1.0), {253, 231, 37}));
  const Rgb middle = Viridis(128.0 / 255.0);
  EXPECT_TRUE(SameColor(middle, {33, 145, 140}))
      << int(middle.r) << " " << int(middle.g) << " " << int(middle.b);
  EXPECT_TRUE(SameColor(Viridis(-0.5), Viridis(0.0)));
  EXPECT_TRUE(SameColor(Viridis(7.0), Viridis(1.0)));
  EXPECT_TRUE(SameColor(Viridis(std::nan("")), Viridis(0.0)));
}

TEST(ViridisTest, LuminanceIncreasesMonotonically) {
  double previous = -1;
  for (int i = 0; i <= 100; ++i) {
    const double luminance = Luminance(Viridis(i / 100.0));
    EXPECT_GT(luminance, previous) << "at t = " << i / 100.0;
    previous = luminance;
  }
}

TEST(HeatmapTest, ImageCellsTakeTheColourOfTheirValue) {
  const std::vector<float> values = {0.0f,  0.5f, 1.0f,   // row 0
                                     0.25f, 0.0f, 0.5f};  // row 1
  const RgbImage image = RenderHeatmapImage(values, 2, 3, /*max_value=*/0.5f, /*cell_pixels=*/4);
  ASSERT_EQ(image.width, 12);
  ASSERT_EQ(image.height, 8);
  const absl::StatusOr<std::string> png = EncodePng(image);
  ASSERT_TRUE(png.ok()) << png.status();
  const DecodedPng decoded = DecodePng(*png);
  EXPECT_TRUE(SameColor(decoded.At(0, 0), Viridis(0.0)));
  EXPECT_TRUE(SameColor(decoded.At(7, 3), Viridis(1.0)));      // 0.5 of max 0.5
  EXPECT_TRUE(SameColor(decoded.At(11, 0), Viridis(1.0)));     // above the max: clamped
  EXPECT_TRUE(SameColor(decoded.At(2, 6), Viridis(0.5)));      // 0.25 of 0.5
  EXPECT_TRUE(SameColor(decoded.At(3, 4), decoded.At(0, 7)));  // one cell, one colour
}

TEST(HeatmapTest, SvgHasTheImageTokensAndScale) {
  const std::vector<float> values = {0.9f, 0.1f, 0.2f, 0.8f};
  HeatmapLabels labels;
  labels.title = "head 0";
  labels.row_tokens = {"x", "<y>"};
  labels.col_tokens = {"a b", "c"};
  const absl::StatusOr<std::string> svg = RenderHeatmapSvg(values, 2, 2, labels);
  ASSERT_TRUE(svg.ok()) << svg.status();
  EXPECT_EQ(Count(*svg, "data:image/png;base64,"), 2);  // the map and its colour bar
  EXPECT_NE(svg->find(">head 0</text>"), std::string::npos);
  EXPECT_NE(svg->find(">&lt;y&gt;</text>"), std::string::npos);
  EXPECT_NE(svg->find(">a␣b</text>"), std::string::npos);
  EXPECT_NE(svg->find(">0.9</text>"), std::string::npos);  // the colour bar's maximum
  EXPECT_FALSE(RenderHeatmapSvg(values, 3, 2, labels).ok());
}

TEST(SvgChartTest, OnePathPerSeriesWithAxesLabelsAndLegend) {
  std::vector<ChartSeries> series(3);
  for (int s = 0; s < 3; ++s) {
    series[s].name = "run " + std::to_string(s);
    series[s].color = s == 0 ? "#1f77b4" : s == 1 ? "#ff7f0e" : "#2ca02c";
    for (int step = 50; step <= 2000; step += 50) {
      series[s].x.push_back(step);
      series[s].y.push_back(3.0 / (1 + step / 500.0) + s);
    }
  }
  series[2].dashed = true;
  const std::string svg =
      RenderLineChart(series, {.title = "Loss <train>", .x_label = "step", .y_label = "loss"});
  EXPECT_EQ(Count(svg, "<path"), 3);
  EXPECT_EQ(Count(svg, "<path class=\"series\""), 3);
  EXPECT_EQ(Count(svg, "stroke-dasharray"), 2);  // the dashed series and its legend line
  EXPECT_NE(svg.find(">step</text>"), std::string::npos);
  EXPECT_NE(svg.find(">loss</text>"), std::string::npos);
  EXPECT_NE(svg.find(">Loss &lt;train&gt;</text>"), std::string::npos);
  for (const char* name : {">run 0</text>", ">run 1</text>", ">run 2</text>"}) {
    EXPECT_NE(svg.find(name), std::string::npos) << name;
  }
  // x ticks every 500 steps from 0 to 2000.
  for (const char* tick : {">0</text>", ">500</text>", ">1000</text>", ">2000</text>"}) {
    EXPECT_NE(svg.find(tick), std::string::npos) << tick;
  }
  EXPECT_EQ(svg.rfind("<svg", 0), 0u);
  EXPECT_NE(svg.find("</svg>"), std::string::npos);
}

TEST(SvgChartTest, GapsSplitThePathAndLogAxesLabelDecades) {
  ChartSeries series{.name = "loss",
                     .color = "red",
                     .x = {1, 2, 3, 4, 5},
                     .y = {3.0, 0.5, std::nan(""), 0.05, 0.01}};
  ChartOptions options;
  options.x_label = "step";
  options.y_scale = AxisScale::kAuto;
  const std::string svg = RenderLineChart({series}, options);
  EXPECT_EQ(Count(svg, "<path"), 1);
  const size_t d = svg.find(" d=\"");
  ASSERT_NE(d, std::string::npos);
  const std::string path = svg.substr(d, svg.find('"', d + 4) - d);
  EXPECT_EQ(Count(path, "M"), 2) << path;  // a NaN starts a new subpath
  for (const char* tick : {">0.01</text>", ">0.1</text>", ">1</text>"}) {
    EXPECT_NE(svg.find(tick), std::string::npos) << tick;
  }
}

TEST(SvgChartTest, NiceTicksCoverTheRangeWithRoundSteps) {
  EXPECT_EQ(NiceTicks(0, 3000, 6), (std::vector<double>{0, 1000, 2000, 3000}));
  const std::vector<double> ticks = NiceTicks(0.13, 0.97, 6);
  ASSERT_GE(ticks.size(), 2u);
  EXPECT_LE(ticks.front(), 0.13);
  EXPECT_GE(ticks.back(), 0.97);
  EXPECT_NEAR(ticks[1] - ticks[0], 0.2, 1e-12);
  EXPECT_EQ(FormatTick(12000, true), "12k");
  EXPECT_EQ(FormatTick(2500, true), "2.5k");
  EXPECT_EQ(FormatTick(0.25, false), "0.25");
}

// ---- whole reports -----------------------------------------------------------------

class ReportTest : public attnlab::testing::TempDirTest {
 protected:
  // runs/<experiment>/<name> with metrics; config, samples and attention if asked.
  fs::path MakeRun(const std::string& name, bool optional_files, const std::string& attention) {
    const fs::path dir = directory_ / "runs" / "copy" / name;
    fs::create_directories(dir);
    std::string metrics;
    for (int step = 50; step <= 1000; step += 50) {
      metrics += "{\"kind\":\"train\",\"step\":" + std::to_string(step) +
                 ",\"epoch\":1,\"loss\":" + std::to_string(3.0 - step / 500.0) +
                 ",\"lr\":0.0007,\"tokens_per_second\":12000,\"elapsed_seconds\":" +
                 std::to_string(step / 10.0) + "}\n";
      if (step % 500 == 0) {
        metrics += "{\"kind\":\"eval\",\"split\":\"valid\",\"step\":" + std::to_string(step) +
                   ",\"loss\":1.2,\"token_accuracy\":81.5,\"exact_match\":40.0,\"bleu\":33.3}\n";
      }
    }
    metrics +=
        "{\"kind\":\"test\",\"split\":\"test\",\"step\":1000,\"decoder\":\"greedy\","
        "\"loss\":1.3,\"seconds\":0.5,\"token_accuracy\":79.25,\"exact_match\":37.5,"
        "\"bleu\":31.0}\n"
        "{\"kind\":\"test\",\"split\":\"test\",\"step\":1000,\"decoder\":\"beam4\","
        "\"loss\":1.3,\"seconds\":0.9,\"token_accuracy\":80.5,\"exact_match\":38.5,"
        "\"bleu\":32.0}\n";
    WriteFile(dir / "metrics.jsonl", metrics);
    if (!optional_files) return dir;
    WriteFile(dir / "config.toml",
              "[model]\nd_model = 128\nattention = \"" + attention + "\"\n\n[train]\nlr = 1.0\n");
    WriteFile(dir / "samples.txt",
              "source:     a b c\nreference:  c b a\nprediction: c b a\n\n"
              "source:     d e\nreference:  e d\nprediction: e e\n\n"
              // The trainer's form: the verdict (which knows every reference) after the
              // prediction.
              "source:     f g\nreference:  g f\nprediction: f g   (correct)\n\n"
              "source:     h\nreference:  h\nprediction: h   (wrong)\n\n");
    // Two examples of a [heads = 2, tgt = 3, src = 4] cross-attention.
    NamedTensors tensors;
    SafetensorsMetadata metadata;
    for (int example = 0; example < 2; ++example) {
      std::vector<float> weights(2 * 3 * 4, 0.0f);
      for (int head = 0; head < 2; ++head) {
        for (int t = 0; t < 3; ++t) weights[(head * 3 + t) * 4 + (2 - t)] = 1.0f;
      }
      const std::string prefix = "example" + std::to_string(example);
      tensors.emplace_back(prefix + ".decoder.layers.1.cross_attn",
                           Tensor::FromFloats(weights, {2, 3, 4}));
      metadata[prefix + ".source_tokens"] = R"(["a", "b", "c", "</s>"])";
      metadata[prefix + ".target_tokens"] = R"(["c", "b", "a"])";
    }
    EXPECT_TRUE(WriteSafetensors((dir / "attention.safetensors").string(), tensors, metadata).ok());
    return dir;
  }
};

TEST_F(ReportTest, FullRunHasEverySection) {
  const fs::path run = MakeRun("base", /*optional_files=*/true, "scaled_dot");
  const fs::path output = run / "report.html";
  const absl::Status status = WriteRunReport({run.string()}, output.string());
  ASSERT_TRUE(status.ok()) << status;
  const std::string html = ReadFile(output);
  EXPECT_EQ(html.rfind("<!DOCTYPE html>", 0), 0u);
  EXPECT_NE(html.find("<title>copy/base"), std::string::npos);
  EXPECT_NE(html.find("<style>"), std::string::npos);
  for (const char* section :
       {"id=\"runs\"", "id=\"config\"", "id=\"training\"", "id=\"validation\"", "id=\"metrics\"",
        "id=\"samples\"", "id=\"attention\""}) {
    EXPECT_NE(html.find(section), std::string::npos) << section;
  }
  // The config, collapsible.
  EXPECT_NE(html.find("<details><summary>resolved config (config.toml)</summary>"),
            std::string::npos);
  EXPECT_NE(html.find("attention = &quot;scaled_dot&quot;"), std::string::npos);
  // Curves: loss (train + valid), learning rate, throughput, and one per validation metric
  // other than the loss (token accuracy, exact match, bleu).
  EXPECT_EQ(Count(html, "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"chart\""), 6);
  EXPECT_NE(html.find(">Validation token accuracy</text>"), std::string::npos);
  EXPECT_NE(html.find(">Validation bleu</text>"), std::string::npos);
  // The final metrics: a valid and a test row, one column per metric.
  EXPECT_NE(html.find("<th class=\"num\">exact match</th>"), std::string::npos);
  EXPECT_NE(html.find("<td>valid</td>"), std::string::npos);
  EXPECT_NE(html.find("<td>test (greedy)</td>"), std::string::npos);
  EXPECT_NE(html.find("<td>test (beam4)</td>"), std::string::npos);
  EXPECT_NE(html.find(">79.25</td>"), std::string::npos);
  EXPECT_NE(html.find(">80.5</td>"), std::string::npos);
  EXPECT_EQ(html.find("<th class=\"num\">seconds</th>"), std::string::npos);  // bookkeeping
  // Samples: the wrong prediction is marked.
  EXPECT_NE(html.find("<td class=\"ok\">c b a</td>"), std::string::npos);
  EXPECT_NE(html.find("<td class=\"bad\">e e</td>"), std::string::npos);
  EXPECT_NE(html.find("<td class=\"ok\">f g</td>"), std::string::npos);
  EXPECT_NE(html.find("<td class=\"bad\">h</td>"), std::string::npos);
  // Attention: 2 examples x (mean + 2 heads) heatmaps, each a map and a colour bar PNG,
  // with the tokens as labels.
  EXPECT_EQ(Count(html, "class=\"heatmap\""), 6);
  EXPECT_EQ(Count(html, "data:image/png;base64,"), 12);
  EXPECT_NE(html.find(">&lt;/s&gt;</text>"), std::string::npos);
  EXPECT_NE(html.find(">validation example 1</summary>"), std::string::npos);
  // Self-contained: no scripts, nothing fetched.
  EXPECT_EQ(html.find("<script"), std::string::npos);
  EXPECT_EQ(html.find("src=\"http"), std::string::npos);
  EXPECT_EQ(html.find("href=\"http"), std::string::npos);
  // Written atomically: no temporary file is left.
  for (const auto& entry : fs::directory_iterator(run)) {
    EXPECT_EQ(entry.path().filename().string().find(".tmp"), std::string::npos) << entry.path();
  }
}

// train.ema_decay's ema_<metric> keys are curves of their own; ema_seconds is bookkeeping.
TEST_F(ReportTest, TheMovingAveragesMetricsAreCurvesItsTimingIsNot) {
  const fs::path dir = directory_ / "runs" / "copy" / "ema";
  fs::create_directories(dir);
  WriteFile(dir / "metrics.jsonl",
            "{\"kind\":\"train\",\"step\":10,\"loss\":2.0}\n"
            "{\"kind\":\"eval\",\"split\":\"valid\",\"step\":10,\"loss\":1.9,\"exact_match\":10,"
            "\"seconds\":0.5,\"ema_loss\":2.1,\"ema_exact_match\":5,\"ema_seconds\":0.5}\n"
            "{\"kind\":\"train\",\"step\":20,\"loss\":1.5}\n"
            "{\"kind\":\"eval\",\"split\":\"valid\",\"step\":20,\"loss\":1.4,\"exact_match\":30,"
            "\"seconds\":0.5,\"ema_loss\":1.3,\"ema_exact_match\":35,\"ema_seconds\":0.5}\n");
  const fs::path output = dir / "report.html";
  ASSERT_TRUE(WriteRunReport({dir.string()}, output.string()).ok());
  const std::string html = ReadFile(output);
  EXPECT_NE(html.find(">Validation ema exact match</text>"), std::string::npos);
  EXPECT_NE(html.find(">Validation ema loss</text>"), std::string::npos);
  EXPECT_EQ(html.find("ema seconds"), std::string::npos);
}

TEST_F(ReportTest, MissingOptionalFilesOmitTheirSections) {
  const fs::path run = MakeRun("bare", /*optional_files=*/false, "");
  const absl::StatusOr<std::string> html = RenderRunReport({run.string()});
  ASSERT_TRUE(html.ok()) << html.status();
  EXPECT_NE(html->find("id=\"training\""), std::string::npos);
  EXPECT_NE(html->find("id=\"metrics\""), std::string::npos);
  EXPECT_EQ(html->find("id=\"config\""), std::string::npos);
  EXPECT_EQ(html->find("id=\"samples\""), std::string::npos);
  EXPECT_EQ(html->find("id=\"attention\""), std::string::npos);
  EXPECT_EQ(html->find("href=\"#samples\""), std::string::npos);
}

TEST_F(ReportTest, SeveralRunsOverlayWithOneColourEach) {
  const fs::path first = MakeRun("scaled", true, "scaled_dot");
  const fs::path second = MakeRun("additive", true, "additive");
  const absl::StatusOr<std::string> html = RenderRunReport({first.string(), second.string()});
  ASSERT_TRUE(html.ok()) << html.status();
  EXPECT_NE(html->find("<h1>2 runs</h1>"), std::string::npos);
  // The token-accuracy chart has one curve per run, in the runs' colours.
  const size_t chart = html->find(">Validation token accuracy</text>");
  ASSERT_NE(chart, std::string::npos);
  const std::string svg = html->substr(chart, html->find("</svg>", chart) - chart);
  EXPECT_EQ(Count(svg, "<path"), 2);
  EXPECT_NE(svg.find("stroke=\"#1f77b4\""), std::string::npos);
  EXPECT_NE(svg.find("stroke=\"#ff7f0e\""), std::string::npos);
  EXPECT_NE(svg.find(">copy/additive</text>"), std::string::npos);
  // The loss chart: train and valid per run.
  const size_t loss = html->find(">Loss (train solid, valid dashed)</text>");
  ASSERT_NE(loss, std::string::npos);
  EXPECT_EQ(Count(html->substr(loss, html->find("</svg>", loss) - loss), "<path"), 4);
  // The config key that differs is listed.
  EXPECT_NE(html->find("<td class=\"mono\">model.attention</td>"), std::string::npos);
  EXPECT_EQ(html->find("<td class=\"mono\">model.d_model</td>"), std::string::npos);
}

TEST_F(ReportTest, MalformedMetricsLineIsAnErrorNamingFileAndLine) {
  const fs::path run = MakeRun("broken", false, "");
  const fs::path metrics = run / "metrics.jsonl";
  WriteFile(
      metrics,
      "{\"kind\":\"train\",\"step\":1,\"loss\":2}\n\n{\"kind\":\"train\",\"step\":2,\"loss\"\n"
      "{\"kind\":\"train\",\"step\":3,\"loss\":1}\n");
  const absl::Status status = WriteRunReport({run.string()}, (run / "report.html").string());
  ASSERT_FALSE(status.ok());
  EXPECT_NE(status.message().find(metrics.string() + ":3: not valid JSON"), std::string::npos)
      << status;
  EXPECT_FALSE(fs::exists(run / "report.html"));

  WriteFile(metrics, "{\"kind\":\"train\",\"step\":1}\n[1, 2]\n");
  absl::StatusOr<std::vector<MetricsRecord>> records = ReadMetricsLog(metrics.string());
  ASSERT_FALSE(records.ok());
  EXPECT_NE(records.status().message().find("metrics.jsonl:2: expected a JSON object"),
            std::string::npos)
      << records.status();

  WriteFile(metrics, "{\"step\":1,\"loss\":2}\n");
  records = ReadMetricsLog(metrics.string());
  ASSERT_FALSE(records.ok());
  EXPECT_NE(records.status().message().find("metrics.jsonl:1: missing the string field \"kind\""),
            std::string::npos)
      << records.status();
}

TEST_F(ReportTest, UnterminatedLastLineIsARecordBeingWritten) {
  const fs::path metrics = directory_ / "metrics.jsonl";
  WriteFile(metrics,
            "{\"kind\":\"train\",\"step\":1,\"loss\":2.5,\"note\":\"x\",\"lr\":null}\n"
            "{\"kind\":\"train\",\"st");
  const absl::StatusOr<std::vector<MetricsRecord>> records = ReadMetricsLog(metrics.string());
  ASSERT_TRUE(records.ok()) << records.status();
  ASSERT_EQ(records->size(), 1u);
  EXPECT_EQ((*records)[0].kind, "train");
  EXPECT_EQ((*records)[0].Get("loss"), 2.5);
  EXPECT_FALSE((*records)[0].Has("note"));
  EXPECT_TRUE(std::isnan((*records)[0].Get("lr")));
}

TEST_F(ReportTest, BadAttentionTokensAreAnErrorNamingTheKey) {
  const fs::path run = MakeRun("tokens", true, "scaled_dot");
  NamedTensors tensors = {
      {"example0.cross", Tensor::FromFloats(std::vector<float>(4, 0.25f), {1, 2, 2})}};
  ASSERT_TRUE(WriteSafetensors((run / "attention.safetensors").string(), tensors,
                               {{"example0.source_tokens", "not json"}})
                  .ok());
  const absl::StatusOr<std::string> html = RenderRunReport({run.string()});
  ASSERT_FALSE(html.ok());
  EXPECT_NE(html.status().message().find("\"example0.source_tokens\" is not a JSON array"),
            std::string::npos)
      << html.status();
}

TEST_F(ReportTest, FailedReportLeavesTheExistingFileAlone) {
  const fs::path output = directory_ / "report.html";
  WriteFile(output, "previous report");
  EXPECT_FALSE(WriteRunReport({(directory_ / "no_such_run").string()}, output.string()).ok());
  EXPECT_FALSE(WriteRunReport({}, output.string()).ok());
  EXPECT_EQ(ReadFile(output), "previous report");
  const absl::Status not_a_run = WriteRunReport({directory_.string()}, output.string());
  ASSERT_FALSE(not_a_run.ok());
  EXPECT_NE(not_a_run.message().find("no metrics.jsonl"), std::string::npos) << not_a_run;
  EXPECT_EQ(ReadFile(output), "previous report");
}

}  // namespace
}  // namespace attnlab::experiments
