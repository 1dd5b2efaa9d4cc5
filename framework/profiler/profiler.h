// The profiler's switch and its scopes: compiled in, off by default, switched at run time.
//
// Instrumented code opens a scope; each scope's constructor tests one global flag
// (a relaxed atomic load and a predictable branch) and does nothing else when profiling
// is off, so the instrumentation costs nothing measurable when off (see README.md for
// the measurement). When on, a scope records one timed span into a per-thread buffer:
//
//   OpScope        a public op's forward (framework/ops/*.cc), with its inputs' bytes and,
//                  for matmul-family ops, its flop count
//   BackwardScope  one autograd node's backward (framework/autograd/engine.cc)
//   LayerScope     a layer's forward (layers/), by name; autograd nodes recorded inside it
//                  remember it, so their backward rolls up to the same layer
//   RegionScope    a parallel region: a ParallelFor on its calling thread, or a oneDNN
//                  primitive execution (which threads internally)
//   WorkerScope    one thread's share of a ParallelFor (its busy time)
//   MarkerScope    a named phase ("step 3", "backward", "optimizer.step")
//
// Start() clears the buffers and switches recording on; Stop() switches it off and
// returns every thread's spans (framework/profiler/recording.h), which summary.h turns
// into tables and chrome_trace.h into a trace file.
#pragma once

#include <atomic>
#include <cstdint>
#include <initializer_list>
#include <string_view>

#include "framework/ops/op_kind.h"
#include "framework/profiler/recording.h"
#include "framework/tensor/tensor.h"

namespace attnlab::profiler {

namespace internal {
extern std::atomic<bool> enabled;
struct ThreadRecord;
}  // namespace internal

// Whether spans are being recorded. One relaxed load: the whole cost when off.
inline bool Enabled() { return internal::enabled.load(std::memory_order_relaxed); }

// Clears every buffer, makes the calling thread the main thread, and starts recording.
void Start();
// Stops recording and hands back everything recorded since Start().
Recording Stop();

// The id of `name` in the profiler's name table (stable for the process's lifetime).
// Id 0 is the empty name, "no layer".
uint32_t InternName(std::string_view name);
// The innermost open layer on the calling thread (0 when none, or when off).
uint32_t CurrentLayer();
// The flop count set on the innermost open op span of the calling thread (0 when none).
double CurrentOpFlops();

// Base of every scope: closes its span on destruction when it opened one.
class Scope {
 public:
  Scope() = default;
  Scope(const Scope&) = delete;
  Scope& operator=(const Scope&) = delete;
  ~Scope() {
    if (record_ != nullptr) [[unlikely]]
      Close();
  }
  bool active() const { return record_ != nullptr; }

 protected:
  void Open(SpanKind kind, OpKind op, uint32_t name, int64_t bytes_read, double flops);

 private:
  friend class OpScope;
  void Close();
  internal::ThreadRecord* record_ = nullptr;
  size_t index_ = 0;  // of the span in record_'s buffer
};

class OpScope : public Scope {
 public:
  // `inputs` are what the op reads (undefined tensors and nullptrs are skipped).
  OpScope(OpKind op, std::initializer_list<const Tensor*> inputs) {
    if (Enabled()) [[unlikely]]
      OpenOp(op, inputs);
  }
  // Sets the span's flop count (call only when active()); matmul-family ops do.
  void set_flops(double flops);
  // Counts `input` as read, for ops whose inputs are not a fixed list (call when active()).
  void add_bytes_read(const Tensor& input);

 private:
  void OpenOp(OpKind op, std::initializer_list<const Tensor*> inputs);
};

class BackwardScope : public Scope {
 public:
  // `layer`: the layer the node was recorded in; `flops`: the backward's flop count (0
  // when not a matmul); `grad_output`: the incoming gradient (counted as read).
  BackwardScope(OpKind op, uint32_t layer, double flops, const Tensor& grad_output) {
    if (Enabled()) [[unlikely]]
      OpenBackward(op, layer, flops, grad_output);
  }

 private:
  void OpenBackward(OpKind op, uint32_t layer, double flops, const Tensor& grad_output);
};

class LayerScope : public Scope {
 public:
  LayerScope() = default;  // inactive
  explicit LayerScope(uint32_t name) {
    if (Enabled()) [[unlikely]]
      OpenLayer(name);
  }

 private:
  void OpenLayer(uint32_t name);
};

class RegionScope : public Scope {
 public:
  // `name` is a string literal ("parallel_for", "onednn").
  explicit RegionScope(const char* name) {
    if (Enabled()) [[unlikely]]
      OpenNamed(SpanKind::kParallelRegion, name);
  }

 protected:
  RegionScope() = default;
  void OpenNamed(SpanKind kind, const char* name);
};

class WorkerScope : public RegionScope {
 public:
  WorkerScope() {
    if (Enabled()) [[unlikely]]
      OpenNamed(SpanKind::kWorker, "worker");
  }
};

class MarkerScope : public RegionScope {
 public:
  explicit MarkerScope(const char* name) {
    if (Enabled()) [[unlikely]]
      OpenNamed(SpanKind::kMarker, name);
  }
  explicit MarkerScope(uint32_t name) {
    if (Enabled()) [[unlikely]]
      Open(SpanKind::kMarker, OpKind{}, name, 0, 0.0);
  }
};

}  // namespace attnlab::profiler
