#include "framework/profiler/chrome_trace.h"

#include <algorithm>
#include <nlohmann/json.hpp>
#include <vector>

#include "absl/strings/str_cat.h"
#include "framework/io/atomic_file.h"

namespace attnlab::profiler {
namespace {

using Json = nlohmann::json;

constexpr int kProcessId = 1;

double Microseconds(int64_t ns) { return static_cast<double>(ns) / 1e3; }

const char* Category(SpanKind kind) {
  switch (kind) {
    case SpanKind::kForwardOp:
      return "forward";
    case SpanKind::kBackwardOp:
      return "backward";
    case SpanKind::kLayer:
      return "layer";
    case SpanKind::kParallelRegion:
    case SpanKind::kWorker:
      return "parallel";
    case SpanKind::kMarker:
      return "phase";
  }
  return "";
}

Json CompleteEvent(std::string name, const char* category, int tid, int64_t start_ns,
                   int64_t duration_ns) {
  return Json{{"ph", "X"},
              {"name", std::move(name)},
              {"cat", category},
              {"pid", kProcessId},
              {"tid", tid},
              {"ts", Microseconds(start_ns)},
              {"dur", Microseconds(duration_ns)}};
}

Json SpanEvent(const Recording& recording, int tid, const Span& span) {
  const bool is_op = span.kind == SpanKind::kForwardOp || span.kind == SpanKind::kBackwardOp;
  const std::string name = is_op ? std::string(OpName(span.op)) : recording.Name(span.name);
  Json event = CompleteEvent(name, Category(span.kind), tid, span.start_ns, span.duration_ns);
  if (is_op) {
    Json args = {{"self_us", Microseconds(span.self_ns)},
                 {"bytes_read", span.bytes_read},
                 {"bytes_allocated", span.bytes_allocated}};
    if (span.flops > 0) args["flops"] = span.flops;
    if (span.layer != 0) args["layer"] = recording.Name(span.layer);
    if (!span.counted) args["inside_backward"] = true;
    event["args"] = std::move(args);
  }
  return event;
}

Json MetadataEvent(const char* name, int tid, Json args) {
  return Json{{"ph", "M"}, {"name", name}, {"pid", kProcessId}, {"tid", tid}, {"args", args}};
}

// The layers around `layer`, outermost first.
std::vector<uint32_t> LayerChain(const Recording& recording, uint32_t layer) {
  std::vector<uint32_t> chain;
  for (int guard = 0; layer != 0 && guard < 64; ++guard) {
    chain.insert(chain.begin(), layer);
    layer = recording.layer_parent[layer];
  }
  return chain;
}

// "<layer> (backward)" spans: for each level of the layer tree, one span over each run of
// consecutive backward ops (the engine runs them one after another) recorded inside the
// same layer at that level. Runs of a deeper level lie inside runs of the levels above,
// so the spans nest as the forward's layer spans do.
void AppendBackwardLayerSpans(const Recording& recording, const ThreadSpans& thread, Json& events) {
  std::vector<const Span*> backward;
  std::vector<std::vector<uint32_t>> chains;
  size_t levels = 0;
  for (const Span& span : thread.spans) {
    if (span.kind != SpanKind::kBackwardOp) continue;
    backward.push_back(&span);
    chains.push_back(LayerChain(recording, span.layer));
    levels = std::max(levels, chains.back().size());
  }
  for (size_t level = 0; level < levels; ++level) {
    size_t run_begin = 0;
    for (size_t i = 0; i <= backward.size(); ++i) {
      auto key = [&](size_t k) { return level < chains[k].size() ? chains[k][level] : 0u; };
      if (i < backward.size() && i > run_begin && key(i) == key(run_begin) &&
          backward[i]->depth == backward[run_begin]->depth) {
        continue;
      }
      if (i > run_begin && key(run_begin) != 0) {
        const Span& first = *backward[run_begin];
        const Span& last = *backward[i - 1];
        events.push_back(CompleteEvent(absl::StrCat(recording.Name(key(run_begin)), " (backward)"),
                                       "layer", thread.tid, first.start_ns,
                                       last.start_ns + last.duration_ns - first.start_ns));
      }
      run_begin = i;
    }
  }
}

}  // namespace

std::string ChromeTraceJson(const Recording& recording) {
  Json events = Json::array();
  events.push_back(MetadataEvent("process_name", 0, {{"name", "attnlab"}}));
  for (const ThreadSpans& thread : recording.threads_spans) {
    events.push_back(MetadataEvent("thread_name", thread.tid, {{"name", thread.name}}));
    events.push_back(MetadataEvent("thread_sort_index", thread.tid, {{"sort_index", thread.tid}}));
    for (const Span& span : thread.spans) events.push_back(SpanEvent(recording, thread.tid, span));
    AppendBackwardLayerSpans(recording, thread, events);
  }
  return Json{{"traceEvents", std::move(events)}, {"displayTimeUnit", "ms"}}.dump();
}

absl::Status WriteChromeTrace(const Recording& recording, const std::string& path) {
  return WriteFileAtomically(path, ChromeTraceJson(recording));
}

}  // namespace attnlab::profiler
