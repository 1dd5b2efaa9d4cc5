// `attnlab bench`: one reference configuration (reference_config.h) timed end to end, in
// this order, in one process:
//   1. training: W warm-up steps, then K timed steps of forward + label-smoothed
//      cross-entropy + backward + Adam step + zero_grad, on one fixed batch of random
//      tokens; the median step time gives target tokens/s (batch x target length / step)
//      and the achieved GFLOP/s (flop_count.h). Around the K steps it reads the caching
//      allocator's system allocations and peak, and the oneDNN primitives created.
//   2. the peak RSS so far (getrusage), i.e. of building the model and training it;
//   3. the machine's fp32 GEMM ceiling: dnnl_sgemm at 1024^3 on the same threads (median
//      of 15 after 3 warm-ups); MFU = achieved / ceiling. With dtype bf16 also the bf16
//      ceiling: oneDNN's bf16 matmul (f32 output) at 1024^3, measured the same way;
//   4. decoding, batch = the config's batch, each source of the config's length, exactly
//      `decode_length` tokens per sentence (the generator's eos logit is pushed to -1e9 so
//      no hypothesis of the random model ends early): greedy and beam-4 with the key/value
//      cache, and greedy recomputing the decoder over the whole prefix at every step
//      (Transformer::set_decoding_cache(false)). Each is run once to warm up (creating the
//      primitives of every prefix length), then `decode_runs` times; the median counts.
// With dtype bf16, steps 1 and 4 run inside a MixedPrecision scope
// (framework/ops/mixed_precision.h): bf16 matmul inputs, everything else f32.
// Threads are whatever OpenMP is set to (the CLI's --threads).
#pragma once

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "experiments/bench/flop_count.h"
#include "experiments/bench/reference_config.h"
#include "framework/distributed/communicator.h"
#include "framework/tensor/dtype.h"

namespace attnlab::experiments {

struct BenchOptions {
  std::string model = "tiny";  // a reference configuration
  int64_t steps = 20;          // timed training steps (K)
  int64_t warmup = 3;          // training steps before timing (W)
  int64_t decode_runs = 1;     // timed runs of each decoder; 0 skips decoding
  int64_t decode_length = 64;  // tokens generated per sentence
  uint64_t seed = 1;           // weights, tokens and dropout
  DType dtype = DType::kF32;   // matmul inputs: f32 or bf16 (mixed precision)
  // Under mpirun: the ranks train the reference batch data-parallel (each its rows, the
  // gradients summed over ranks as the trainer does, data_parallel.h); null: one process.
  distributed::Communicator* communicator = nullptr;
  bool overlap = true;  // false: all-reduce only after backward (to measure the overlap)
  // Non-empty: a directory. After timing, the greedy decodes with the cache run again,
  // decode_runs of them, under the profiler, which writes DIR/profile.txt and
  // DIR/trace.json there (each profiled "step" is one whole decode).
  std::string profile_decoding;
};

struct TrainingBench {
  double step_ms_median = 0, step_ms_min = 0, step_ms_max = 0;
  double target_tokens_per_second = 0;
  double achieved_gflops = 0;
  double final_loss = 0;                   // of the last timed step (a sanity check)
  uint64_t steady_system_allocations = 0;  // by the caching allocator, over the timed steps
  uint64_t steady_primitives_created = 0;  // oneDNN primitives, over the timed steps
  uint64_t total_system_allocations = 0;   // since the process started
  uint64_t total_primitives_created = 0;
  int64_t allocator_peak_bytes = 0;  // live tensor bytes at most, during the timed steps
  int64_t peak_rss_bytes = 0;        // the process's maximum resident set after training
  // Data-parallel: ranks, and per timed step this rank's all-reduce payload, the share of
  // the step spent in all-reduce and the share spent waiting for it (not hidden by
  // backward).
  int ranks = 1;
  double all_reduce_bytes_per_step = 0;
  double all_reduce_share = 0;
  double communication_wait_share = 0;
};

struct DecodingBench {
  int64_t batch = 0, source_length = 0, decode_length = 0, runs = 0;
  double greedy_sentences_per_second = 0;            // key/value cache
  double beam4_sentences_per_second = 0;             // key/value cache, beam size 4
  double greedy_recompute_sentences_per_second = 0;  // no cache
  double cache_speedup = 0;                          // greedy cached / recomputed
  std::string profile_tables;  // with BenchOptions::profile_decoding: what profile.txt holds
};

struct BenchResult {
  ReferenceConfig config;
  int threads = 0;
  int64_t parameters = 0;
  int64_t steps = 0, warmup = 0;
  TrainingStepFlops flops;
  TrainingBench training;
  DType dtype = DType::kF32;
  double sgemm_1024_gflops = 0;      // the fp32 ceiling
  double mfu = 0;                    // training.achieved_gflops / sgemm_1024_gflops
  double bf16_gemm_1024_gflops = 0;  // the bf16 ceiling (dtype bf16 only)
  double bf16_ceiling_share = 0;     // training.achieved_gflops / bf16_gemm_1024_gflops
  bool decoding_measured = false;
  DecodingBench decoding;
};

// Fails (InvalidArgument / NotFound) on an unknown model or non-positive counts, and
// (FailedPrecondition) on bf16 where the CPU has no native bf16 instructions.
absl::StatusOr<BenchResult> RunBench(const BenchOptions& options);

}  // namespace attnlab::experiments
