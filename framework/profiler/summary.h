// Aggregation of a Recording into the profiler's tables: ops (forward and backward
// separately), layers, and thread utilisation. FormatSummary prints them.
//
// Shares are of the recording's wall time and use self time, so that the forward rows,
// the backward rows and "outside ops" (optimizer, batching, the framework's own glue) add
// up to 100%.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "framework/profiler/recording.h"

namespace attnlab::profiler {

struct OpRow {
  std::string name;
  int64_t calls = 0;
  double total_ms = 0.0;        // including the ops it called
  double self_ms = 0.0;         // excluding them
  double mean_ms = 0.0;         // total_ms / calls
  double share = 0.0;           // self_ms / wall time
  double flops = 0.0;           // matmul family only
  double bytes_moved = 0.0;     // inputs read + bytes allocated (self), approximately
  int64_t bytes_allocated = 0;  // self
  bool matmul_family = false;
  double gflops_per_second() const { return self_ms > 0 ? flops / (self_ms * 1e6) : 0.0; }
  double gigabytes_per_second() const { return self_ms > 0 ? bytes_moved / (self_ms * 1e6) : 0.0; }
};

struct LayerRow {
  std::string name;
  int depth = 0;             // nesting below the outermost layer
  int64_t calls = 0;         // forward calls
  double forward_ms = 0.0;   // inclusive of the layers inside
  double backward_ms = 0.0;  // backward of the nodes recorded inside it, inclusive
  double share = 0.0;        // (forward + backward) / wall time
};

struct ThreadRow {
  std::string name;
  double busy_ms = 0.0;     // inside ParallelFor chunks
  double busy_share = 0.0;  // of the ParallelFor regions' wall time
};

struct Summary {
  int64_t steps = 0;
  int threads = 1;
  double wall_ms = 0.0;
  std::vector<OpRow> forward;   // by self time, largest first
  std::vector<OpRow> backward;  // by self time, largest first
  double forward_ms = 0.0;      // sums of self time
  double backward_ms = 0.0;
  double outside_ops_ms = 0.0;   // wall - forward - backward
  std::vector<LayerRow> layers;  // in order of first forward call
  // Thread utilisation, from the main thread's point of view.
  double parallel_for_ms = 0.0;  // inside our ParallelFor regions
  double onednn_ms = 0.0;        // inside oneDNN primitives and sgemm (threaded inside oneDNN)
  double serial_ms = 0.0;        // the rest: the main thread alone
  int64_t parallel_for_regions = 0;
  std::vector<ThreadRow> thread_rows;
  double parallel_fraction() const {
    return wall_ms > 0 ? (parallel_for_ms + onednn_ms) / wall_ms : 0.0;
  }
};

// `steps`: how many training steps the recording covers (for per-step figures).
Summary Summarize(const Recording& recording, int64_t steps);
// The tables as text; `max_op_rows` cuts each op table (the rest summed in one line).
std::string FormatSummary(const Summary& summary, int max_op_rows = 25);

}  // namespace attnlab::profiler
