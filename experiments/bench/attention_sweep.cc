#include "experiments/bench/attention_sweep.h"

#include <malloc.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <fstream>
#include <functional>
#include <optional>
#include <string>

#include "absl/strings/str_cat.h"
#include "framework/autograd/node.h"
#include "framework/ops/ops.h"
#include "framework/random/generator.h"
#include "framework/tensor/allocator.h"

namespace attnlab::experiments {
namespace {

using Clock = std::chrono::steady_clock;

// A "VmRSS:" or "VmHWM:" line of /proc/self/status, in bytes; nullopt if unreadable.
std::optional<int64_t> StatusBytes(const std::string& field) {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind(field, 0) != 0) continue;
    return std::stoll(line.substr(field.size())) * 1024;  // "VmRSS:    1234 kB"
  }
  return std::nullopt;
}

// Resets the resident-set high-water mark to the current resident set (Linux >= 4.0).
bool ResetPeakRss() {
  std::ofstream clear_refs("/proc/self/clear_refs");
  clear_refs << "5";
  clear_refs.flush();
  return clear_refs.good();
}

double MaxAbsDifference(const Tensor& a, const Tensor& b) {
  const std::vector<float> x = a.ToFloats(), y = b.ToFloats();
  double largest = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    largest = std::max(largest, static_cast<double>(std::fabs(x[i] - y[i])));
  }
  return largest;
}

struct Leaves {
  Tensor query, key, value, output_grad;
};

// One step of a path: forward, backward, and the leaves' gradients cleared after.
// Returns the output and the query gradient (for the comparison of the paths).
std::pair<Tensor, Tensor> Step(Leaves& leaves, bool fused, float scale, float dropout) {
  const Tensor output =
      fused
          ? ScaledDotProductAttention(leaves.query, leaves.key, leaves.value, Tensor(), false, 0,
                                      scale, dropout, true)
          : Matmul(Dropout(Softmax(MulScalar(Matmul(leaves.query, leaves.key, false, true), scale)),
                           dropout, true),
                   leaves.value);
  autograd::RunBackward(output, leaves.output_grad);
  const Tensor query_grad = leaves.query.grad().detach();
  leaves.query.zero_grad();
  leaves.key.zero_grad();
  leaves.value.zero_grad();
  return {output.detach(), query_grad};
}

AttentionSweepPath MeasurePath(Leaves& leaves, bool fused, const AttentionSweepOptions& options,
                               float scale) {
  AttentionSweepPath path;
  CachingAllocator& allocator = CachingAllocator::Global();
  // Memory of one step, from an empty tensor cache, with the freed blocks given back to
  // the system (glibc keeps freed heap pages resident until malloc_trim).
  allocator.EmptyCache();
  malloc_trim(0);
  const std::optional<int64_t> rss_before = StatusBytes("VmRSS:");
  const bool reset = ResetPeakRss();
  const size_t live_before = allocator.Stats().current_bytes;
  allocator.ResetPeak();
  Step(leaves, fused, scale, options.dropout);
  path.allocator_peak_bytes = static_cast<int64_t>(allocator.Stats().peak_bytes - live_before);
  const std::optional<int64_t> rss_peak = StatusBytes("VmHWM:");
  if (reset && rss_before.has_value() && rss_peak.has_value()) {
    path.peak_rss_growth_bytes = std::max<int64_t>(0, *rss_peak - *rss_before);
  }
  for (int64_t i = 1; i < options.warmup; ++i) Step(leaves, fused, scale, options.dropout);
  std::vector<double> milliseconds;
  for (int64_t i = 0; i < options.steps; ++i) {
    const Clock::time_point start = Clock::now();
    Step(leaves, fused, scale, options.dropout);
    milliseconds.push_back(std::chrono::duration<double, std::milli>(Clock::now() - start).count());
  }
  std::sort(milliseconds.begin(), milliseconds.end());
  path.step_ms_median = milliseconds[milliseconds.size() / 2];
  return path;
}

}  // namespace

absl::StatusOr<std::vector<AttentionSweepRow>> RunAttentionSweep(
    const AttentionSweepOptions& options) {
  for (const auto& [name, value] : {std::pair<const char*, int64_t>{"--tokens", options.tokens},
                                    {"heads", options.heads},
                                    {"head_dim", options.head_dim},
                                    {"--steps", options.steps},
                                    {"--warmup", options.warmup}}) {
    if (value <= 0) {
      return absl::InvalidArgumentError(absl::StrCat(name, " must be positive, got ", value));
    }
  }
  if (options.lengths.empty()) return absl::InvalidArgumentError("no lengths to sweep");
  for (const int64_t length : options.lengths) {
    if (length <= 0 || length > options.tokens) {
      return absl::InvalidArgumentError(
          absl::StrCat("length ", length, " is not in [1, --tokens = ", options.tokens, "]"));
    }
  }
  if (!(options.dropout >= 0.0f && options.dropout < 1.0f)) {
    return absl::InvalidArgumentError(
        absl::StrCat("dropout ", options.dropout, " is outside [0, 1)"));
  }
  const float scale = 1.0f / std::sqrt(static_cast<float>(options.head_dim));
  std::vector<AttentionSweepRow> rows;
  for (const int64_t length : options.lengths) {
    AttentionSweepRow row;
    row.length = length;
    row.batch = options.tokens / length;
    const Shape shape = {row.batch, options.heads, length, options.head_dim};
    Generator generator(options.seed);
    Leaves leaves{
        RandomUniform(shape, -1.0f, 1.0f, generator), RandomUniform(shape, -1.0f, 1.0f, generator),
        RandomUniform(shape, -1.0f, 1.0f, generator), RandomUniform(shape, -1.0f, 1.0f, generator)};
    leaves.query.set_requires_grad(true);
    leaves.key.set_requires_grad(true);
    leaves.value.set_requires_grad(true);
    // Both paths from the same generator state: the same dropout mask.
    ManualSeed(options.seed);
    const auto [fused_output, fused_grad] = Step(leaves, true, scale, options.dropout);
    ManualSeed(options.seed);
    const auto [composite_output, composite_grad] = Step(leaves, false, scale, options.dropout);
    row.max_output_difference = MaxAbsDifference(fused_output, composite_output);
    row.max_query_grad_difference = MaxAbsDifference(fused_grad, composite_grad);
    row.fused = MeasurePath(leaves, true, options, scale);
    row.composite = MeasurePath(leaves, false, options, scale);
    rows.push_back(row);
  }
  return rows;
}

}  // namespace attnlab::experiments
