// The autograd graph: define-by-run.
//
// An op that needs a gradient calls Record(): it attaches a Node to its output holding
// one edge per input (the node that produced the input, or the leaf itself, or nothing
// when the input needs no gradient) and a backward closure that captures exactly what
// the backward needs (the "saved tensors"). Edges hold no input storage, so an
// intermediate buffer lives only as long as some backward still needs it.
//
// The backward closure receives the gradient of the op's output and hands each input's
// gradient to a GradientSink; it asks the sink which inputs need one and skips the rest.
#pragma once

#include <functional>
#include <initializer_list>
#include <memory>

#include "absl/container/inlined_vector.h"
#include "framework/ops/op_kind.h"
#include "framework/tensor/tensor.h"

namespace attnlab::autograd {

struct Node;

struct Edge {
  std::shared_ptr<Node> node;        // the input was produced by a recorded op
  std::shared_ptr<TensorImpl> leaf;  // or the input is a leaf that requires grad
  bool needs_grad() const { return node != nullptr || leaf != nullptr; }
};

class GradientSink {
 public:
  explicit GradientSink(Node& node) : node_(node) {}
  // Whether input `index` wants a gradient; backward closures skip work when not.
  bool NeedsGrad(size_t index) const;
  // Adds `gradient` (shaped like input `index`) to that input's gradient.
  void Add(size_t index, const Tensor& gradient);

 private:
  Node& node_;
};

using BackwardFn = std::function<void(const Tensor& grad_output, GradientSink& sink)>;

struct Node {
  OpKind op;
  absl::InlinedVector<Edge, 3> inputs;
  BackwardFn backward;
  Shape output_shape;     // the shape the incoming gradient must have
  Tensor grad_output;     // gradient accumulated from this node's consumers during backward
  bool released = false;  // backward ran and freed its saved tensors
  // Set only while profiling: the layer the node was recorded in (a profiler name id), so
  // backward time rolls up to it, and the backward's flop count (matmul family).
  uint32_t profile_layer = 0;
  double profile_backward_flops = 0.0;
};

// True when grad mode is on and some input requires a gradient.
bool ShouldRecord(std::initializer_list<const Tensor*> inputs);
// Attaches a node for `op` to `output`, with edges to `inputs`. `output` must be freshly
// created by the op. Call only when ShouldRecord() is true.
void Record(OpKind op, Tensor& output, std::initializer_list<const Tensor*> inputs,
            BackwardFn backward);

// Called by RunBackward once for every leaf that needs a gradient, as soon as the leaf's
// gradient is final for this backward: every recorded op that reads the leaf has run its
// backward. The leaf's `grad` may still be null (no gradient flowed to it). Data-parallel
// training uses it to start the all-reduce of a bucket of gradients while the rest of
// backward runs (PyTorch's DDP does the same with autograd hooks).
using GradientReadyHook = std::function<void(TensorImpl& leaf)>;

// Runs backward from `root` with the given seed gradient (shaped like root), calling
// `on_gradient_ready` (when set) for each leaf as its gradient becomes final.
void RunBackward(const Tensor& root, const Tensor& seed,
                 const GradientReadyHook& on_gradient_ready = {});

}  // namespace attnlab::autograd
