// The profiler: nothing is recorded when off; when on, op spans (forward and backward
// separately) with the right counts, nesting, self time, flop counts and shares; worker
// spans for ParallelFor; and a Chrome trace that parses.
#include "framework/profiler/profiler.h"

#include <nlohmann/json.hpp>
#include <string>

#include "framework/ops/ops.h"
#include "framework/parallel/parallel_for.h"
#include "framework/profiler/chrome_trace.h"
#include "framework/profiler/summary.h"
#include "gtest/gtest.h"
#include "tests/support/thread_counts.h"

namespace attnlab::profiler {
namespace {

using Json = nlohmann::json;

size_t SpanCount(const Recording& recording) {
  size_t count = 0;
  for (const ThreadSpans& thread : recording.threads_spans) count += thread.spans.size();
  return count;
}

const OpRow* FindRow(const std::vector<OpRow>& rows, const std::string& name) {
  for (const OpRow& row : rows) {
    if (row.name == name) return &row;
  }
  return nullptr;
}

// relu(x @ w) summed, forward and backward: x [2, 3], w [3, 4], both requiring grad.
void MatmulReluStep() {
  Tensor x = Tensor::Full({2, 3}, 0.5f);
  Tensor w = Tensor::Full({3, 4}, 0.25f);
  x.set_requires_grad(true);
  w.set_requires_grad(true);
  Sum(Relu(Matmul(x, w))).backward();
}

TEST(ProfilerTest, RecordsNothingWhenOff) {
  Start();
  (void)Stop();
  ASSERT_FALSE(Enabled());
  MatmulReluStep();
  // A second Stop() hands back whatever was recorded since the first: nothing.
  const Recording recording = Stop();
  EXPECT_EQ(SpanCount(recording), 0u);
}

TEST(ProfilerTest, ForwardAndBackwardOpsAreCountedSeparately) {
  Start();
  MatmulReluStep();
  const Recording recording = Stop();
  const Summary summary = Summarize(recording, 1);
  for (const char* name : {"matmul", "relu", "sum"}) {
    const OpRow* forward = FindRow(summary.forward, name);
    const OpRow* backward = FindRow(summary.backward, name);
    ASSERT_NE(forward, nullptr) << name;
    ASSERT_NE(backward, nullptr) << name;
    EXPECT_EQ(forward->calls, 1) << name;
    EXPECT_EQ(backward->calls, 1) << name;
  }
  // Ops that backward closures call (sum's backward broadcasts with ops) belong to the
  // backward span: no forward row gains a call from them.
  EXPECT_EQ(FindRow(summary.forward, "mul_scalar"), nullptr);
  EXPECT_EQ(summary.backward.size(), 3u);
}

TEST(ProfilerTest, NestedOpsGiveSelfTimeAtMostTotalTime) {
  Start();
  MatmulReluStep();
  const Recording recording = Stop();
  const std::vector<Span>& spans = recording.threads_spans.at(0).spans;
  bool found_nested = false;
  for (size_t i = 0; i < spans.size(); ++i) {
    const Span& span = spans[i];
    EXPECT_LE(span.self_ns, span.duration_ns);
    EXPECT_GE(span.self_ns, 0);
    // sum reshapes its result: a reshape span inside the sum span, one level deeper.
    if (span.kind == SpanKind::kForwardOp && span.op == OpKind::kSum) {
      for (size_t j = i + 1;
           j < spans.size() && spans[j].start_ns < span.start_ns + span.duration_ns; ++j) {
        if (spans[j].kind == SpanKind::kForwardOp && spans[j].op == OpKind::kReshape &&
            spans[j].depth == span.depth + 1) {
          found_nested = true;
          EXPECT_LE(spans[j].start_ns + spans[j].duration_ns, span.start_ns + span.duration_ns);
          EXPECT_LE(span.self_ns, span.duration_ns - spans[j].duration_ns);
        }
      }
    }
  }
  EXPECT_TRUE(found_nested);
}

TEST(ProfilerTest, SharesOfForwardBackwardAndOutsideAddUpToOne) {
  Start();
  MatmulReluStep();
  MatmulReluStep();
  const Summary summary = Summarize(Stop(), 2);
  double shares = 0.0;
  for (const OpRow& row : summary.forward) shares += row.share;
  for (const OpRow& row : summary.backward) shares += row.share;
  shares += summary.outside_ops_ms / summary.wall_ms;
  EXPECT_NEAR(shares, 1.0, 1e-9);
  EXPECT_GT(summary.forward_ms, 0.0);
  EXPECT_GT(summary.backward_ms, 0.0);
}

TEST(ProfilerTest, MatmulFlopsComeFromTheShapes) {
  Start();
  MatmulReluStep();
  Tensor x = Tensor::Full({5, 3}, 1.0f);
  const Tensor weight = Tensor::Full({4, 3}, 1.0f);
  (void)Linear(x, weight, Tensor());
  const Summary summary = Summarize(Stop(), 1);
  // [2, 3] @ [3, 4]: 2 * 3 * 4 multiply-adds, 2 flops each = 48. Backward computes
  // dx = g w^T and dw = x^T g, one product each: 96.
  EXPECT_DOUBLE_EQ(FindRow(summary.forward, "matmul")->flops, 48.0);
  EXPECT_DOUBLE_EQ(FindRow(summary.backward, "matmul")->flops, 96.0);
  // [5, 3] x [4, 3]^T: 5 * 4 outputs of 3 multiply-adds = 120.
  EXPECT_DOUBLE_EQ(FindRow(summary.forward, "linear")->flops, 120.0);
  // relu reads 2 x 4 floats (32 bytes) and writes a fresh output (64 bytes, a size class).
  const OpRow* relu = FindRow(summary.forward, "relu");
  EXPECT_EQ(relu->bytes_allocated, 64);
  EXPECT_DOUBLE_EQ(relu->bytes_moved, 32.0 + 64.0);
}

TEST(ProfilerTest, ParallelForRecordsARegionAndEachThreadsShare) {
  const Recording recording = testing::OnThreads(2, [] {
    Start();
    ParallelFor(2, 1, [](int64_t, int64_t) {});
    return Stop();
  });
  const Summary summary = Summarize(recording, 1);
  EXPECT_EQ(summary.parallel_for_regions, 1);
  int workers = 0;
  for (const ThreadSpans& thread : recording.threads_spans) {
    for (const Span& span : thread.spans) workers += span.kind == SpanKind::kWorker;
  }
  EXPECT_EQ(workers, 2);  // one busy span per thread of the region
  EXPECT_GT(summary.parallel_fraction(), 0.0);
}

TEST(ProfilerTest, ChromeTraceParsesWithNestedCompleteEventsOnTheMainThread) {
  Start();
  {
    MarkerScope step("step 1");
    MatmulReluStep();
  }
  const Json trace = Json::parse(ChromeTraceJson(Stop()));
  const Json& events = trace.at("traceEvents");
  const Json* marker = nullptr;
  int complete_on_main = 0;
  bool thread_named = false;
  for (const Json& event : events) {
    if (event.at("ph") == "M" && event.at("name") == "thread_name" && event.at("tid") == 0) {
      thread_named = event.at("args").at("name") == "main";
    }
    if (event.at("ph") != "X" || event.at("tid") != 0) continue;
    ++complete_on_main;
    if (event.at("name") == "step 1") marker = &event;
  }
  EXPECT_TRUE(thread_named);
  ASSERT_NE(marker, nullptr);
  EXPECT_GE(complete_on_main, 7);  // the marker, backward, 3 forward and 3 backward ops
  const double begin = marker->at("ts"), end = begin + marker->at("dur").get<double>();
  for (const Json& event : events) {
    if (event.at("ph") != "X" || event.at("cat") == "phase") continue;
    const double ts = event.at("ts");
    EXPECT_GE(ts, begin) << event.dump();
    EXPECT_LE(ts + event.at("dur").get<double>(), end + 1e-3) << event.dump();
  }
}

}  // namespace
}  // namespace attnlab::profiler
