// What the profiler records: one Span per timed scope, per thread, and the name table.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "framework/ops/op_kind.h"

namespace attnlab::profiler {

enum class SpanKind : uint8_t {
  kForwardOp,       // a public op's forward
  kBackwardOp,      // an autograd node's backward
  kLayer,           // a layer's forward
  kParallelRegion,  // a ParallelFor (on its calling thread) or a oneDNN primitive execution
  kWorker,          // one thread's share of a ParallelFor
  kMarker,          // a named phase
};

struct Span {
  SpanKind kind;
  OpKind op{};          // kForwardOp, kBackwardOp
  uint32_t name = 0;    // kLayer, kParallelRegion, kWorker, kMarker: id in Recording::names
  uint32_t layer = 0;   // ops: the innermost layer they ran in (backward: recorded in)
  uint16_t depth = 0;   // nesting depth on its thread (0: outermost)
  bool counted = true;  // op spans: false when inside a backward span (that span owns the time)
  bool outermost_region = false;  // kParallelRegion: not inside another region on its thread
  int64_t start_ns = 0;           // since Start()
  int64_t duration_ns = 0;
  int64_t self_ns = 0;  // op spans: duration minus the counted op spans directly inside
  double flops = 0.0;   // matmul-family ops
  int64_t bytes_read = 0;
  int64_t bytes_allocated = 0;       // caching-allocator bytes handed out during the span
  int64_t self_bytes_allocated = 0;  // minus those of the counted op spans inside
};

struct ThreadSpans {
  int tid = 0;  // 0: the main thread (the one that called Start())
  std::string name;
  std::vector<Span> spans;  // in order of opening
};

struct Recording {
  int64_t wall_ns = 0;  // Start() to Stop()
  // When Start() ran, as std::chrono::steady_clock nanoseconds since its epoch: spans
  // measured elsewhere on that clock (e.g. MPI collectives) convert to start_ns.
  int64_t origin_steady_ns = 0;
  int threads = 1;                         // OpenMP threads available during the recording
  std::vector<ThreadSpans> threads_spans;  // main thread first
  std::vector<std::string> names;          // by id; names[0] is ""
  std::vector<uint32_t> layer_parent;      // by id: the layer a layer first opened inside
  const std::string& Name(uint32_t id) const { return names[id]; }
};

}  // namespace attnlab::profiler
