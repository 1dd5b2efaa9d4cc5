"""The table of tools/compare-pytorch: reads the JSON lines of tools/compare_pytorch.py and
of `attnlab bench --json` (one file each) and prints training, decoding and the attention
sweep by length (`--attention_sweep` on both sides) side by side.

Both frameworks' MFU use the fp32 GEMM ceiling attnlab measured in the same invocation
(dnnl_sgemm at 1024^3, same threads), so the two fractions share one denominator.
Standard library only.
"""
import json
import sys


def read_lines(path):
    with open(path) as lines:
        return [json.loads(line) for line in lines if line.strip()]


def mib(value):
    return value / (1024 * 1024)


def main(pytorch_path, attnlab_path):
    pytorch_lines = read_lines(pytorch_path)
    header = next(line["header"] for line in pytorch_lines if "header" in line)
    pytorch = {line["model"]: line for line in pytorch_lines if "model" in line}
    attnlab_lines = read_lines(attnlab_path)
    attnlab = {line["model"]: line for line in attnlab_lines if "model" in line}
    pytorch_sweep = {line["length"]: line for line in pytorch_lines
                     if line.get("kind") == "attention_sweep"}
    attnlab_sweep = {line["length"]: line for line in attnlab_lines
                     if line.get("kind") == "attention_sweep"}
    models = [name for name in ("tiny", "small", "base") if name in attnlab and name in pytorch]

    dtype = pytorch[models[0]].get("dtype", "f32") if models else "f32"
    print(f"dtype {dtype}" + (" (attnlab --dtype bf16; PyTorch torch.autocast bf16)"
                              if dtype == "bf16" else ""))
    print(f"PyTorch {header['torch_version']}, {header['threads']} threads, BLAS: "
          f"{', '.join(header['blas_libraries']) or 'none found'}; "
          f"torch.mm 1024^3 {header['torch_mm_1024_gflops']:.1f} GFLOP/s")
    print()
    if not models:  # --models none: only the attention sweep
        print_sweep(attnlab_sweep, pytorch_sweep)
        return 0
    print("training step (forward + backward + Adam), median; target tokens/s = batch x "
          "target length / step")
    print(f"{'model':<6} {'attnlab tok/s':>13} {'PyTorch tok/s':>13} {'ratio':>6} "
          f"{'attnlab MFU':>11} {'PyTorch MFU':>11} {'GEMM ceiling':>12} "
          f"{'attnlab RSS':>11} {'PyTorch RSS':>11} {'RSS ratio':>9}")
    for name in models:
        ours, theirs = attnlab[name]["training"], pytorch[name]["training"]
        ceiling = ours["sgemm_1024_gflops"]
        print(f"{name:<6} {ours['target_tokens_per_second']:>13.0f} "
              f"{theirs['target_tokens_per_second']:>13.0f} "
              f"{ours['target_tokens_per_second'] / theirs['target_tokens_per_second']:>5.2f}x "
              f"{100 * ours['mfu']:>10.1f}% {100 * theirs['achieved_gflops'] / ceiling:>10.1f}% "
              f"{ceiling:>7.1f} GF/s "
              f"{mib(ours['peak_rss_bytes']):>7.0f} MiB {mib(theirs['peak_rss_bytes']):>7.0f} MiB "
              f"{ours['peak_rss_bytes'] / theirs['peak_rss_bytes']:>9.2f}")
    print()
    print_decoding(models, attnlab, pytorch)
    print_sweep(attnlab_sweep, pytorch_sweep)
    return 0


def print_sweep(attnlab_sweep, pytorch_sweep):
    lengths = sorted(set(attnlab_sweep) & set(pytorch_sweep))
    if not lengths:
        return
    first = attnlab_sweep[lengths[0]]
    print()
    print(f"attention by length: self-attention training step (forward + backward), "
          f"{first['heads']} heads of {first['head_dim']}, dropout {first['dropout']:.2g}, "
          f"batch x length constant; median ms; MiB = resident-set growth over one step")
    print(f"{'length':>6} {'batch':>5} {'fused ms':>9} {'composite':>9} {'PyTorch':>9} "
          f"{'fused/PT':>8} {'fused MiB':>9} {'composite':>9} {'PyTorch':>9} {'mem/PT':>7} "
          f"{'max diff':>9}")
    for length in lengths:
        ours, theirs = attnlab_sweep[length], pytorch_sweep[length]
        fused, composite = ours["fused"], ours["composite"]
        memory = (f"{mib(fused['peak_rss_growth_bytes']):>9.1f} "
                  f"{mib(composite['peak_rss_growth_bytes']):>9.1f} "
                  f"{mib(theirs['peak_rss_growth_bytes']):>9.1f} "
                  f"{fused['peak_rss_growth_bytes'] / theirs['peak_rss_growth_bytes']:>7.2f}"
                  if theirs["peak_rss_growth_bytes"] > 0 and fused["peak_rss_growth_bytes"] >= 0
                  else f"{'n/a':>9} {'n/a':>9} {'n/a':>9} {'n/a':>7}")
        difference = max(ours["max_output_difference"], ours["max_query_grad_difference"])
        print(f"{length:>6} {ours['batch']:>5} {fused['step_ms_median']:>9.2f} "
              f"{composite['step_ms_median']:>9.2f} {theirs['step_ms_median']:>9.2f} "
              f"{theirs['step_ms_median'] / fused['step_ms_median']:>7.2f}x {memory} "
              f"{difference:>9.1e}")


def print_decoding(models, attnlab, pytorch):
    decoded = [name for name in models
               if attnlab[name]["decoding"] is not None and pytorch[name]["decoding"] is not None]
    if not decoded:
        print("decoding: not measured (--decode_runs 0)")
        return
    length = attnlab[decoded[0]]["decoding"]["decode_length"]
    print(f"decoding, sentences/s ({length} tokens per sentence, batch = the config's batch)")
    print(f"{'model':<6} {'attnlab greedy':>14} {'PyTorch greedy':>14} {'ratio':>6} "
          f"{'attnlab beam 4':>14} {'attnlab no cache':>16} {'cache speedup':>13}")
    for name in decoded:
        ours, theirs = attnlab[name]["decoding"], pytorch[name]["decoding"]
        print(f"{name:<6} {ours['greedy_sentences_per_second']:>14.1f} "
              f"{theirs['greedy_sentences_per_second']:>14.1f} "
              f"{ours['greedy_sentences_per_second'] / theirs['greedy_sentences_per_second']:>5.2f}x "
              f"{ours['beam4_sentences_per_second']:>14.1f} "
              f"{ours['greedy_recompute_sentences_per_second']:>16.1f} "
              f"{ours['cache_speedup']:>12.1f}x")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: compare_pytorch_table.py PYTORCH_JSONL ATTNLAB_JSONL")
    sys.exit(main(sys.argv[1], sys.argv[2]))
