#include "experiments/bench/bench.h"

#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <functional>
#include <memory>
#include <numeric>
#include <vector>

#include "absl/strings/str_cat.h"
#include "experiments/trainer/data_parallel.h"
#include "framework/backend/dnnl/dnnl_backend.h"
#include "framework/core/error.h"
#include "framework/ops/dropout_batch_shard.h"
#include "framework/ops/mixed_precision.h"
#include "framework/ops/ops.h"
#include "framework/optim/adam.h"
#include "framework/parallel/parallel_for.h"
#include "framework/profiler/profile_files.h"
#include "framework/profiler/profiler.h"
#include "framework/random/generator.h"
#include "framework/tensor/allocator.h"
#include "layers/decoding/beam_search.h"
#include "layers/decoding/greedy.h"
#include "layers/transformer/transformer.h"

namespace attnlab::experiments {
namespace {

using Clock = std::chrono::steady_clock;

constexpr float kLabelSmoothing = 0.1f;
constexpr double kLearningRate = 1e-4;  // constant: the value does not change the step's cost
constexpr int64_t kBeamSize = 4;

double Seconds(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

double Median(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  return values[values.size() / 2];
}

// Seconds of each of `runs` calls of `run`.
std::vector<double> TimeRuns(int64_t runs, const std::function<void()>& run) {
  std::vector<double> seconds;
  for (int64_t i = 0; i < runs; ++i) {
    const Clock::time_point start = Clock::now();
    run();
    seconds.push_back(Seconds(start));
  }
  return seconds;
}

absl::Status CheckPositive(const char* what, int64_t value) {
  if (value > 0) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat(what, " must be positive, got ", value));
}

// Random non-special tokens (3..vocab-1: 0 is pad, 1 bos, 2 eos), i32 [rows, length].
std::vector<int32_t> RandomTokens(int64_t rows, int64_t length, int64_t vocab,
                                  Generator& generator) {
  return RandomInts({rows, length}, 3, static_cast<int32_t>(vocab), generator).ToInts();
}

// The GEMM ceilings are measured at 1024 x 1024 x 1024 on the current threads.
constexpr int64_t kCeilingSize = 1024;

// GFLOP/s of `gemm`, one 1024^3 product: the median of 15 runs after 3 warm-ups.
double CeilingGflops(const std::function<void()>& gemm) {
  TimeRuns(3, gemm);
  return 2.0 * kCeilingSize * kCeilingSize * kCeilingSize / Median(TimeRuns(15, gemm)) * 1e-9;
}

// The fp32 GEMM ceiling: dnnl_sgemm.
double MeasureSgemmCeiling(Generator& generator) {
  constexpr int64_t kSize = kCeilingSize;
  const Tensor a = RandomUniform({kSize, kSize}, -1.0f, 1.0f, generator);
  const Tensor b = RandomUniform({kSize, kSize}, -1.0f, 1.0f, generator);
  Tensor c = Tensor::Empty({kSize, kSize});
  return CeilingGflops([&] {
    dnnl_backend::Sgemm(false, false, kSize, kSize, kSize, 1.0f, a.data<float>(), kSize,
                        b.data<float>(), kSize, 0.0f, c.data<float>(), kSize);
  });
}

// The bf16 GEMM ceiling: oneDNN's matmul on bf16 operands (f32 output), the operands
// converted beforehand.
double MeasureBf16GemmCeiling(Generator& generator) {
  constexpr int64_t kSize = kCeilingSize;
  const Tensor a =
      ContiguousAs(RandomUniform({kSize, kSize}, -1.0f, 1.0f, generator), DType::kBF16);
  const Tensor b =
      ContiguousAs(RandomUniform({kSize, kSize}, -1.0f, 1.0f, generator), DType::kBF16);
  Tensor c = Tensor::Empty({kSize, kSize});
  auto operand = [&](const Tensor& t) {
    dnnl_backend::MatrixOperand m;
    m.data = t.raw_data();
    m.dtype = DType::kBF16;
    m.rows = m.cols = m.row_stride = kSize;
    m.batch_stride = kSize * kSize;
    return m;
  };
  return CeilingGflops(
      [&] { dnnl_backend::Matmul(operand(a), operand(b), nullptr, c.data<float>()); });
}

TrainingBench RunTraining(nn::Transformer& model, const ReferenceConfig& config,
                          const BenchOptions& options, const TrainingStepFlops& flops,
                          Generator& token_generator) {
  const int64_t batch = config.batch, length = config.length;
  const std::vector<int32_t> target = RandomTokens(batch, length, config.vocab, token_generator);
  // Teacher forcing: the decoder reads bos + target[:-1] and predicts target.
  std::vector<int32_t> target_input(target.size());
  for (int64_t row = 0; row < batch; ++row) {
    target_input[row * length] = model.special_tokens().bos_id;
    std::copy_n(target.begin() + row * length, length - 1, target_input.begin() + row * length + 1);
  }
  Tensor src =
      Tensor::FromInts(RandomTokens(batch, length, config.vocab, token_generator), {batch, length});
  Tensor tgt_in = Tensor::FromInts(target_input, {batch, length});
  Tensor tgt_out = Tensor::FromInts(target, {batch * length});
  // Several ranks: this rank's rows of the batch; its loss is its rows' share of the mean.
  std::unique_ptr<DataParallel> data_parallel =
      DataParallel::Create(options.communicator, model).value();
  data_parallel->set_overlap(options.overlap);
  const BatchShard shard = data_parallel->shard();
  const int64_t first = shard.FirstRow(batch), rows = shard.EndRow(batch) - first;
  if (data_parallel->distributed()) {
    src = Narrow(src, 0, first, rows).contiguous();
    tgt_in = Narrow(tgt_in, 0, first, rows).contiguous();
    tgt_out = Narrow(tgt_out, 0, first * length, rows * length).contiguous();
  }
  const float shard_share = static_cast<float>(rows) / static_cast<float>(batch);

  AdamOptions adam_options;  // the paper's (section 5.3)
  adam_options.beta1 = 0.9;
  adam_options.beta2 = 0.98;
  adam_options.epsilon = 1e-9;
  Adam optimizer(model.NamedParameters(), adam_options);
  model.Train();
  Tensor loss;
  auto step = [&] {
    if (!data_parallel->distributed()) {
      // The logits ([batch, length, vocab]) are not kept: cross-entropy's backward then
      // writes their gradient over them, as in the trainer.
      loss = CrossEntropy(Reshape(model.Forward(src, tgt_in), {-1, config.vocab}), tgt_out,
                          kLabelSmoothing, model.special_tokens().pad_id);
      loss.backward();
    } else {
      const DropoutBatchShard dropout_rows(first, rows, batch);
      loss = MulScalar(CrossEntropy(Reshape(model.Forward(src, tgt_in), {-1, config.vocab}),
                                    tgt_out, kLabelSmoothing, model.special_tokens().pad_id),
                       shard_share);  // logits [rows, length, vocab]
      autograd::RunBackward(loss, Tensor::Scalar(1.0f), data_parallel->BackwardHook());
      ATTNLAB_CHECK(data_parallel->FinishGradientReduce().ok(), "bench: all-reduce failed");
    }
    optimizer.Step(kLearningRate);
    optimizer.ZeroGrad();
  };

  TrainingBench result;
  TimeRuns(options.warmup, step);
  CachingAllocator& allocator = CachingAllocator::Global();
  allocator.ResetPeak();
  const uint64_t allocations_before = allocator.Stats().system_allocations;
  const uint64_t primitives_before = dnnl_backend::Stats().primitives_created;
  data_parallel->TakeCommunication();
  const std::vector<double> seconds = TimeRuns(options.steps, step);
  const DataParallel::Communication communication = data_parallel->TakeCommunication();
  const double timed_seconds = std::accumulate(seconds.begin(), seconds.end(), 0.0);
  result.ranks = data_parallel->ranks();
  result.all_reduce_bytes_per_step =
      static_cast<double>(communication.all_reduce_bytes) / static_cast<double>(options.steps);
  result.all_reduce_share = communication.all_reduce_seconds / timed_seconds;
  result.communication_wait_share = communication.wait_seconds / timed_seconds;
  const AllocatorStats allocator_after = allocator.Stats();
  result.total_primitives_created = dnnl_backend::Stats().primitives_created;
  result.total_system_allocations = allocator_after.system_allocations;
  result.steady_system_allocations = allocator_after.system_allocations - allocations_before;
  result.steady_primitives_created = result.total_primitives_created - primitives_before;
  result.allocator_peak_bytes = static_cast<int64_t>(allocator_after.peak_bytes);
  result.final_loss = loss.item();

  const double median = Median(seconds);
  result.step_ms_median = median * 1e3;
  result.step_ms_min = *std::min_element(seconds.begin(), seconds.end()) * 1e3;
  result.step_ms_max = *std::max_element(seconds.begin(), seconds.end()) * 1e3;
  result.target_tokens_per_second = static_cast<double>(batch * length) / median;
  result.achieved_gflops = flops.training_step / median * 1e-9;
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  result.peak_rss_bytes = static_cast<int64_t>(usage.ru_maxrss) * 1024;  // Linux: kilobytes
  return result;
}

absl::StatusOr<DecodingBench> RunDecoding(nn::Transformer& model, const ReferenceConfig& config,
                                          const BenchOptions& options, Generator& token_generator) {
  DecodingBench result;
  result.batch = config.batch;
  result.source_length = config.length;
  result.decode_length = options.decode_length;
  result.runs = options.decode_runs;
  // A random model may rank eos first at any step; with its logit at -1e9 every sentence
  // is exactly decode_length tokens long, as in the PyTorch script's fixed-length loop.
  for (auto& [name, parameter] : model.NamedParameters()) {
    if (name == "generator.bias") parameter.data<float>()[model.special_tokens().eos_id] = -1e9f;
  }
  const Tensor src =
      Tensor::FromInts(RandomTokens(config.batch, config.length, config.vocab, token_generator),
                       {config.batch, config.length});
  nn::BeamSearchOptions beam_options;
  beam_options.beam_size = kBeamSize;
  beam_options.max_len = options.decode_length;

  // Sentences per second of `decode`, after one warm-up run.
  auto sentences_per_second = [&](const std::function<nn::DecodeResult()>& decode) {
    const nn::DecodeResult warmup = decode();
    for (const std::vector<int32_t>& tokens : warmup.tokens) {
      ATTNLAB_CHECK(static_cast<int64_t>(tokens.size()) == options.decode_length,
                    "bench: a hypothesis ended after ", tokens.size(), " of ",
                    options.decode_length, " tokens");
    }
    const double seconds = Median(TimeRuns(options.decode_runs, [&] { decode(); }));
    return static_cast<double>(config.batch) / seconds;
  };
  result.greedy_sentences_per_second =
      sentences_per_second([&] { return nn::GreedyDecode(model, src, options.decode_length); });
  if (!options.profile_decoding.empty()) {
    profiler::Start();
    for (int64_t run = 1; run <= options.decode_runs; ++run) {
      const profiler::MarkerScope marker(profiler::InternName(absl::StrCat("decode ", run)));
      nn::GreedyDecode(model, src, options.decode_length);
    }
    const profiler::Recording recording = profiler::Stop();
    ASSIGN_OR_RETURN(
        result.profile_tables,
        profiler::WriteProfileFiles(recording, options.decode_runs, options.profile_decoding));
  }
  result.beam4_sentences_per_second =
      sentences_per_second([&] { return nn::BeamSearch(model, src, beam_options); });
  model.set_decoding_cache(false);
  result.greedy_recompute_sentences_per_second =
      sentences_per_second([&] { return nn::GreedyDecode(model, src, options.decode_length); });
  model.set_decoding_cache(true);
  result.cache_speedup =
      result.greedy_sentences_per_second / result.greedy_recompute_sentences_per_second;
  return result;
}

}  // namespace

absl::StatusOr<BenchResult> RunBench(const BenchOptions& options) {
  ASSIGN_OR_RETURN(const ReferenceConfig config, FindReferenceConfig(options.model));
  RETURN_IF_ERROR(CheckPositive("--steps", options.steps));
  if (options.warmup < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("--warmup must be zero or positive, got ", options.warmup));
  }
  if (options.decode_runs < 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--decode_runs must be zero (no decoding) or positive, got ", options.decode_runs));
  }
  if (options.decode_length < 1 || options.decode_length > config.model.max_len) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--decode_length must be in [1, ", config.model.max_len, "], got ", options.decode_length));
  }
  if (!options.profile_decoding.empty()) {
    if (options.decode_runs == 0) {
      return absl::InvalidArgumentError("--profile_decoding needs --decode_runs >= 1");
    }
    // Made now, so that a directory that cannot be made fails before minutes of training.
    std::error_code error;
    std::filesystem::create_directories(options.profile_decoding, error);
    if (error) {
      return absl::InvalidArgumentError(
          absl::StrCat("--profile_decoding ", options.profile_decoding, ": ", error.message()));
    }
  }
  if (const absl::Status usable = CheckMatmulInputDType(options.dtype); !usable.ok()) {
    return absl::Status(usable.code(), absl::StrCat("--dtype: ", usable.message()));
  }

  ASSIGN_OR_RETURN(
      std::shared_ptr<nn::Transformer> model,
      nn::Transformer::Create(config.model, {config.vocab, config.vocab, nn::SpecialTokens()},
                              options.seed));
  ManualSeed(options.seed);  // dropout masks
  Generator token_generator(options.seed + 1);

  BenchResult result;
  result.config = config;
  result.threads = NumThreads();
  result.parameters = model->ParameterCount();
  result.steps = options.steps;
  result.warmup = options.warmup;
  result.flops = CountTrainingStepFlops(config);
  result.dtype = options.dtype;
  {
    const MixedPrecision precision(options.dtype);
    result.training = RunTraining(*model, config, options, result.flops, token_generator);
  }
  result.sgemm_1024_gflops = MeasureSgemmCeiling(token_generator);
  result.mfu = result.training.achieved_gflops / result.sgemm_1024_gflops;
  if (options.dtype == DType::kBF16) {
    result.bf16_gemm_1024_gflops = MeasureBf16GemmCeiling(token_generator);
    result.bf16_ceiling_share = result.training.achieved_gflops / result.bf16_gemm_1024_gflops;
  }
  if (options.decode_runs > 0) {
    const MixedPrecision precision(options.dtype);
    result.decoding_measured = true;
    ASSIGN_OR_RETURN(result.decoding, RunDecoding(*model, config, options, token_generator));
  }
  return result;
}

}  // namespace attnlab::experiments
