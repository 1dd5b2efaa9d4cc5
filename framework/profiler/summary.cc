#include "framework/profiler/summary.h"

#include <algorithm>
#include <array>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace attnlab::profiler {
namespace {

constexpr double kNsPerMs = 1e6;

bool IsMatmulFamily(OpKind op) {
  return op == OpKind::kMatmul || op == OpKind::kLinear || op == OpKind::kDropoutMatmul ||
         op == OpKind::kScaledDotProductAttention;
}

// Folds the counted op spans of one kind into rows, sorted by self time.
std::vector<OpRow> OpRows(const Recording& recording, SpanKind kind) {
  std::array<OpRow, kNumOps> rows;
  for (const ThreadSpans& thread : recording.threads_spans) {
    for (const Span& span : thread.spans) {
      if (span.kind != kind || !span.counted) continue;
      OpRow& row = rows[static_cast<size_t>(span.op)];
      ++row.calls;
      row.total_ms += static_cast<double>(span.duration_ns) / kNsPerMs;
      row.self_ms += static_cast<double>(span.self_ns) / kNsPerMs;
      row.flops += span.flops;
      row.bytes_allocated += span.self_bytes_allocated;
      // A span that allocated nothing is a view (reshape, narrow): it moved no data.
      if (span.self_bytes_allocated > 0) {
        row.bytes_moved += static_cast<double>(span.bytes_read + span.self_bytes_allocated);
      }
    }
  }
  std::vector<OpRow> out;
  const double wall_ms = static_cast<double>(recording.wall_ns) / kNsPerMs;
  for (size_t op = 0; op < kNumOps; ++op) {
    OpRow& row = rows[op];
    if (row.calls == 0) continue;
    row.name = std::string(kOpTable[op].name);
    row.matmul_family = IsMatmulFamily(kOpTable[op].kind);
    row.mean_ms = row.total_ms / static_cast<double>(row.calls);
    row.share = wall_ms > 0 ? row.self_ms / wall_ms : 0.0;
    out.push_back(std::move(row));
  }
  std::sort(out.begin(), out.end(),
            [](const OpRow& a, const OpRow& b) { return a.self_ms > b.self_ms; });
  return out;
}

double SelfSum(const std::vector<OpRow>& rows) {
  double total = 0.0;
  for (const OpRow& row : rows) total += row.self_ms;
  return total;
}

std::vector<LayerRow> LayerRows(const Recording& recording) {
  const double wall_ms = static_cast<double>(recording.wall_ns) / kNsPerMs;
  std::vector<LayerRow> rows;
  absl::flat_hash_map<uint32_t, size_t> row_of;  // layer id -> index in rows
  auto row_for = [&](uint32_t layer) -> LayerRow& {
    auto [it, inserted] = row_of.try_emplace(layer, rows.size());
    if (inserted) {
      LayerRow row;
      row.name = layer == 0 ? "(outside any layer)" : recording.Name(layer);
      for (uint32_t parent = recording.layer_parent[layer]; parent != 0 && row.depth < 64;
           parent = recording.layer_parent[parent]) {
        ++row.depth;
      }
      rows.push_back(std::move(row));
    }
    return rows[it->second];
  };
  // The layer and every layer around it.
  auto for_layer_chain = [&](uint32_t layer, auto&& add) {
    for (int guard = 0; layer != 0 && guard < 64; ++guard) {
      add(row_for(layer));
      layer = recording.layer_parent[layer];
    }
  };
  // Forward spans first, in opening order, so that rows come out in forward order.
  for (const ThreadSpans& thread : recording.threads_spans) {
    for (const Span& span : thread.spans) {
      if (span.kind == SpanKind::kLayer && span.name != 0) {
        LayerRow& row = row_for(span.name);
        ++row.calls;
        row.forward_ms += static_cast<double>(span.duration_ns) / kNsPerMs;
      }
    }
  }
  for (const ThreadSpans& thread : recording.threads_spans) {
    for (const Span& span : thread.spans) {
      const double ms = static_cast<double>(span.self_ns) / kNsPerMs;
      if (span.kind == SpanKind::kBackwardOp) {
        if (span.layer == 0) {
          row_for(0).backward_ms += ms;
        } else {
          for_layer_chain(span.layer, [&](LayerRow& row) { row.backward_ms += ms; });
        }
      } else if (span.kind == SpanKind::kForwardOp && span.counted && span.layer == 0) {
        row_for(0).forward_ms += ms;
      }
    }
  }
  for (LayerRow& row : rows)
    row.share = wall_ms > 0 ? (row.forward_ms + row.backward_ms) / wall_ms : 0;
  // The row for work outside layers goes last.
  auto outside = row_of.find(0);
  if (outside != row_of.end()) {
    LayerRow last = rows[outside->second];
    rows.erase(rows.begin() + static_cast<std::ptrdiff_t>(outside->second));
    rows.push_back(std::move(last));
  }
  return rows;
}

void AddUtilisation(const Recording& recording, Summary& summary) {
  for (const ThreadSpans& thread : recording.threads_spans) {
    ThreadRow row;
    row.name = thread.name;
    for (const Span& span : thread.spans) {
      const double ms = static_cast<double>(span.duration_ns) / kNsPerMs;
      if (span.kind == SpanKind::kWorker) row.busy_ms += ms;
      // Parallel time is measured on the main thread: its outermost regions.
      if (thread.tid != 0 || span.kind != SpanKind::kParallelRegion || !span.outermost_region) {
        continue;
      }
      if (recording.Name(span.name) == "parallel_for") {
        summary.parallel_for_ms += ms;
        ++summary.parallel_for_regions;
      } else {
        summary.onednn_ms += ms;
      }
    }
    summary.thread_rows.push_back(std::move(row));
  }
  for (ThreadRow& row : summary.thread_rows) {
    row.busy_share = summary.parallel_for_ms > 0 ? row.busy_ms / summary.parallel_for_ms : 0.0;
  }
  summary.serial_ms = std::max(0.0, summary.wall_ms - summary.parallel_for_ms - summary.onednn_ms);
}

std::string Bytes(double bytes) {
  if (bytes >= 1e9) return absl::StrFormat("%.2f GB", bytes / 1e9);
  if (bytes >= 1e6) return absl::StrFormat("%.1f MB", bytes / 1e6);
  if (bytes >= 1e3) return absl::StrFormat("%.1f kB", bytes / 1e3);
  return absl::StrFormat("%.0f B", bytes);
}

void AppendOpTable(std::string& out, const char* title, const std::vector<OpRow>& rows,
                   double total_ms, double wall_ms, int64_t steps, int max_rows) {
  absl::StrAppendFormat(&out, "%s: %.2f ms/step, %.1f%% of the step (self time)\n", title,
                        total_ms / static_cast<double>(std::max<int64_t>(steps, 1)),
                        wall_ms > 0 ? 100.0 * total_ms / wall_ms : 0.0);
  absl::StrAppendFormat(&out, "  %-14s %7s %10s %10s %9s %7s %14s %11s\n", "op", "calls", "self ms",
                        "total ms", "mean us", "share", "throughput", "allocated");
  OpRow rest;
  for (size_t i = 0; i < rows.size(); ++i) {
    const OpRow& row = rows[i];
    if (static_cast<int>(i) >= max_rows) {
      ++rest.calls;
      rest.self_ms += row.self_ms;
      rest.share += row.share;
      continue;
    }
    std::string throughput = "-";
    if (row.matmul_family && row.flops > 0) {
      throughput = absl::StrFormat("%.1f GFLOP/s", row.gflops_per_second());
    } else if (row.bytes_moved > 0) {
      throughput = absl::StrFormat("%.2f GB/s", row.gigabytes_per_second());
    }
    absl::StrAppendFormat(&out, "  %-14s %7d %10.3f %10.3f %9.1f %6.1f%% %14s %11s\n", row.name,
                          row.calls, row.self_ms, row.total_ms, 1e3 * row.mean_ms,
                          100.0 * row.share, throughput,
                          Bytes(static_cast<double>(row.bytes_allocated)));
  }
  if (rest.calls > 0) {
    absl::StrAppendFormat(&out, "  %-14s %7s %10.3f %10s %9s %6.1f%%\n",
                          absl::StrCat("(", rest.calls, " more ops)"), "", rest.self_ms, "", "",
                          100.0 * rest.share);
  }
}

}  // namespace

