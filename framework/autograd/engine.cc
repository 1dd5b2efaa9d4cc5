// The backward pass: Kahn's algorithm over the recorded graph, so every node runs once,
// after all of its consumers have added their gradient to it. A node's saved tensors
// and incoming gradient are freed as soon as its backward has run.
#include <cstring>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "framework/autograd/grad_mode.h"
#include "framework/autograd/node.h"
#include "framework/ops/ops.h"
#include "framework/profiler/profiler.h"
#include "framework/tensor/allocator.h"

namespace attnlab::autograd {
namespace {

// Adds `gradient` into `slot`. The first gradient is kept as is (no copy); later ones
// are added in place when the slot's storage is ours alone, out of place otherwise, so a
// tensor handed to two consumers is never modified under one of them.
void Accumulate(Tensor& slot, const Tensor& gradient) {
  if (!slot.defined()) {
    slot = gradient;
    return;
  }
  const bool exclusive = slot.impl_ptr().use_count() == 1 &&
                         slot.impl()->storage.use_count() == 1 && slot.is_contiguous();
  if (exclusive) {
    AddInPlace(slot, gradient);
  } else {
    slot = Add(slot, gradient);
  }
}

void AccumulateIntoLeaf(TensorImpl& leaf, const Tensor& gradient) {
  ATTNLAB_CHECK(gradient.shape() == leaf.shape, "backward: gradient ", gradient.Describe(),
                " does not match leaf shape ", ShapeToString(leaf.shape));
  if (leaf.grad == nullptr && leaf.grad_arena_view != nullptr) {
    // The leaf's gradient lives in a flat arena: the first gradient is copied into its
    // view (the same bits Clone() would give, with no allocation), later ones add in place.
    ATTNLAB_CHECK(gradient.dtype() == leaf.grad_arena_view->dtype, "backward: gradient ",
                  gradient.Describe(), " does not match the dtype of its arena view");
    const Tensor source = gradient.is_contiguous() ? gradient : gradient.Clone();
    std::memcpy(Tensor(leaf.grad_arena_view).raw_data(), source.raw_data(),
                static_cast<size_t>(source.numel()) * ElementSize(source.dtype()));
    leaf.grad = leaf.grad_arena_view;
  } else if (leaf.grad == nullptr) {
    // A leaf's gradient is always its own storage, so later steps may add in place.
    leaf.grad = gradient.Clone().impl_ptr();
  } else {
    Tensor accumulated(leaf.grad);
    AddInPlace(accumulated, gradient);
  }
}

}  // namespace

bool GradientSink::NeedsGrad(size_t index) const {
  return index < node_.inputs.size() && node_.inputs[index].needs_grad();
}

void GradientSink::Add(size_t index, const Tensor& gradient) {
  ATTNLAB_CHECK(index < node_.inputs.size(), OpName(node_.op), " backward: input index ", index,
                " out of range");
  Edge& edge = node_.inputs[index];
  if (edge.node != nullptr) {
    ATTNLAB_CHECK(gradient.shape() == edge.node->output_shape, OpName(node_.op),
                  " backward: gradient ", gradient.Describe(), " for input ", index,
                  " does not match its shape ", ShapeToString(edge.node->output_shape));
    Accumulate(edge.node->grad_output, gradient);
  } else if (edge.leaf != nullptr) {
    AccumulateIntoLeaf(*edge.leaf, gradient);
  }
}

bool ShouldRecord(std::initializer_list<const Tensor*> inputs) {
  if (!GradMode::IsEnabled()) return false;
  for (const Tensor* input : inputs) {
    if (input != nullptr && input->defined() && input->requires_grad()) return true;
  }
  return false;
}

void Record(OpKind op, Tensor& output, std::initializer_list<const Tensor*> inputs,
            BackwardFn backward) {
  auto node = std::make_shared<Node>();
  node->op = op;
  node->output_shape = output.shape();
  node->backward = std::move(backward);
  for (const Tensor* input : inputs) {
    Edge edge;
    if (input != nullptr && input->defined() && input->requires_grad()) {
      if (input->grad_fn() != nullptr) {
        edge.node = input->grad_fn();
      } else {
        edge.leaf = input->impl_ptr();
      }
    }
    node->inputs.push_back(std::move(edge));
  }
  if (profiler::Enabled()) [[unlikely]] {
    node->profile_layer = profiler::CurrentLayer();
    // A matmul's backward computes one product per input that needs a gradient, each
    // with the forward's flop count.
    int products = 0;
    for (size_t i = 0; i < node->inputs.size() && i < 2; ++i)
      products += node->inputs[i].needs_grad();
    node->profile_backward_flops = profiler::CurrentOpFlops() * products;
  }
  output.impl()->grad_fn = std::move(node);
  output.impl()->requires_grad = true;
}

void RunBackward(const Tensor& root, const Tensor& seed,
                 const GradientReadyHook& on_gradient_ready) {
  ATTNLAB_CHECK(root.requires_grad(), "backward: the tensor ", root.Describe(),
                " does not require grad (no input of its graph requires grad, or it was "
                "computed under NoGradGuard)");
  ATTNLAB_CHECK(seed.shape() == root.shape(), "backward: seed gradient ", seed.Describe(),
                " does not match ", root.Describe());
  if (root.grad_fn() == nullptr) {  // backward on a leaf: its gradient is the seed
    AccumulateIntoLeaf(*root.impl(), seed);
    if (on_gradient_ready) on_gradient_ready(*root.impl());
    return;
  }
  NoGradGuard no_grad;  // gradients are computed without recording a graph
  profiler::MarkerScope profile("backward");
  CachingAllocator::BorrowingScope borrowing;

  // Count, for every reachable node, how many edges point at it; with a hook, the same
  // for leaves, so the hook can fire when a leaf's last consumer has run.
  absl::flat_hash_map<Node*, int> pending_consumers;
  absl::flat_hash_map<TensorImpl*, int> pending_leaf_consumers;
  std::vector<Node*> stack = {root.grad_fn().get()};
  pending_consumers[root.grad_fn().get()] = 0;
  while (!stack.empty()) {
    Node* node = stack.back();
    stack.pop_back();
    ATTNLAB_CHECK(!node->released, "backward: the graph through op '", OpName(node->op),
                  "' was already used by an earlier backward() and its saved tensors are "
                  "freed; run the forward pass again");
    for (const Edge& edge : node->inputs) {
      if (edge.leaf != nullptr && on_gradient_ready) ++pending_leaf_consumers[edge.leaf.get()];
      if (edge.node == nullptr) continue;
      auto [it, inserted] = pending_consumers.try_emplace(edge.node.get(), 0);
      ++it->second;
      if (inserted) stack.push_back(edge.node.get());
    }
  }

  root.grad_fn()->grad_output = seed;
  std::vector<Node*> ready = {root.grad_fn().get()};
  while (!ready.empty()) {
    Node* node = ready.back();
    ready.pop_back();
    if (node->grad_output.defined()) {
      profiler::BackwardScope profile_node(node->op, node->profile_layer,
                                           node->profile_backward_flops, node->grad_output);
      GradientSink sink(*node);
      node->backward(node->grad_output, sink);
    }
    // Free what this node held as soon as it is done.
    node->backward = nullptr;
    node->grad_output = Tensor();
    node->released = true;
    for (const Edge& edge : node->inputs) {
      if (edge.node != nullptr && --pending_consumers[edge.node.get()] == 0) {
        ready.push_back(edge.node.get());
      }
      // Whether or not this node's backward added to it, no later node will.
      if (edge.leaf != nullptr && on_gradient_ready &&
          --pending_leaf_consumers[edge.leaf.get()] == 0) {
        on_gradient_ready(*edge.leaf);
      }
    }
  }
}

}  // namespace attnlab::autograd
