// `attnlab bench --model tiny|small|base`: the training step and decoding speed of a
// reference configuration (../shared/DESIGN.md), as a table or one JSON object.
// What is measured, and how, is in experiments/bench/bench.h; the FLOP formula is in
// experiments/bench/flop_count.h. This file parses the flags and prints the result.
#include <cstdio>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "experiments/bench/attention_sweep.h"
#include "experiments/bench/bench.h"
#include "framework/core/error.h"
#include "framework/distributed/communicator.h"
#include "framework/parallel/parallel_for.h"
#include "tools/cli/command.h"
#include "tools/cli/flags.h"

namespace attnlab::cli {
namespace {

using Json = nlohmann::ordered_json;

std::vector<FlagSpec> BenchFlags() {
  return {
      {"model", "reference configuration: tiny, small or base"},
      ThreadsFlag(),
      {"steps", "timed training steps (default 20)"},
      {"warmup", "training steps before timing (default 3)"},
      {"dtype", "matmul inputs: f32 (default) or bf16 (mixed precision; needs AVX512-BF16)"},
      {"decode_runs", "timed runs of each decoder, median counts; 0 skips decoding (default 1)"},
      {"decode_length", "tokens generated per sentence (default 64)"},
      {"seed", "weights, tokens and dropout (default 1)"},
      {"profile_decoding",
       "directory: profile decode_runs greedy decodes with the cache into DIR/profile.txt and "
       "DIR/trace.json"},
      {"json", "print one JSON object instead of the table", false},
      {"attention_sweep",
       "instead of a model: the fused and composite attention by length (see below)", false},
      {"lengths", "with --attention_sweep: comma-separated lengths (default 64,128,256,512,1024)"},
      {"tokens", "with --attention_sweep: batch x length at every length (default 8192)"},
      {"no_overlap",
       "under mpirun: all-reduce the gradients only after backward, not while it runs", false}};
}

absl::StatusOr<DType> ParseDtype(const std::string& dtype) {
  if (dtype == "f32") return DType::kF32;
  if (dtype == "bf16") return DType::kBF16;
  return absl::InvalidArgumentError(absl::StrCat("--dtype must be f32 or bf16, got '", dtype, "'"));
}

Json ToJson(const experiments::BenchResult& result) {
  const experiments::ReferenceConfig& config = result.config;
  const experiments::TrainingBench& training = result.training;
  Json json;
  json["model"] = config.name;
  json["config"] = {{"d_model", config.model.d_model},
                    {"heads", config.model.attention.heads},
                    {"d_ff", config.model.d_ff},
                    {"encoder_layers", config.model.encoder_layers},
                    {"decoder_layers", config.model.decoder_layers},
                    {"vocab", config.vocab},
                    {"batch", config.batch},
                    {"length", config.length}};
  json["dtype"] = std::string(DTypeName(result.dtype));
  json["threads"] = result.threads;
  json["parameters"] = result.parameters;
  json["training"] = {{"steps", result.steps},
                      {"warmup", result.warmup},
                      {"step_ms_median", training.step_ms_median},
                      {"step_ms_min", training.step_ms_min},
                      {"step_ms_max", training.step_ms_max},
                      {"target_tokens_per_second", training.target_tokens_per_second},
                      {"flops_per_step", result.flops.training_step},
                      {"achieved_gflops", training.achieved_gflops},
                      {"sgemm_1024_gflops", result.sgemm_1024_gflops},
                      {"mfu", result.mfu},
                      {"bf16_gemm_1024_gflops", result.bf16_gemm_1024_gflops},
                      {"bf16_ceiling_share", result.bf16_ceiling_share},
                      {"peak_rss_bytes", training.peak_rss_bytes},
                      {"allocator_peak_bytes", training.allocator_peak_bytes},
                      {"steady_system_allocations", training.steady_system_allocations},
                      {"steady_primitives_created", training.steady_primitives_created},
                      {"total_system_allocations", training.total_system_allocations},
                      {"total_primitives_created", training.total_primitives_created},
                      {"final_loss", training.final_loss},
                      {"ranks", training.ranks},
                      {"all_reduce_bytes_per_step", training.all_reduce_bytes_per_step},
                      {"all_reduce_share", training.all_reduce_share},
                      {"communication_wait_share", training.communication_wait_share}};
  if (result.decoding_measured) {
    const experiments::DecodingBench& decoding = result.decoding;
    json["decoding"] = {
        {"batch", decoding.batch},
        {"source_length", decoding.source_length},
        {"decode_length", decoding.decode_length},
        {"runs", decoding.runs},
        {"greedy_sentences_per_second", decoding.greedy_sentences_per_second},
        {"beam4_sentences_per_second", decoding.beam4_sentences_per_second},
        {"greedy_recompute_sentences_per_second", decoding.greedy_recompute_sentences_per_second},
        {"cache_speedup", decoding.cache_speedup}};
    if (!decoding.profile_tables.empty()) json["decoding"]["profile"] = decoding.profile_tables;
  } else {
    json["decoding"] = nullptr;
  }
  return json;
}

double MiB(int64_t bytes) { return static_cast<double>(bytes) / (1024.0 * 1024.0); }

void PrintTable(const experiments::BenchResult& result) {
  const experiments::ReferenceConfig& config = result.config;
  const experiments::TrainingBench& training = result.training;
  std::printf(
      "attnlab bench: %s (d_model %lld, heads %lld, d_ff %lld, layers %lld+%lld, vocab %lld, "
      "batch %lld, length %lld), %.2fM parameters, %d threads, %s\n",
      config.name.c_str(), static_cast<long long>(config.model.d_model),
      static_cast<long long>(config.model.attention.heads),
      static_cast<long long>(config.model.d_ff),
      static_cast<long long>(config.model.encoder_layers),
      static_cast<long long>(config.model.decoder_layers), static_cast<long long>(config.vocab),
      static_cast<long long>(config.batch), static_cast<long long>(config.length),
      static_cast<double>(result.parameters) * 1e-6, result.threads,
      result.dtype == DType::kBF16 ? "bf16 mixed precision (bf16 matmul inputs)" : "f32");
  std::printf("training step (forward + backward + Adam), %lld steps after %lld warm-up\n",
              static_cast<long long>(result.steps), static_cast<long long>(result.warmup));
  std::printf("  step time              median %.2f ms (min %.2f, max %.2f)\n",
              training.step_ms_median, training.step_ms_min, training.step_ms_max);
  std::printf("  target tokens/s        %.0f\n", training.target_tokens_per_second);
  if (training.ranks > 1) {
    std::printf(
        "  data parallel          %d ranks x %d threads: %.1f MB all-reduced per step, %.1f%% "
        "of the step in all-reduce, %.1f%% waiting for it\n",
        training.ranks, result.threads, training.all_reduce_bytes_per_step * 1e-6,
        100.0 * training.all_reduce_share, 100.0 * training.communication_wait_share);
  }
  std::printf("  FLOPs per step         %.3f GFLOP (matmuls, 3 x forward)\n",
              result.flops.training_step * 1e-9);
  std::printf("  achieved               %.1f GFLOP/s\n", training.achieved_gflops);
  std::printf("  fp32 GEMM ceiling      %.1f GFLOP/s (dnnl_sgemm 1024^3)\n",
              result.sgemm_1024_gflops);
  std::printf("  MFU                    %.1f%%\n", 100.0 * result.mfu);
  if (result.dtype == DType::kBF16) {
    std::printf("  bf16 GEMM ceiling      %.1f GFLOP/s (oneDNN bf16 matmul 1024^3): %.1f%% of it\n",
                result.bf16_gemm_1024_gflops, 100.0 * result.bf16_ceiling_share);
  }
  std::printf("  peak RSS               %.1f MiB\n", MiB(training.peak_rss_bytes));
  std::printf("  allocator peak         %.1f MiB (live tensors during the timed steps)\n",
              MiB(training.allocator_peak_bytes));
  std::printf(
      "  steady state           %llu system allocations, %llu oneDNN primitives created "
      "(totals %llu, %llu)\n",
      static_cast<unsigned long long>(training.steady_system_allocations),
      static_cast<unsigned long long>(training.steady_primitives_created),
      static_cast<unsigned long long>(training.total_system_allocations),
      static_cast<unsigned long long>(training.total_primitives_created));
  std::printf("  loss                   %.4f\n", training.final_loss);
  if (!result.decoding_measured) {
    std::printf("decoding: skipped (--decode_runs 0)\n");
    return;
  }
  const experiments::DecodingBench& decoding = result.decoding;
  std::printf(
      "decoding (batch %lld, source length %lld, %lld tokens per sentence, median of %lld "
      "after 1 warm-up)\n",
      static_cast<long long>(decoding.batch), static_cast<long long>(decoding.source_length),
      static_cast<long long>(decoding.decode_length), static_cast<long long>(decoding.runs));
  std::printf("  greedy, key/value cache      %.1f sentences/s\n",
              decoding.greedy_sentences_per_second);
  std::printf("  beam 4, key/value cache      %.1f sentences/s\n",
              decoding.beam4_sentences_per_second);
  std::printf("  greedy, full recomputation   %.1f sentences/s (the cache is %.1fx faster)\n",
              decoding.greedy_recompute_sentences_per_second, decoding.cache_speedup);
  if (!decoding.profile_tables.empty()) {
    std::printf("\ngreedy decoding with the cache, profiled (one step = one decode):\n%s\n",
                decoding.profile_tables.c_str());
  }
}

// --lengths 64,128,256: positive integers.
absl::StatusOr<std::vector<int64_t>> ParseLengths(const std::string& text) {
  std::vector<int64_t> lengths;
  for (const absl::string_view part : absl::StrSplit(text, ',')) {
    int64_t length = 0;
    if (!absl::SimpleAtoi(part, &length) || length <= 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          "--lengths must be positive integers separated by commas, got '", text, "'"));
    }
    lengths.push_back(length);
  }
  return lengths;
}

