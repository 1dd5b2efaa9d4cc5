// The event recorder: per-thread span buffers, the open-span stacks that give nesting and
// self time, and the name table.
//
// Every thread that records gets its own ThreadRecord on first use (a mutex is taken
// once per thread, then never again), so OpenMP workers record without sharing
// anything. Records live for the process: OpenMP keeps its threads, and a worker's
// thread-local pointer must stay valid between Start() calls.
#include <omp.h>

#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "framework/profiler/profiler.h"
#include "framework/tensor/allocator.h"

namespace attnlab::profiler {
namespace internal {

std::atomic<bool> enabled{false};

struct OpenSpan {
  size_t index;
  int64_t allocated_at_open = 0;
  int64_t child_op_ns = 0;         // counted op spans directly inside (for self time)
  int64_t child_op_allocated = 0;  // and their allocations
};

struct ThreadRecord {
  int omp_thread = 0;  // omp_get_thread_num() when the thread first recorded
  std::vector<Span> spans;
  std::vector<OpenSpan> stack;
  std::vector<uint32_t> layers;  // open layer scopes, innermost last
  int region_depth = 0;
  int backward_depth = 0;
  absl::flat_hash_map<const char*, uint32_t> literal_ids;  // RegionScope names, by address
};

}  // namespace internal

namespace {

using internal::OpenSpan;
using internal::ThreadRecord;

struct Registry {
  std::mutex mutex;
  std::vector<std::unique_ptr<ThreadRecord>> records;
  ThreadRecord* main = nullptr;
  std::chrono::steady_clock::time_point origin;
  std::vector<std::string> names = {""};
  absl::flat_hash_map<std::string, uint32_t> ids = {{"", 0}};
  std::vector<uint32_t> layer_parent = {0};
};

Registry& GlobalRegistry() {
  static Registry* registry = new Registry();  // never destroyed: threads may outlive main()
  return *registry;
}

ThreadRecord& ThisThread() {
  thread_local ThreadRecord* record = nullptr;
  if (record == nullptr) [[unlikely]] {
    Registry& registry = GlobalRegistry();
    std::lock_guard<std::mutex> lock(registry.mutex);
    registry.records.push_back(std::make_unique<ThreadRecord>());
    record = registry.records.back().get();
    record->omp_thread = omp_get_thread_num();
  }
  return *record;
}

int64_t Now() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() -
                                                              GlobalRegistry().origin)
      .count();
}

int64_t AllocatedBytes() {
  return static_cast<int64_t>(CachingAllocator::Global().Stats().allocated_bytes);
}

void ForgetOpenScopes(ThreadRecord& record) {
  record.stack.clear();
  record.layers.clear();
  record.region_depth = 0;
  record.backward_depth = 0;
}

bool IsOp(SpanKind kind) { return kind == SpanKind::kForwardOp || kind == SpanKind::kBackwardOp; }

}  // namespace

void Start() {
  Registry& registry = GlobalRegistry();
  ThreadRecord& main = ThisThread();
  {
    std::lock_guard<std::mutex> lock(registry.mutex);
    for (auto& record : registry.records) {
      record->spans.clear();
      ForgetOpenScopes(*record);
    }
    registry.main = &main;
    registry.origin = std::chrono::steady_clock::now();
  }
  internal::enabled.store(true, std::memory_order_release);
}

Recording Stop() {
  internal::enabled.store(false, std::memory_order_release);
  Registry& registry = GlobalRegistry();
  Recording recording;
  recording.wall_ns = Now();
  recording.origin_steady_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(
                                   GlobalRegistry().origin.time_since_epoch())
                                   .count();
  recording.threads = omp_get_max_threads();
  std::lock_guard<std::mutex> lock(registry.mutex);
  // Scopes still open close as no-ops (Scope::Close() finds an empty stack).
  for (auto& record : registry.records) ForgetOpenScopes(*record);
  if (registry.main != nullptr) {
    recording.threads_spans.push_back({0, "main", std::move(registry.main->spans)});
    registry.main->spans.clear();
  }
  for (auto& record : registry.records) {
    if (record.get() == registry.main || record->spans.empty()) continue;
    const int tid = static_cast<int>(recording.threads_spans.size());
    recording.threads_spans.push_back(
        {tid, absl::StrCat("omp thread ", record->omp_thread), std::move(record->spans)});
    record->spans.clear();
  }
  recording.names = registry.names;
  recording.layer_parent = registry.layer_parent;
  return recording;
}

uint32_t InternName(std::string_view name) {
  Registry& registry = GlobalRegistry();
  std::lock_guard<std::mutex> lock(registry.mutex);
  auto [it, inserted] =
      registry.ids.try_emplace(std::string(name), static_cast<uint32_t>(registry.names.size()));
  if (inserted) {
    registry.names.emplace_back(name);
    registry.layer_parent.push_back(0);
  }
  return it->second;
}

uint32_t CurrentLayer() {
  if (!Enabled()) return 0;
  const ThreadRecord& record = ThisThread();
  return record.layers.empty() ? 0 : record.layers.back();
}

double CurrentOpFlops() {
  if (!Enabled()) return 0.0;
  const ThreadRecord& record = ThisThread();
  for (auto open = record.stack.rbegin(); open != record.stack.rend(); ++open) {
    const Span& span = record.spans[open->index];
    if (span.kind == SpanKind::kForwardOp) return span.flops;
  }
  return 0.0;
}

