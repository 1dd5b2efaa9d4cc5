// `attnlab profile` and `attnlab train --profile` end to end: the tables on stdout and in
// profile.txt, and a trace.json that parses, at tiny sizes.
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "gtest/gtest.h"
#include "tests/experiments/cli_runner.h"
#include "tests/support/file_contents.h"
#include "tests/support/temp_dir.h"

#ifndef ATTNLAB_CLI
#error "ATTNLAB_CLI (the attnlab binary) must be defined by the build"
#endif
#ifndef ATTNLAB_SOURCE_DIR
#error "ATTNLAB_SOURCE_DIR must be defined by the build"
#endif

namespace attnlab::experiments {
namespace {

namespace fs = std::filesystem;
using attnlab::testing::ReadFile;
using testing::CliOutput;
using Json = nlohmann::json;

// Tiny sizes for experiments/recipes/copy/transformer.toml.
constexpr char kTinySets[] =
    "--set task.train_size=64 --set task.valid_size=8 --set task.test_size=8 "
    "--set model.d_model=16 --set model.d_ff=32 --set model.heads=2 "
    "--set model.encoder_layers=1 --set model.decoder_layers=1 --set train.batch_tokens=160";

class ProfileCliTest : public attnlab::testing::TempDirTest {
 protected:
  // `attnlab ARGUMENTS` in the test directory.
  CliOutput Run(const std::string& arguments) { return testing::RunAttnlab(directory_, arguments); }

  // A trace with complete events on the main thread (tid 0), layer spans among them, and
  // on every track events that nest strictly (no partial overlap), as Perfetto needs.
  static void ExpectTrace(const fs::path& path) {
    ASSERT_TRUE(fs::exists(path)) << path;
    const Json trace = Json::parse(ReadFile(path));
    int main_events = 0, layer_events = 0, backward_layer_events = 0;
    std::map<int, std::vector<std::pair<double, double>>> tracks;  // tid -> (begin, end)
    for (const Json& event : trace.at("traceEvents")) {
      if (event.at("ph") != "X") continue;
      main_events += event.at("tid") == 0;
      layer_events += event.at("cat") == "layer";
      backward_layer_events += event.at("name") == "decoder.layers.0 (backward)";
      const double begin = event.at("ts");
      tracks[event.at("tid")].emplace_back(begin, begin + event.at("dur").get<double>());
    }
    EXPECT_GT(main_events, 100);
    EXPECT_GT(layer_events, 10);
    EXPECT_GE(backward_layer_events, 1);
    constexpr double kSlack = 1e-3;  // microseconds: the printed precision
    for (auto& [tid, spans] : tracks) {
      std::sort(spans.begin(), spans.end(), [](const auto& a, const auto& b) {
        return a.first != b.first ? a.first < b.first : a.second > b.second;
      });
      std::vector<double> open_ends;
      for (const auto& [begin, end] : spans) {
        while (!open_ends.empty() && open_ends.back() <= begin + kSlack) open_ends.pop_back();
        if (!open_ends.empty()) {
          EXPECT_LE(end, open_ends.back() + kSlack) << "tid " << tid << " at " << begin;
        }
        open_ends.push_back(end);
      }
    }
  }
};

TEST_F(ProfileCliTest, ProfileWritesTablesAndATrace) {
  const CliOutput output = Run(std::string("profile '") + ATTNLAB_SOURCE_DIR +
                               "/experiments/recipes/copy/transformer.toml' --steps 2 --warmup 1 "
                               "--threads 1 --out prof " +
                               kTinySets);
  ASSERT_EQ(output.exit_code, 0) << output.err;
  for (const char* part : {"profile: 2 steps", "forward ops:", "backward ops:", "linear",
                           "decoder.layers.0.cross_attn.attention", "threads (1)"}) {
    EXPECT_NE(output.out.find(part), std::string::npos) << part << " in\n" << output.out;
  }
  const std::string tables = ReadFile(directory_ / "prof" / "profile.txt");
  EXPECT_NE(tables.find("forward ops:"), std::string::npos);
  EXPECT_EQ(output.out.rfind(tables, 0), 0u);  // stdout starts with the tables
  ExpectTrace(directory_ / "prof" / "trace.json");
}

TEST_F(ProfileCliTest, TrainWithProfileWritesIntoTheRunDirectory) {
  const CliOutput output =
      Run(std::string("train '") + ATTNLAB_SOURCE_DIR +
          "/experiments/recipes/copy/transformer.toml' --profile --quiet --threads 1 "
          "--run_dir run --set train.max_steps=4 --set train.eval_every=4 " +
          kTinySets);
  ASSERT_EQ(output.exit_code, 0) << output.err;
  // A 4-step run profiles its second half.
  EXPECT_NE(ReadFile(directory_ / "run" / "profile.txt").find("profile: 2 steps"),
            std::string::npos);
  ExpectTrace(directory_ / "run" / "trace.json");
}

TEST_F(ProfileCliTest, BadStepCountIsAOneLineError) {
  const CliOutput output = Run(std::string("profile '") + ATTNLAB_SOURCE_DIR +
                               "/experiments/recipes/copy/transformer.toml' --steps 0");
  EXPECT_EQ(output.exit_code, 1);
  EXPECT_NE(output.err.find("--steps must be >= 1"), std::string::npos) << output.err;
  EXPECT_TRUE(output.out.empty());
}

}  // namespace
}  // namespace attnlab::experiments