Json ToJson(const experiments::AttentionSweepRow& row,
            const experiments::AttentionSweepOptions& options, int threads) {
  auto path_json = [](const experiments::AttentionSweepPath& path) {
    return Json{{"step_ms_median", path.step_ms_median},
                {"peak_rss_growth_bytes", path.peak_rss_growth_bytes},
                {"allocator_peak_bytes", path.allocator_peak_bytes}};
  };
  return Json{{"kind", "attention_sweep"},
              {"framework", "attnlab"},
              {"length", row.length},
              {"batch", row.batch},
              {"heads", options.heads},
              {"head_dim", options.head_dim},
              {"dropout", options.dropout},
              {"threads", threads},
              {"steps", options.steps},
              {"fused", path_json(row.fused)},
              {"composite", path_json(row.composite)},
              {"max_output_difference", row.max_output_difference},
              {"max_query_grad_difference", row.max_query_grad_difference}};
}

absl::Status RunAttentionSweepCommand(const ParsedFlags& flags) {
  experiments::AttentionSweepOptions options;
  if (flags.Has("lengths")) {
    ASSIGN_OR_RETURN(options.lengths, ParseLengths(flags.Get("lengths")));
  }
  ASSIGN_OR_RETURN(options.tokens, flags.GetInt("tokens", options.tokens));
  ASSIGN_OR_RETURN(options.steps, flags.GetInt("steps", options.steps));
  ASSIGN_OR_RETURN(options.warmup, flags.GetInt("warmup", options.warmup));
  ASSIGN_OR_RETURN(const int64_t seed, flags.GetInt("seed", 1));
  options.seed = static_cast<uint64_t>(seed);
  RETURN_IF_ERROR(ApplyThreadsFlag(flags));
  ASSIGN_OR_RETURN(const std::vector<experiments::AttentionSweepRow> rows,
                   experiments::RunAttentionSweep(options));
  const int threads = NumThreads();
  if (flags.Has("json")) {
    for (const auto& row : rows) std::printf("%s\n", ToJson(row, options, threads).dump().c_str());
    return absl::OkStatus();
  }
  std::printf(
      "attnlab bench --attention_sweep: self-attention training step (forward + backward), "
      "%lld heads of %lld, dropout %.2g, %lld tokens per length, %d threads, median of %lld\n",
      static_cast<long long>(options.heads), static_cast<long long>(options.head_dim),
      options.dropout, static_cast<long long>(options.tokens), threads,
      static_cast<long long>(options.steps));
  std::printf("%7s %6s | %10s %10s %7s | %12s %12s | %10s\n", "length", "batch", "fused ms",
              "compos. ms", "speedup", "fused MiB", "compos. MiB", "max diff");
  auto rss_mib = [](int64_t bytes) { return bytes < 0 ? -1.0 : MiB(bytes); };
  for (const auto& row : rows) {
    std::printf("%7lld %6lld | %10.2f %10.2f %6.2fx | %12.1f %12.1f | %10.2e\n",
                static_cast<long long>(row.length), static_cast<long long>(row.batch),
                row.fused.step_ms_median, row.composite.step_ms_median,
                row.composite.step_ms_median / row.fused.step_ms_median,
                rss_mib(row.fused.peak_rss_growth_bytes),
                rss_mib(row.composite.peak_rss_growth_bytes),
                std::max(row.max_output_difference, row.max_query_grad_difference));
  }
  std::printf(
      "(MiB: growth of the resident set over one step; -1 where /proc/self/clear_refs "
      "is not writable)\n");
  return absl::OkStatus();
}

