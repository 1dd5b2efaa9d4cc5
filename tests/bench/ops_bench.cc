// Op benchmarks at the shapes of the reference configurations, plus three checks printed
// before the Google Benchmark run:
//   matmul_512_fraction_of_sgemm: our Matmul op at 512^3 against raw dnnl_sgemm (the
//     machine's ceiling), as a throughput ratio; the target is >= 0.85.
//   tiny_add_64_us: one Add of two [64] f32 tensors without grad; the target is <= 2 us.
//   steady state: oneDNN primitives created and system allocations before and after a
//     timed loop of training steps; both must stay unchanged.
// The process exits with status 1 when a target is missed (after running the benchmarks).
//
// Reference configurations: tiny d_model 128, d_ff 512, batch 64, len 24; small 256, 1024,
// 64, 32; base 512, 2048, 32, 64. Head counts (4, 4, 8) are the usual choices for these
// widths (head_dim 32, 64, 64).
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <iterator>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "benchmark/benchmark.h"
#include "framework/autograd/grad_mode.h"
#include "framework/autograd/node.h"
#include "framework/backend/dnnl/dnnl_backend.h"
#include "framework/ops/dropout_batch_shard.h"
#include "framework/ops/mixed_precision.h"
#include "framework/ops/ops.h"
#include "framework/parallel/parallel_for.h"
#include "framework/random/generator.h"
#include "framework/tensor/allocator.h"