Summary Summarize(const Recording& recording, int64_t steps) {
  Summary summary;
  summary.steps = steps;
  summary.threads = recording.threads;
  summary.wall_ms = static_cast<double>(recording.wall_ns) / kNsPerMs;
  summary.forward = OpRows(recording, SpanKind::kForwardOp);
  summary.backward = OpRows(recording, SpanKind::kBackwardOp);
  summary.forward_ms = SelfSum(summary.forward);
  summary.backward_ms = SelfSum(summary.backward);
  summary.outside_ops_ms =
      std::max(0.0, summary.wall_ms - summary.forward_ms - summary.backward_ms);
  summary.layers = LayerRows(recording);
  AddUtilisation(recording, summary);
  return summary;
}

std::string FormatSummary(const Summary& summary, int max_op_rows) {
  std::string out;
  const double steps = static_cast<double>(std::max<int64_t>(summary.steps, 1));
  const double wall = summary.wall_ms;
  auto percent = [&](double ms) { return wall > 0 ? 100.0 * ms / wall : 0.0; };
  absl::StrAppendFormat(&out,
                        "profile: %d steps, %.2f ms/step, %d threads\n"
                        "  forward ops %.1f%% + backward ops %.1f%% + outside ops (optimizer, "
                        "batching, glue) %.1f%% = 100%%\n\n",
                        summary.steps, wall / steps, summary.threads, percent(summary.forward_ms),
                        percent(summary.backward_ms), percent(summary.outside_ops_ms));
  AppendOpTable(out, "forward ops", summary.forward, summary.forward_ms, wall, summary.steps,
                max_op_rows);
  out += "\n";
  AppendOpTable(out, "backward ops", summary.backward, summary.backward_ms, wall, summary.steps,
                max_op_rows);
  out += "\nlayers (inclusive: a layer's time contains the layers inside it)\n";
  absl::StrAppendFormat(&out, "  %-56s %6s %12s %12s %7s\n", "layer", "calls", "forward ms",
                        "backward ms", "share");
  for (const LayerRow& row : summary.layers) {
    const std::string indented = std::string(2 * static_cast<size_t>(row.depth), ' ') + row.name;
    absl::StrAppendFormat(&out, "  %-56s %6s %12.3f %12.3f %6.1f%%\n", indented,
                          row.calls > 0 ? absl::StrCat(row.calls) : "-", row.forward_ms,
                          row.backward_ms, 100.0 * row.share);
  }
  absl::StrAppendFormat(&out,
                        "\nthreads (%d): main thread %.1f%% serial, %.1f%% in ParallelFor "
                        "regions (%d), %.1f%% in oneDNN (threaded inside oneDNN, not visible "
                        "per thread); parallel fraction %.1f%%\n",
                        summary.threads, percent(summary.serial_ms),
                        percent(summary.parallel_for_ms), summary.parallel_for_regions,
                        percent(summary.onednn_ms), 100.0 * summary.parallel_fraction());
  absl::StrAppendFormat(&out, "  %-16s %12s %22s\n", "thread", "busy ms", "of ParallelFor time");
  for (const ThreadRow& row : summary.thread_rows) {
    absl::StrAppendFormat(&out, "  %-16s %12.3f %21.1f%%\n", row.name, row.busy_ms,
                          100.0 * row.busy_share);
  }
  return out;
}

}  // namespace attnlab::profiler