absl::Status RunBenchCommand(const std::vector<std::string>& args) {
  ASSIGN_OR_RETURN(const ParsedFlags flags, ParseFlags(args, BenchFlags()));
  if (!flags.positional().empty()) {
    return absl::InvalidArgumentError(absl::StrCat("unexpected argument '", flags.positional()[0],
                                                   "' (see attnlab bench --help)"));
  }
  if (flags.Has("attention_sweep")) {
    if (flags.Has("model")) {
      return absl::InvalidArgumentError(
          "--attention_sweep and --model are two different benchmarks: give one");
    }
    return RunAttentionSweepCommand(flags);
  }
  if (flags.Has("lengths") || flags.Has("tokens")) {
    return absl::InvalidArgumentError("--lengths and --tokens go with --attention_sweep");
  }
  if (!flags.Has("model")) {
    return absl::InvalidArgumentError(
        "expected --model tiny|small|base (see attnlab bench --help)");
  }
  experiments::BenchOptions options;
  ASSIGN_OR_RETURN(options.dtype, ParseDtype(flags.Get("dtype", "f32")));
  options.model = flags.Get("model");
  ASSIGN_OR_RETURN(options.steps, flags.GetInt("steps", options.steps));
  ASSIGN_OR_RETURN(options.warmup, flags.GetInt("warmup", options.warmup));
  ASSIGN_OR_RETURN(options.decode_runs, flags.GetInt("decode_runs", options.decode_runs));
  ASSIGN_OR_RETURN(options.decode_length, flags.GetInt("decode_length", options.decode_length));
  options.profile_decoding = flags.Get("profile_decoding", "");
  ASSIGN_OR_RETURN(const int64_t seed, flags.GetInt("seed", 1));
  options.seed = static_cast<uint64_t>(seed);
  RETURN_IF_ERROR(ApplyThreadsFlag(flags));
  // Under mpirun the ranks train the reference batch data-parallel; decoding is not
  // distributed, so it is skipped there.
  ASSIGN_OR_RETURN(const std::unique_ptr<distributed::Communicator> communicator,
                   distributed::Communicator::Create({.collective_timeout = absl::Minutes(10)}));
  if (communicator->size() > 1) {
    options.communicator = communicator.get();
    options.decode_runs = 0;
  }
  options.overlap = !flags.Has("no_overlap");
  ASSIGN_OR_RETURN(const experiments::BenchResult result, experiments::RunBench(options));
  if (communicator->rank() != 0) return absl::OkStatus();  // rank 0 reports
  if (flags.Has("json")) {
    std::printf("%s\n", ToJson(result).dump().c_str());
  } else {
    PrintTable(result);
  }
  return absl::OkStatus();
}

