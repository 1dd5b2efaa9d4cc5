// attnlab bench: the analytic FLOP count against a hand-worked configuration, the
// reference shapes, and the command end to end (JSON with every field, positive values,
// a quiet steady state) with its errors; the attention sweep by length.

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "experiments/bench/flop_count.h"
#include "experiments/bench/reference_config.h"
#include "framework/backend/dnnl/dnnl_backend.h"
#include "gtest/gtest.h"
#include "tests/experiments/cli_runner.h"
#include "tests/support/file_contents.h"

namespace attnlab::experiments {
namespace {

namespace fs = std::filesystem;
using testing::CliOutput;

TEST(ReferenceConfigTest, ShapesAreThoseOfTheDesign) {
  ASSERT_EQ(ReferenceConfigs().size(), 3u);
  const ReferenceConfig base = FindReferenceConfig("base").value();
  EXPECT_EQ(base.model.d_model, 512);
  EXPECT_EQ(base.model.attention.heads, 8);
  EXPECT_EQ(base.model.d_ff, 2048);
  EXPECT_EQ(base.model.encoder_layers, 6);
  EXPECT_EQ(base.model.decoder_layers, 6);
  EXPECT_EQ(base.vocab, 8000);
  EXPECT_EQ(base.batch, 32);
  EXPECT_EQ(base.length, 64);
  const absl::StatusOr<ReferenceConfig> huge = FindReferenceConfig("huge");
  EXPECT_FALSE(huge.ok());
  EXPECT_NE(huge.status().message().find("'huge'"), std::string::npos);
}

// tiny: B = 64, S = T = 24, d = 128, f = 512, V = 32, 2 + 2 layers; B·S = 1536 tokens.
//   encoder layer: projections 8·1536·128² = 201,326,592
//                  scores + weighted sum 4·64·24²·128 = 18,874,368
//                  feed-forward 4·1536·128·512 = 402,653,184          -> 622,854,144
//   decoder layer: self-attention 201,326,592 + 18,874,368
//                  cross-attention Q, out 4·1536·128² = 100,663,296; K, V the same;
//                  scores + weighted sum 4·64·24·24·128 = 18,874,368
//                  feed-forward 402,653,184                           -> 843,055,104
//   generator: 2·1536·128·32 = 12,582,912
//   forward: 2·622,854,144 + 2·843,055,104 + 12,582,912 = 2,944,401,408; step: x3.
TEST(FlopCountTest, TinyMatchesTheHandWorkedCount) {
  const TrainingStepFlops flops = CountTrainingStepFlops(FindReferenceConfig("tiny").value());
  EXPECT_EQ(flops.encoder_layer, 622854144.0);
  EXPECT_EQ(flops.decoder_layer, 843055104.0);
  EXPECT_EQ(flops.generator, 12582912.0);
  EXPECT_EQ(flops.forward, 2944401408.0);
  EXPECT_EQ(flops.training_step, 8833204224.0);
}

// Source and target lengths enter differently (cross-attention K, V on the source).
TEST(FlopCountTest, ScalesWithEachDimensionAsTheFormulaSays) {
  ReferenceConfig config{"one", ReferenceModel(1, 1, 1, 1), 1, 1, 1};
  // Encoder 8 + 4 + 4 = 16; decoder 8 + 4 + 4 + 4 + 4 + 4 = 28; generator 2.
  EXPECT_EQ(CountTrainingStepFlops(config).forward, 46.0);
  config.vocab = 10;  // generator 20
  EXPECT_EQ(CountTrainingStepFlops(config).forward, 64.0);
  config.length = 2;  // encoder 16+16+8 = 40; decoder 16+16+8+8+16+8 = 72; generator 40
  EXPECT_EQ(CountTrainingStepFlops(config).forward, 152.0);
}

// `attnlab ARGUMENTS`, capturing stdout and stderr.
CliOutput RunCli(const std::string& arguments) {
  return testing::RunAttnlab(::testing::TempDir(), arguments);
}

TEST(BenchCommandTest, TinyJsonHasEveryFieldWithPositiveValues) {
  const CliOutput output =
      RunCli("bench --model tiny --steps 2 --warmup 1 --json --threads 1 --decode_length 16");
  ASSERT_EQ(output.exit_code, 0) << output.err;
  const nlohmann::json json = nlohmann::json::parse(output.out);
  EXPECT_EQ(json["model"], "tiny");
  EXPECT_EQ(json["dtype"], "f32");
  EXPECT_EQ(json["threads"], 1);
  EXPECT_EQ(json["config"]["d_model"], 128);
  EXPECT_EQ(json["config"]["batch"], 64);
  EXPECT_GT(json["parameters"].get<int64_t>(), 0);
  const nlohmann::json& training = json["training"];
  EXPECT_EQ(training["steps"], 2);
  EXPECT_EQ(training["flops_per_step"].get<double>(), 8833204224.0);
  for (const char* field :
       {"step_ms_median", "step_ms_min", "step_ms_max", "target_tokens_per_second",
        "achieved_gflops", "sgemm_1024_gflops", "mfu", "peak_rss_bytes", "allocator_peak_bytes",
        "total_system_allocations", "total_primitives_created", "final_loss"}) {
    ASSERT_TRUE(training.contains(field)) << field;
    EXPECT_GT(training[field].get<double>(), 0.0) << field;
  }
  // The counters of the timed steps are present (whether they are 0 is what they measure).
  EXPECT_TRUE(training["steady_system_allocations"].is_number_unsigned());
  EXPECT_TRUE(training["steady_primitives_created"].is_number_unsigned());
  EXPECT_NEAR(training["target_tokens_per_second"].get<double>(),
              64 * 24 / (training["step_ms_median"].get<double>() * 1e-3), 1e-6 * 64 * 24);
  EXPECT_LT(training["mfu"].get<double>(), 1.5);
  const nlohmann::json& decoding = json["decoding"];
  EXPECT_EQ(decoding["decode_length"], 16);
  for (const char* field : {"greedy_sentences_per_second", "beam4_sentences_per_second",
                            "greedy_recompute_sentences_per_second", "cache_speedup"}) {
    ASSERT_TRUE(decoding.contains(field)) << field;
    EXPECT_GT(decoding[field].get<double>(), 0.0) << field;
  }
}

TEST(BenchCommandTest, TableNamesEveryMeasurement) {
  const CliOutput output =
      RunCli("bench --model tiny --steps 1 --warmup 0 --decode_runs 0 --threads 1");
  ASSERT_EQ(output.exit_code, 0) << output.err;
  for (const char* part : {"target tokens/s", "MFU", "fp32 GEMM ceiling", "peak RSS",
                           "system allocations", "oneDNN primitives", "decoding: skipped"}) {
    EXPECT_NE(output.out.find(part), std::string::npos) << part << " missing from\n" << output.out;
  }
}

// Mixed precision: the same fields, plus the bf16 ceiling, and the loss of the random model
// within bf16 rounding of the f32 run's (same seed, same batch, same dropout masks).
TEST(BenchCommandTest, Bf16ReportsItsCeilingAndTrainsTheSameModel) {
  if (!dnnl_backend::HasNativeBF16()) GTEST_SKIP() << "no native bf16 on this CPU";
  const std::string flags = " --steps 1 --warmup 0 --json --threads 1 --decode_runs 0";
  const CliOutput f32 = RunCli("bench --model tiny --dtype f32" + flags);
  const CliOutput bf16 = RunCli("bench --model tiny --dtype bf16" + flags);
  ASSERT_EQ(f32.exit_code, 0) << f32.err;
  ASSERT_EQ(bf16.exit_code, 0) << bf16.err;
  const nlohmann::json f32_json = nlohmann::json::parse(f32.out);
  const nlohmann::json bf16_json = nlohmann::json::parse(bf16.out);
  EXPECT_EQ(bf16_json["dtype"], "bf16");
  EXPECT_EQ(f32_json["training"]["bf16_gemm_1024_gflops"].get<double>(), 0.0);
  EXPECT_GT(bf16_json["training"]["bf16_gemm_1024_gflops"].get<double>(), 0.0);
  EXPECT_GT(bf16_json["training"]["bf16_ceiling_share"].get<double>(), 0.0);
  const double f32_loss = f32_json["training"]["final_loss"].get<double>();
  const double bf16_loss = bf16_json["training"]["final_loss"].get<double>();
  EXPECT_NE(f32_loss, bf16_loss) << "bf16 changed nothing";
  EXPECT_NEAR(bf16_loss, f32_loss, 0.01 * f32_loss);
}

// A failed command: non-zero exit, nothing on stdout, one stderr line with every part.
void ExpectFails(const std::string& arguments, const std::vector<std::string>& parts) {
  const CliOutput output = RunCli(arguments);
  EXPECT_NE(output.exit_code, 0) << arguments;
  EXPECT_EQ(output.out, "") << arguments;
  EXPECT_EQ(output.err.find('\n'), output.err.size() - 1) << arguments << ": " << output.err;
  for (const std::string& part : parts) {
    EXPECT_NE(output.err.find(part), std::string::npos) << arguments << ": " << output.err;
  }
}

// The attention sweep at two small lengths: one JSON line per length with both paths'
// times and memory, and the fused and composite results equal (same dropout mask).
TEST(BenchCommandTest, AttentionSweepComparesBothPathsAtEachLength) {
  const CliOutput output =
      RunCli("bench --attention_sweep --lengths 16,32 --tokens 64 --steps 1 --threads 1 --json");
  ASSERT_EQ(output.exit_code, 0) << output.err;
  std::istringstream lines(output.out);
  std::string line;
  std::vector<nlohmann::json> rows;
  while (std::getline(lines, line)) rows.push_back(nlohmann::json::parse(line));
  ASSERT_EQ(rows.size(), 2u) << output.out;
  for (size_t i = 0; i < rows.size(); ++i) {
    const nlohmann::json& row = rows[i];
    EXPECT_EQ(row["kind"], "attention_sweep");
    EXPECT_EQ(row["length"], i == 0 ? 16 : 32);
    EXPECT_EQ(row["batch"], i == 0 ? 4 : 2);  // 64 tokens at every length
    for (const char* path : {"fused", "composite"}) {
      EXPECT_GT(row[path]["step_ms_median"].get<double>(), 0.0) << path;
      EXPECT_GT(row[path]["allocator_peak_bytes"].get<int64_t>(), 0) << path;
      EXPECT_GE(row[path]["peak_rss_growth_bytes"].get<int64_t>(), -1) << path;
    }
    EXPECT_LT(row["max_output_difference"].get<double>(), 1e-5);
    EXPECT_LT(row["max_query_grad_difference"].get<double>(), 1e-5);
  }
  const CliOutput table = RunCli("bench --attention_sweep --lengths 8 --tokens 16 --steps 1");
  ASSERT_EQ(table.exit_code, 0) << table.err;
  for (const char* part : {"fused ms", "compos. ms", "speedup", "max diff"}) {
    EXPECT_NE(table.out.find(part), std::string::npos) << part << " missing from\n" << table.out;
  }
}

// --profile_decoding: the greedy decodes with the cache, profiled into two files and
// printed; one profiled step is one decode, and decoding has no backward.
TEST(BenchCommandTest, ProfileDecodingWritesTheProfilersFiles) {
  const std::string directory = ::testing::TempDir() + "/bench_decoding_profile";
  std::filesystem::remove_all(directory);
  const CliOutput output = RunCli(
      "bench --model tiny --steps 1 --warmup 0 --threads 1 --decode_runs 2 --decode_length 8 "
      "--profile_decoding " +
      directory);
  ASSERT_EQ(output.exit_code, 0) << output.err;
  // A step's attention (one query per sentence) runs as the fused op.
  for (const char* part :
       {"profiled (one step = one decode)", "profile: 2 steps", "linear", "copy_into",
        "scaled_dot_product_attention", "decoder.layers.0.self_attn"}) {
    EXPECT_NE(output.out.find(part), std::string::npos) << part << " missing from\n" << output.out;
  }
  EXPECT_GT(std::filesystem::file_size(directory + "/profile.txt"), 0u);
  EXPECT_GT(std::filesystem::file_size(directory + "/trace.json"), 0u);
  EXPECT_TRUE(
      nlohmann::json::parse(testing::ReadFile(directory + "/trace.json")).contains("traceEvents"));
}

TEST(BenchCommandTest, BadFlagsAreClearErrors) {
  ExpectFails("bench --model huge", {"attnlab bench", "unknown model 'huge'", "tiny, small, base"});
  ExpectFails("bench --model tiny --dtype f16", {"--dtype must be f32 or bf16", "'f16'"});
  ExpectFails("bench", {"expected --model tiny|small|base"});
  ExpectFails("bench --model tiny --steps 0", {"--steps must be positive, got 0"});
  ExpectFails("bench --model tiny --decode_length 1000", {"--decode_length must be in [1, 512]"});
  ExpectFails("bench --model tiny --modle tiny", {"unknown flag --modle", "--model"});
  ExpectFails("bench --attention_sweep --model tiny", {"two different benchmarks"});
  ExpectFails("bench --model tiny --lengths 64",
              {"--lengths and --tokens go with --attention_sweep"});
  ExpectFails("bench --attention_sweep --lengths 64,x", {"--lengths must be positive integers"});
  ExpectFails("bench --attention_sweep --lengths 0", {"--lengths must be positive integers"});
  ExpectFails("bench --attention_sweep --lengths 128 --tokens 64",
              {"length 128 is not in [1, --tokens = 64]"});
  ExpectFails("bench --attention_sweep --steps 0", {"--steps must be positive, got 0"});
  ExpectFails("bench --model tiny --decode_runs 0 --profile_decoding out",
              {"--profile_decoding needs --decode_runs >= 1"});
  ExpectFails("bench --model tiny --profile_decoding /proc/attnlab-no-such-dir",
              {"--profile_decoding /proc/attnlab-no-such-dir"});
}

}  // namespace
}  // namespace attnlab::experiments
