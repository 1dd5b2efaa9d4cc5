// The Chrome trace-event JSON writer: a Recording as a file that Perfetto
// (ui.perfetto.dev) and chrome://tracing open.
//
// One track per thread (the main thread first, then the OpenMP workers, named by "M"
// thread_name events), one "X" complete event per span with ts and dur in microseconds.
// On the main thread, op spans nest under layer spans, and backward op spans under
// "<layer> (backward)" spans made from each run of consecutive backward ops recorded in
// the same layer. Event args carry self time, flops, bytes and the layer.
#pragma once

#include <string>

#include "absl/status/status.h"
#include "framework/profiler/recording.h"

namespace attnlab::profiler {

// The trace as JSON text.
std::string ChromeTraceJson(const Recording& recording);
// Writes it to `path`, atomically.
absl::Status WriteChromeTrace(const Recording& recording, const std::string& path);

}  // namespace attnlab::profiler