const std::string kUsage = absl::StrCat(
    "usage: attnlab bench --model tiny|small|base [--threads N] [--steps K] [--warmup W]\n"
    "                     [--dtype f32|bf16] [--decode_runs R] [--decode_length L]\n"
    "                     [--profile_decoding DIR] [--json]\n\n"
    "Times one reference configuration (post-LN Transformer, sinusoidal positions, ReLU,\n"
    "dropout 0.1, label smoothing 0.1, Adam, random tokens; shapes in experiments/bench/\n"
    "README.md): the median training step (forward + backward + Adam) over K steps after\n"
    "W warm-up, target tokens/s, GFLOP/s from an analytic FLOP count, the fp32 GEMM\n"
    "ceiling (dnnl_sgemm 1024^3, same threads) and MFU, peak RSS, the system allocations\n"
    "and oneDNN primitives of the timed steps; then greedy and beam-4 decoding with the\n"
    "key/value cache and greedy with full recomputation, in sentences/s. --dtype bf16\n"
    "runs both in mixed precision: bf16 matmul inputs, f32 weights, accumulation, softmax,\n"
    "norms and loss; it adds the bf16 GEMM ceiling (oneDNN bf16 matmul 1024^3).\n"
    "--profile_decoding DIR then runs R greedy decodes with the cache under the profiler\n"
    "(op, layer and thread tables in DIR/profile.txt, a trace in DIR/trace.json; one\n"
    "profiled step is one decode) and prints the tables.\n"
    "Under mpirun (mpirun -np 2 attnlab bench --model base --threads 1) the ranks train the\n"
    "batch data-parallel as `attnlab train` does, and the table adds the bytes all-reduced\n"
    "per step and the step's share in all-reduce; decoding is skipped.\n\n"
    "attnlab bench --attention_sweep [--lengths 64,128,256,512,1024] [--tokens 8192]\n"
    "    [--steps K] [--warmup W] [--threads N] [--json]\n"
    "times the attention of encoder self-attention in training (8 heads of 64, dropout\n"
    "0.1, batch = tokens / length) at each length, fused (O(length) memory) against the\n"
    "composite ops (which materialise the length x length weights): median step time,\n"
    "peak memory of one step, and the largest difference of their results\n"
    "(experiments/bench/attention_sweep.h).\n\nflags:\n",
    FlagsHelp(BenchFlags()));

ATTNLAB_COMMAND(bench, "bench", "time training and decoding of a reference model", kUsage.c_str(),
                RunBenchCommand);

}  // namespace
}  // namespace attnlab::cli
