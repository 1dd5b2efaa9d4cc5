// The table of every op the engine knows. Adding an op starts here: one line gives it a
// name for error messages, the profiler and the test suite, which enumerates this table
// and fails when a differentiable op has no case in the table of op cases
// (tests/framework/op_cases.cc, checked by tests/framework/op_coverage_test.cc).
#pragma once

#include <array>
#include <cstdint>
#include <string_view>

namespace attnlab {

//      enum name         printed name       differentiable
#define ATTNLAB_OP_TABLE(X)                 \
  X(kMatmul, "matmul", true)                \
  X(kLinear, "linear", true)                \
  X(kAdd, "add", true)                      \
  X(kSub, "sub", true)                      \
  X(kMul, "mul", true)                      \
  X(kDiv, "div", true)                      \
  X(kAddScalar, "add_scalar", true)         \
  X(kMulScalar, "mul_scalar", true)         \
  X(kPowScalar, "pow_scalar", true)         \
  X(kSum, "sum", true)                      \
  X(kMean, "mean", true)                    \
  X(kMax, "max", true)                      \
  X(kRelu, "relu", true)                    \
  X(kGeluErf, "gelu_erf", true)             \
  X(kGeluTanh, "gelu_tanh", true)           \
  X(kTanh, "tanh", true)                    \
  X(kSigmoid, "sigmoid", true)              \
  X(kExp, "exp", true)                      \
  X(kLog, "log", true)                      \
  X(kSqrt, "sqrt", true)                    \
  X(kElu, "elu", true)                      \
  X(kSoftmax, "softmax", true)              \
  X(kLogSoftmax, "log_softmax", true)       \
  X(kLayerNorm, "layer_norm", true)         \
  X(kDropout, "dropout", true)              \
  X(kReluDropout, "relu_dropout", true)     \
  X(kAddDropout, "add_dropout", true)       \
  X(kDropoutMatmul, "dropout_matmul", true) \
  X(kEmbedding, "embedding", true)          \
  X(kCrossEntropy, "cross_entropy", true)   \
  X(kReshape, "reshape", true)              \
  X(kNarrow, "narrow", true)                \
  X(kContiguous, "contiguous", true)        \
  X(kPermute, "permute", true)              \
  X(kConcat, "concat", true)                \
  X(kCopyInto, "copy_into", false)          \
  X(kIndexSelect, "index_select", true)     \
  X(kGather, "gather", true)                \
  X(kArgmax, "argmax", false)               \
  X(kCumSum, "cumsum", true)                \
  X(kRotary, "rotary", true)                \
  X(kMseLoss, "mse_loss", true)             \
  X(kScaledDotProductAttention, "scaled_dot_product_attention", true)

enum class OpKind : uint16_t {
#define ATTNLAB_OP_ENUM(name, printed, differentiable) name,
  ATTNLAB_OP_TABLE(ATTNLAB_OP_ENUM)
#undef ATTNLAB_OP_ENUM
};

struct OpInfo {
  OpKind kind;
  std::string_view name;
  bool differentiable;
};

inline constexpr std::array kOpTable = {
#define ATTNLAB_OP_INFO(name, printed, differentiable) \
  OpInfo{OpKind::name, printed, differentiable},
    ATTNLAB_OP_TABLE(ATTNLAB_OP_INFO)
#undef ATTNLAB_OP_INFO
};
inline constexpr size_t kNumOps = kOpTable.size();

constexpr std::string_view OpName(OpKind kind) { return kOpTable[static_cast<size_t>(kind)].name; }

}  // namespace attnlab
