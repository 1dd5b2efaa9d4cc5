// The profiler's per-layer roll-up on a tiny Transformer: layers are named by their
// dotted module names, and backward time rolls up to the layer a node was recorded in
// and to every layer around it.
#include <map>
#include <string>

#include "framework/profiler/profiler.h"
#include "framework/profiler/summary.h"
#include "gtest/gtest.h"
#include "tests/layers/tiny_transformer.h"

namespace attnlab::nn::testing {
namespace {

TEST(ProfilerLayersTest, ForwardAndBackwardRollUpToDottedLayerNames) {
  auto model = MakeTransformer(TinyTransformerOptions());
  profiler::Start();
  SequenceLoss(model->Forward(TinySource(), TinyTargetInput()), TinyTargetOutput()).backward();
  const profiler::Summary summary = profiler::Summarize(profiler::Stop(), 1);
  std::map<std::string, profiler::LayerRow> rows;
  for (const profiler::LayerRow& row : summary.layers) rows[row.name] = row;
  for (const char* name :
       {"transformer", "encoder", "encoder.layers.0", "encoder.layers.0.self_attn",
        "encoder.layers.0.self_attn.q_proj", "encoder.layers.0.feed_forward",
        "decoder.layers.0.cross_attn", "decoder.layers.0.cross_attn.attention", "generator"}) {
    ASSERT_TRUE(rows.count(name)) << name;
    EXPECT_EQ(rows[name].calls, 1) << name;
    EXPECT_GT(rows[name].forward_ms, 0.0) << name;
    EXPECT_GT(rows[name].backward_ms, 0.0) << name;
  }
  // Nesting follows the module tree, and a layer's time contains its children's.
  EXPECT_EQ(rows["transformer"].depth, 0);
  EXPECT_EQ(rows["encoder.layers.0"].depth, 2);
  EXPECT_GE(rows["encoder.layers.0"].backward_ms,
            rows["encoder.layers.0.feed_forward"].backward_ms);
  EXPECT_GE(rows["transformer"].forward_ms, rows["encoder"].forward_ms);
  // The loss is outside every layer.
  EXPECT_EQ(summary.layers.back().name, "(outside any layer)");
}

}  // namespace
}  // namespace attnlab::nn::testing