namespace attnlab {
namespace {

struct ModelConfig {
  const char* name;
  int64_t d_model, d_ff, batch, length, heads;
};

constexpr ModelConfig kConfigs[] = {
    {"tiny", 128, 512, 64, 24, 4},
    {"small", 256, 1024, 64, 32, 4},
    {"base", 512, 2048, 32, 64, 8},
};
constexpr int64_t kVocabulary = 8000;

const ModelConfig& ConfigAt(int64_t index) { return kConfigs[index]; }

Tensor RandomTensor(const Shape& shape, uint64_t seed) {
  Generator generator(seed);
  return RandomUniform(shape, -1.0f, 1.0f, generator);
}

Tensor RandomParameter(const Shape& shape, uint64_t seed) {
  Tensor parameter = RandomTensor(shape, seed);
  parameter.set_requires_grad(true);
  return parameter;
}

void SetFlopRate(benchmark::State& state, double flops_per_iteration) {
  state.counters["flops"] =
      benchmark::Counter(flops_per_iteration, benchmark::Counter::kIsIterationInvariantRate);
}

void SetLabel(benchmark::State& state, const ModelConfig& config) { state.SetLabel(config.name); }

// Runs a benchmark once per reference configuration. Wall-clock time throughout: oneDNN and
// our kernels run on several threads, and CPU time would count only the calling one.
void AtEveryConfig(benchmark::internal::Benchmark* target) {
  target->DenseRange(0, std::size(kConfigs) - 1)->Unit(benchmark::kMicrosecond)->UseRealTime();
}

// ---- Matmul forward ---------------------------------------------------------------------

// The first feed-forward projection: [batch*len, d_model] x [d_ff, d_model]^T (+ bias).
void BM_LinearForward(benchmark::State& state) {
  const ModelConfig& config = ConfigAt(state.range(0));
  const int64_t rows = config.batch * config.length;
  const Tensor x = RandomTensor({rows, config.d_model}, 1);
  const Tensor weight = RandomTensor({config.d_ff, config.d_model}, 2);
  const Tensor bias = RandomTensor({config.d_ff}, 3);
  NoGradGuard no_grad;
  for (auto _ : state) benchmark::DoNotOptimize(Linear(x, weight, bias));
  SetFlopRate(state, 2.0 * rows * config.d_model * config.d_ff);
  SetLabel(state, config);
}
BENCHMARK(BM_LinearForward)->Apply(AtEveryConfig);

// The two backward products of an attention projection ([d_model, d_model] weight) over
// batch*len tokens: the weight gradient dY^T X, a long reduction over the tokens in fixed
// tiles (deterministic on any thread count), and the input gradient dY W.
void BM_ProjectionWeightGradient(benchmark::State& state) {
  const ModelConfig& config = ConfigAt(state.range(0));
  const int64_t rows = config.batch * config.length;
  const Tensor grad = RandomTensor({rows, config.d_model}, 8);
  const Tensor x = RandomTensor({rows, config.d_model}, 9);
  NoGradGuard no_grad;
  for (auto _ : state) benchmark::DoNotOptimize(Matmul(grad, x, /*transpose_a=*/true, false));
  SetFlopRate(state, 2.0 * rows * config.d_model * config.d_model);
  SetLabel(state, config);
}
BENCHMARK(BM_ProjectionWeightGradient)->Apply(AtEveryConfig);

void BM_ProjectionInputGradient(benchmark::State& state) {
  const ModelConfig& config = ConfigAt(state.range(0));
  const int64_t rows = config.batch * config.length;
  const Tensor grad = RandomTensor({rows, config.d_model}, 10);
  const Tensor weight = RandomTensor({config.d_model, config.d_model}, 11);
  NoGradGuard no_grad;
  for (auto _ : state) benchmark::DoNotOptimize(Matmul(grad, weight));
  SetFlopRate(state, 2.0 * rows * config.d_model * config.d_model);
  SetLabel(state, config);
}
BENCHMARK(BM_ProjectionInputGradient)->Apply(AtEveryConfig);

// Attention scores: [batch*heads, len, head_dim] x [batch*heads, len, head_dim]^T.
void BM_AttentionScoresForward(benchmark::State& state) {
  const ModelConfig& config = ConfigAt(state.range(0));
  const int64_t batch = config.batch * config.heads, head_dim = config.d_model / config.heads;
  const Tensor query = RandomTensor({batch, config.length, head_dim}, 4);
  const Tensor key = RandomTensor({batch, config.length, head_dim}, 5);
  NoGradGuard no_grad;
  for (auto _ : state) benchmark::DoNotOptimize(Matmul(query, key, false, true));
  SetFlopRate(state, 2.0 * batch * config.length * config.length * head_dim);
  SetLabel(state, config);
}
BENCHMARK(BM_AttentionScoresForward)->Apply(AtEveryConfig);

// One decoding step's attention over a full cache of `length` keys: [batch, heads, 1,
// head_dim] queries against [batch, heads, length, head_dim] keys and values, by the
// fused op (which reads them in place) and by the composite ops (two per-head products
// and a softmax). Bytes: the keys and values read.
void DecodeAttention(benchmark::State& state, bool fused) {
  const ModelConfig& config = ConfigAt(state.range(0));
  const int64_t head_dim = config.d_model / config.heads;
  const Tensor query = RandomTensor({config.batch, config.heads, 1, head_dim}, 6);
  const Tensor key = RandomTensor({config.batch, config.heads, config.length, head_dim}, 7);
  const Tensor value = RandomTensor({config.batch, config.heads, config.length, head_dim}, 8);
  const float scale = 1.0f / std::sqrt(static_cast<float>(head_dim));
  NoGradGuard no_grad;
  for (auto _ : state) {
    if (fused) {
      benchmark::DoNotOptimize(
          ScaledDotProductAttention(query, key, value, Tensor(), false, 0, scale, 0.0f, false));
    } else {
      benchmark::DoNotOptimize(
          Matmul(Softmax(MulScalar(Matmul(query, key, false, true), scale)), value));
    }
  }
  state.SetBytesProcessed(state.iterations() * 2 * key.numel() * 4);
  SetLabel(state, config);
}
void BM_DecodeAttentionFused(benchmark::State& state) { DecodeAttention(state, true); }
void BM_DecodeAttentionComposite(benchmark::State& state) { DecodeAttention(state, false); }
BENCHMARK(BM_DecodeAttentionFused)->Apply(AtEveryConfig);
BENCHMARK(BM_DecodeAttentionComposite)->Apply(AtEveryConfig);

// Our Matmul op at 512^3 (the same shape as the ceiling check in main()).
void BM_Matmul512(benchmark::State& state) {
  const Tensor a = RandomTensor({512, 512}, 6), b = RandomTensor({512, 512}, 7);
  NoGradGuard no_grad;
  for (auto _ : state) benchmark::DoNotOptimize(Matmul(a, b));
  SetFlopRate(state, 2.0 * 512 * 512 * 512);
}
BENCHMARK(BM_Matmul512)->Unit(benchmark::kMicrosecond)->UseRealTime();

// Raw dnnl_sgemm at 512^3: the ceiling.
void BM_Sgemm512(benchmark::State& state) {
  const Tensor a = RandomTensor({512, 512}, 6), b = RandomTensor({512, 512}, 7);
  Tensor c = Tensor::Empty({512, 512});
  for (auto _ : state) {
    dnnl_backend::Sgemm(false, false, 512, 512, 512, 1.0f, a.data<float>(), 512, b.data<float>(),
                        512, 0.0f, c.data<float>(), 512);
    benchmark::ClobberMemory();
  }
  SetFlopRate(state, 2.0 * 512 * 512 * 512);
}
BENCHMARK(BM_Sgemm512)->Unit(benchmark::kMicrosecond)->UseRealTime();

// ---- Memory-bound ops: forward + backward -----------------------------------------------
// Bytes are the op's own minimum traffic (forward: read x, write y; backward: read the saved
// tensor and dy, write dx), so GB/s is a lower bound: the time also includes the copy of
// the first gradient into the leaf's own storage.

// Runs forward, then backward from a fixed output gradient, and forgets the leaf gradient.
template <typename Forward>
void ForwardBackwardLoop(benchmark::State& state, Tensor& leaf, const Tensor& output_grad,
                         Forward forward) {
  for (auto _ : state) {
    const Tensor output = forward();
    autograd::RunBackward(output, output_grad);
    leaf.zero_grad();
  }
}

void BM_SoftmaxForwardBackward(benchmark::State& state) {
  const ModelConfig& config = ConfigAt(state.range(0));
  const Shape shape = {config.batch * config.length, config.d_model};
  Tensor x = RandomParameter(shape, 8);
  const Tensor output_grad = RandomTensor(shape, 9);
  ForwardBackwardLoop(state, x, output_grad, [&] { return Softmax(x); });
  state.SetBytesProcessed(state.iterations() * 5 * NumElements(shape) * sizeof(float));
  SetLabel(state, config);
}
BENCHMARK(BM_SoftmaxForwardBackward)->Apply(AtEveryConfig);

// Softmax over attention scores [batch, heads, len, len].
void BM_AttentionSoftmaxForwardBackward(benchmark::State& state) {
  const ModelConfig& config = ConfigAt(state.range(0));
  const Shape shape = {config.batch, config.heads, config.length, config.length};
  Tensor x = RandomParameter(shape, 10);
  const Tensor output_grad = RandomTensor(shape, 11);
  ForwardBackwardLoop(state, x, output_grad, [&] { return Softmax(x); });
  state.SetBytesProcessed(state.iterations() * 5 * NumElements(shape) * sizeof(float));
  SetLabel(state, config);
}
BENCHMARK(BM_AttentionSoftmaxForwardBackward)->Apply(AtEveryConfig);

void BM_LayerNormForwardBackward(benchmark::State& state) {
  const ModelConfig& config = ConfigAt(state.range(0));
  const Shape shape = {config.batch * config.length, config.d_model};
  Tensor x = RandomParameter(shape, 12);
  Tensor gamma = RandomParameter({config.d_model}, 13);
  Tensor beta = RandomParameter({config.d_model}, 14);
  const Tensor output_grad = RandomTensor(shape, 15);
  for (auto _ : state) {
    const Tensor output = LayerNorm(x, gamma, beta);
    autograd::RunBackward(output, output_grad);
    x.zero_grad();
    gamma.zero_grad();
    beta.zero_grad();
  }
  state.SetBytesProcessed(state.iterations() * 5 * NumElements(shape) * sizeof(float));
  SetLabel(state, config);
}
BENCHMARK(BM_LayerNormForwardBackward)->Apply(AtEveryConfig);

// Dropout (p = 0.1) on the feed-forward hidden activations [batch*len, d_ff], forward +
// backward: the mask is drawn from Philox in forward, and backward reads its bits. Bytes:
// forward reads x and writes y, backward reads dy and writes dx.
void BM_DropoutForwardBackward(benchmark::State& state) {
  const ModelConfig& config = ConfigAt(state.range(0));
  const Shape shape = {config.batch * config.length, config.d_ff};
  Tensor x = RandomParameter(shape, 36);
  const Tensor output_grad = RandomTensor(shape, 37);
  ForwardBackwardLoop(state, x, output_grad, [&] { return Dropout(x, 0.1f, true); });
  state.SetBytesProcessed(state.iterations() * 4 * NumElements(shape) * sizeof(float));
  SetLabel(state, config);
}
BENCHMARK(BM_DropoutForwardBackward)->Apply(AtEveryConfig);

// Dropout on a data-parallel rank's rows (DropoutBatchShard): [batch*len, d_ff + 1]
// (odd rows, so that the shard's first element falls inside a Philox group), forward +
// backward, with no shard (range(1) = 0), as rows 4.. of a batch 8 rows longer (1) and as
// rows 1.. (2). Before timing, a shard's output is checked against those rows of the
// whole batch's.
void BM_DropoutShardForwardBackward(benchmark::State& state) {
  const ModelConfig& config = ConfigAt(state.range(0));
  const int64_t mode = state.range(1);
  const int64_t rows = config.batch * config.length, per_row = config.d_ff + 1;
  const int64_t global_rows = rows + 8, first_row = mode == 1 ? 4 : 1;
  const Shape shape = {rows, per_row};
  const Tensor whole_input = RandomTensor({global_rows, per_row}, 38);
  Tensor x = whole_input.narrow(0, first_row, rows).contiguous();
  x.set_requires_grad(true);
  const Tensor output_grad = RandomTensor(shape, 39);
  std::optional<DropoutBatchShard> shard;
  if (mode != 0) {
    NoGradGuard no_grad;
    ManualSeed(40);
    const Tensor whole = Dropout(whole_input, 0.1f, true).narrow(0, first_row, rows).contiguous();
    ManualSeed(40);
    shard.emplace(first_row, rows, global_rows);
    const std::vector<float> expected = whole.ToFloats();
    if (Dropout(x.detach(), 0.1f, true).ToFloats() != expected) {
      state.SkipWithError("the shard's mask differs from the whole batch's rows");
      return;
    }
  }
  ForwardBackwardLoop(state, x, output_grad, [&] { return Dropout(x, 0.1f, true); });
  state.SetBytesProcessed(state.iterations() * 4 * NumElements(shape) * sizeof(float));
  state.SetLabel(absl::StrCat(config.name, mode == 0   ? " no shard"
                                           : mode == 1 ? " shard from row 4"
                                                       : " shard from row 1"));
}
BENCHMARK(BM_DropoutShardForwardBackward)
    ->ArgsProduct({{0, 1, 2}, {0, 1, 2}})
    ->Unit(benchmark::kMicrosecond)
    ->UseRealTime();

// Cross-entropy over the vocabulary: logits [batch*len, 8000], forward + backward. Bytes:
// forward reads the logits, backward reads them again and writes their gradient.
void BM_CrossEntropyForwardBackward(benchmark::State& state) {
  const ModelConfig& config = ConfigAt(state.range(0));
  const int64_t rows = config.batch * config.length;
  Tensor logits = RandomParameter({rows, kVocabulary}, 16);
  Generator target_generator(17);
  const Tensor targets = RandomInts({rows}, 0, kVocabulary, target_generator);
  for (auto _ : state) {
    const Tensor loss = CrossEntropy(logits, targets);
    loss.backward();
    logits.zero_grad();
  }
  state.SetBytesProcessed(state.iterations() * 3 * rows * kVocabulary * sizeof(float));
  SetLabel(state, config);
}
BENCHMARK(BM_CrossEntropyForwardBackward)->Apply(AtEveryConfig);

// ---- A 2-layer MLP: Linear -> ReLU -> Linear, forward + backward ---------------------------

struct Mlp {
  Tensor w1, b1, w2, b2;