void Scope::Open(SpanKind kind, OpKind op, uint32_t name, int64_t bytes_read, double flops) {
  ThreadRecord& record = ThisThread();
  Span span;
  span.kind = kind;
  span.op = op;
  span.depth = static_cast<uint16_t>(record.stack.size());
  span.bytes_read = bytes_read;
  span.flops = flops;
  switch (kind) {
    case SpanKind::kForwardOp:
      span.layer = record.layers.empty() ? 0 : record.layers.back();
      span.counted = record.backward_depth == 0;
      break;
    case SpanKind::kBackwardOp:
      span.layer = name;  // the layer the node was recorded in
      ++record.backward_depth;
      break;
    case SpanKind::kLayer:
      span.name = name;
      span.layer = name;
      if (name != 0) {
        Registry& registry = GlobalRegistry();
        std::lock_guard<std::mutex> lock(registry.mutex);
        if (registry.layer_parent[name] == 0 && !record.layers.empty() &&
            record.layers.back() != name) {
          registry.layer_parent[name] = record.layers.back();
        }
      }
      record.layers.push_back(name);
      break;
    case SpanKind::kParallelRegion:
    case SpanKind::kWorker:
      span.name = name;
      span.outermost_region = record.region_depth == 0;
      ++record.region_depth;
      break;
    case SpanKind::kMarker:
      span.name = name;
      break;
  }
  OpenSpan open{record.spans.size()};
  if (IsOp(kind)) open.allocated_at_open = AllocatedBytes();
  span.start_ns = Now();
  record.spans.push_back(span);
  record.stack.push_back(open);
  record_ = &record;
  index_ = open.index;
}

void Scope::Close() {
  ThreadRecord& record = *record_;
  record_ = nullptr;
  // Start() since this span opened cleared the buffers: nothing to close.
  if (record.stack.empty() || record.stack.back().index != index_) return;
  const int64_t end = Now();
  const OpenSpan open = record.stack.back();
  record.stack.pop_back();
  Span& span = record.spans[open.index];
  span.duration_ns = end - span.start_ns;
  switch (span.kind) {
    case SpanKind::kForwardOp:
    case SpanKind::kBackwardOp: {
      span.bytes_allocated = AllocatedBytes() - open.allocated_at_open;
      span.self_ns = span.duration_ns - open.child_op_ns;
      span.self_bytes_allocated = span.bytes_allocated - open.child_op_allocated;
      if (span.kind == SpanKind::kBackwardOp) --record.backward_depth;
      if (span.kind != SpanKind::kForwardOp || !span.counted) break;
      // A counted forward op's time is its nearest enclosing op's child time.
      for (auto parent = record.stack.rbegin(); parent != record.stack.rend(); ++parent) {
        const Span& parent_span = record.spans[parent->index];
        if (!IsOp(parent_span.kind)) continue;
        if (parent_span.kind == SpanKind::kForwardOp && parent_span.counted) {
          parent->child_op_ns += span.duration_ns;
          parent->child_op_allocated += span.bytes_allocated;
        }
        break;
      }
      break;
    }
    case SpanKind::kLayer:
      record.layers.pop_back();
      break;
    case SpanKind::kParallelRegion:
    case SpanKind::kWorker:
      --record.region_depth;
      break;
    case SpanKind::kMarker:
      break;
  }
}

void OpScope::OpenOp(OpKind op, std::initializer_list<const Tensor*> inputs) {
  int64_t bytes_read = 0;
  for (const Tensor* input : inputs) {
    if (input != nullptr && input->defined()) {
      bytes_read += input->numel() * static_cast<int64_t>(ElementSize(input->dtype()));
    }
  }
  Open(SpanKind::kForwardOp, op, 0, bytes_read, 0.0);
}

void OpScope::set_flops(double flops) {
  if (record_ != nullptr && index_ < record_->spans.size()) record_->spans[index_].flops = flops;
}

void OpScope::add_bytes_read(const Tensor& input) {
  if (record_ != nullptr && index_ < record_->spans.size() && input.defined()) {
    record_->spans[index_].bytes_read +=
        input.numel() * static_cast<int64_t>(ElementSize(input.dtype()));
  }
}

void BackwardScope::OpenBackward(OpKind op, uint32_t layer, double flops,
                                 const Tensor& grad_output) {
  const int64_t bytes_read =
      grad_output.defined()
          ? grad_output.numel() * static_cast<int64_t>(ElementSize(grad_output.dtype()))
          : 0;
  Open(SpanKind::kBackwardOp, op, layer, bytes_read, flops);
}

void LayerScope::OpenLayer(uint32_t name) { Open(SpanKind::kLayer, OpKind{}, name, 0, 0.0); }

void RegionScope::OpenNamed(SpanKind kind, const char* name) {
  ThreadRecord& record = ThisThread();
  auto it = record.literal_ids.find(name);
  if (it == record.literal_ids.end()) it = record.literal_ids.emplace(name, InternName(name)).first;
  Open(kind, OpKind{}, it->second, 0, 0.0);
}

}  // namespace attnlab::profiler
