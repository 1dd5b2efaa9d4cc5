#include "framework/profiler/chrome_trace.h"

#include <nlohmann/json.hpp>

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

// "<layer> (backward)" spans over each run of consecutive outermost backward ops (the
// engine runs them one after another) recorded in the same layer.
void AppendBackwardLayerSpans(const Recording& recording, const ThreadSpans& thread, Json& events) {
  const Span* run_first = nullptr;
  const Span* run_last = nullptr;
  auto flush = [&] {
    if (run_first != nullptr && run_first->layer != 0) {
      events.push_back(CompleteEvent(
          absl::StrCat(recording.Name(run_first->layer), " (backward)"), "layer", thread.tid,
          run_first->start_ns, run_last->start_ns + run_last->duration_ns - run_first->start_ns));
    }
    run_first = run_last = nullptr;
  };
  for (const Span& span : thread.spans) {
    if (span.kind != SpanKind::kBackwardOp) continue;
    if (run_first != nullptr &&
        (span.layer != run_first->layer || span.depth != run_first->depth)) {
      flush();
    }
    if (run_first == nullptr) run_first = &span;
    run_last = &span;
  }
  flush();
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