  explicit Mlp(const ModelConfig& config)
      : w1(RandomParameter({config.d_ff, config.d_model}, 20)),
        b1(RandomParameter({config.d_ff}, 21)),
        w2(RandomParameter({config.d_model, config.d_ff}, 22)),
        b2(RandomParameter({config.d_model}, 23)) {}

  Tensor Forward(const Tensor& x) const { return Linear(Relu(Linear(x, w1, b1)), w2, b2); }

  // Forward and backward from `output_grad`; the gradients stay accumulated in place.
  void Step(const Tensor& x, const Tensor& output_grad) const {
    autograd::RunBackward(Forward(x), output_grad);
  }

  // Matmul flops of Step when x needs no gradient: 2 forward GEMMs, then dW1, dH and dW2.
  static double StepFlops(const ModelConfig& config) {
    return 5 * 2.0 * config.batch * config.length * config.d_model * config.d_ff;
  }
};

// One benchmark per precision of the products: f32, and mixed precision (bf16 products,
// f32 everything else) where the CPU has native bf16.
void MlpForwardBackward(benchmark::State& state, DType matmul_inputs) {
  if (const absl::Status usable = CheckMatmulInputDType(matmul_inputs); !usable.ok()) {
    state.SkipWithError(std::string(usable.message()).c_str());
    return;
  }
  const ModelConfig& config = ConfigAt(state.range(0));
  const Mlp mlp(config);
  const int64_t rows = config.batch * config.length;
  const Tensor x = RandomTensor({rows, config.d_model}, 24);
  const Tensor output_grad = RandomTensor({rows, config.d_model}, 25);
  MixedPrecision precision(matmul_inputs);
  for (auto _ : state) mlp.Step(x, output_grad);
  SetFlopRate(state, Mlp::StepFlops(config));
  SetLabel(state, config);
}
void BM_MlpForwardBackward(benchmark::State& state) { MlpForwardBackward(state, DType::kF32); }
void BM_MlpForwardBackwardBf16(benchmark::State& state) { MlpForwardBackward(state, DType::kBF16); }
BENCHMARK(BM_MlpForwardBackward)->Apply(AtEveryConfig)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_MlpForwardBackwardBf16)->Apply(AtEveryConfig)->Unit(benchmark::kMillisecond);

// ---- The checks printed before the benchmark run ---------------------------------------

using Clock = std::chrono::steady_clock;

// Median over `repetitions` of the mean seconds per call of `calls_per_repetition` calls.
template <typename Call>
double MedianSecondsPerCall(int repetitions, int calls_per_repetition, Call call) {
  std::vector<double> seconds;
  for (int r = 0; r < repetitions; ++r) {
    const Clock::time_point start = Clock::now();
    for (int i = 0; i < calls_per_repetition; ++i) call();
    seconds.push_back(std::chrono::duration<double>(Clock::now() - start).count() /
                      calls_per_repetition);
  }
  std::sort(seconds.begin(), seconds.end());
  return seconds[seconds.size() / 2];
}

constexpr double kMinimumFractionOfSgemm = 0.85;
constexpr double kMaximumTinyAddMicroseconds = 2.0;

// Our Matmul at 512^3 against raw sgemm; returns false when the result is wrong or slow.
bool CheckMatmulAgainstSgemm() {
  constexpr int64_t kSize = 512;
  const Tensor a = RandomTensor({kSize, kSize}, 30), b = RandomTensor({kSize, kSize}, 31);
  Tensor ceiling_output = Tensor::Empty({kSize, kSize});
  auto run_sgemm = [&] {
    dnnl_backend::Sgemm(false, false, kSize, kSize, kSize, 1.0f, a.data<float>(), kSize,
                        b.data<float>(), kSize, 0.0f, ceiling_output.data<float>(), kSize);
  };
  NoGradGuard no_grad;
  Tensor ours;
  auto run_ours = [&] { ours = Matmul(a, b); };

  // Validate first: the two must agree to float accumulation error.
  run_sgemm();
  run_ours();
  const std::vector<float> expected = ceiling_output.ToFloats(), actual = ours.ToFloats();
  double worst_error = 0.0;
  for (size_t i = 0; i < expected.size(); ++i) {
    worst_error = std::max(worst_error, static_cast<double>(std::abs(actual[i] - expected[i])));
  }
  std::printf("matmul_512_max_abs_difference_vs_sgemm: %.3g\n", worst_error);
  if (worst_error > 1e-3) {
    std::printf("matmul_512: FAIL, our result differs from sgemm's\n");
    return false;
  }

  // Warm up both, then interleave the timed repetitions so drift hits both alike.
  for (int i = 0; i < 20; ++i) {
    run_sgemm();
    run_ours();
  }
  constexpr int kRepetitions = 31, kCallsPerRepetition = 5;
  std::vector<double> sgemm_seconds, ours_seconds;
  for (int r = 0; r < kRepetitions; ++r) {
    sgemm_seconds.push_back(MedianSecondsPerCall(1, kCallsPerRepetition, run_sgemm));
    ours_seconds.push_back(MedianSecondsPerCall(1, kCallsPerRepetition, run_ours));
  }
  std::sort(sgemm_seconds.begin(), sgemm_seconds.end());
  std::sort(ours_seconds.begin(), ours_seconds.end());
  const double sgemm = sgemm_seconds[kRepetitions / 2], ours_time = ours_seconds[kRepetitions / 2];
  const double flops = 2.0 * kSize * kSize * kSize;
  const double fraction = sgemm / ours_time;
  std::printf("sgemm_512_gflops: %.1f\n", flops / sgemm * 1e-9);
  std::printf("matmul_512_gflops: %.1f\n", flops / ours_time * 1e-9);
  std::printf("matmul_512_fraction_of_sgemm: %.3f (target >= %.2f: %s)\n", fraction,
              kMinimumFractionOfSgemm, fraction >= kMinimumFractionOfSgemm ? "PASS" : "FAIL");
  return fraction >= kMinimumFractionOfSgemm;
}

bool CheckTinyAdd() {
  const Tensor a = RandomTensor({64}, 32), b = RandomTensor({64}, 33);
  NoGradGuard no_grad;
  auto add = [&] { benchmark::DoNotOptimize(Add(a, b)); };
  for (int i = 0; i < 10000; ++i) add();
  const double microseconds = MedianSecondsPerCall(21, 20000, add) * 1e6;
  std::printf("tiny_add_64_us: %.3f (target <= %.1f: %s)\n", microseconds,
              kMaximumTinyAddMicroseconds,
              microseconds <= kMaximumTinyAddMicroseconds ? "PASS" : "FAIL");
  return microseconds <= kMaximumTinyAddMicroseconds;
}

// Training steps of the tiny MLP after a warm-up: no primitive creation, no system allocation.
bool CheckSteadyState() {
  const ModelConfig& config = kConfigs[0];
  const Mlp mlp(config);
  const int64_t rows = config.batch * config.length;
  const Tensor x = RandomTensor({rows, config.d_model}, 34);
  const Tensor output_grad = RandomTensor({rows, config.d_model}, 35);
  for (int i = 0; i < 3; ++i) mlp.Step(x, output_grad);
  const uint64_t primitives_before = dnnl_backend::Stats().primitives_created;
  const uint64_t allocations_before = CachingAllocator::Global().Stats().system_allocations;
  constexpr int kSteps = 50;
  const double step_seconds = MedianSecondsPerCall(1, kSteps, [&] { mlp.Step(x, output_grad); });
  const uint64_t primitives_after = dnnl_backend::Stats().primitives_created;
  const uint64_t allocations_after = CachingAllocator::Global().Stats().system_allocations;
  std::printf("steady_state_tiny_mlp_step_ms: %.3f over %d steps\n", step_seconds * 1e3, kSteps);
  std::printf("steady_state_primitives_created: before %llu after %llu\n",
              static_cast<unsigned long long>(primitives_before),
              static_cast<unsigned long long>(primitives_after));
  std::printf("steady_state_system_allocations: before %llu after %llu\n",
              static_cast<unsigned long long>(allocations_before),
              static_cast<unsigned long long>(allocations_after));
  const bool steady =
      primitives_after == primitives_before && allocations_after == allocations_before;
  std::printf("steady_state: %s\n", steady ? "PASS" : "FAIL");
  return steady;
}

}  // namespace
}  // namespace attnlab

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  std::printf("threads: %d\n", attnlab::NumThreads());
  const bool matmul_ok = attnlab::CheckMatmulAgainstSgemm();
  const bool tiny_add_ok = attnlab::CheckTinyAdd();
  const bool steady_ok = attnlab::CheckSteadyState();
  std::fflush(stdout);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return matmul_ok && tiny_add_ok && steady_ok ? 0 : 1;
}
