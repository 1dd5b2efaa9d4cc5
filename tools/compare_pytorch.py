"""PyTorch's side of tools/compare-pytorch: the reference configurations of
../shared/DESIGN.md trained and decoded in PyTorch, printed as one JSON object per model.

The model is attnlab's `attnlab bench` model, built from PyTorch's standard modules:
nn.TransformerEncoderLayer / nn.TransformerDecoderLayer (post-LN, ReLU, dropout 0.1 on the
sublayer outputs, inside the feed-forward and on the attention weights, batch_first)
stacked with nn.TransformerEncoder / nn.TransformerDecoder *without* final LayerNorms
(nn.Transformer always adds them, attnlab's post-LN model has none), token embeddings x
sqrt(d_model) + the sinusoidal table + dropout 0.1, a Linear generator, cross-entropy with
label smoothing 0.1, and Adam (betas 0.9/0.98, eps 1e-9). These layers are PyTorch's
fastest standard training path: the fused "fast path" of nn.TransformerEncoderLayer
(torch._transformer_encoder_layer_fwd) runs only in inference, without autograd. No
padding masks are passed (random tokens have no padding), only the decoder's causal mask.

Decoding: greedy, batch = the config's batch, exactly DECODE_LENGTH tokens per sentence,
with a hand-written key/value cache over the same modules' weights (self-attention keys
and values appended per step into preallocated buffers, cross-attention keys and values
projected once), validated against the full decoder before it is timed.

With --dtype bf16 the forward passes (and the loss) run under
torch.autocast("cpu", dtype=torch.bfloat16), PyTorch's standard mixed precision: matmuls
in bf16, parameters, optimizer and the autocast fp32 list (softmax, layer norm, losses) in
fp32; backward follows the forward's dtypes. Decoding runs under autocast too.

The training FLOP count is attnlab's (experiments/bench/flop_count.h), repeated here.
"""
import argparse
import ctypes
import gc
import json
import math
import os
import resource
import statistics
import sys
import time

import torch
import torch.nn.functional as F
from torch import nn

# name: (d_model, heads, d_ff, encoder_layers, decoder_layers, vocab, batch, length)
CONFIGS = {
    "tiny": (128, 4, 512, 2, 2, 32, 64, 24),
    "small": (256, 4, 1024, 3, 3, 64, 64, 32),
    "base": (512, 8, 2048, 6, 6, 8000, 32, 64),
}
PAD, BOS = 0, 1
DROPOUT, LABEL_SMOOTHING, LEARNING_RATE = 0.1, 0.1, 1e-4
MAX_POSITIONS = 512


def training_step_flops(d, f, enc, dec, vocab, batch, length):
    """Matmul FLOPs of one training step: 3 x forward (experiments/bench/flop_count.h)."""
    b, s, t = batch, length, length
    encoder_layer = 8 * b * s * d * d + 4 * b * s * s * d + 4 * b * s * d * f
    decoder_layer = (8 * b * t * d * d + 4 * b * t * t * d + 4 * b * t * d * d + 4 * b * s * d * d
                     + 4 * b * t * s * d + 4 * b * t * d * f)
    generator = 2 * b * t * d * vocab
    return 3 * (enc * encoder_layer + dec * decoder_layer + generator)


def sinusoidal_table(length, d):
    """Vaswani et al. 2017, section 3.5: [length, d]."""
    position = torch.arange(length, dtype=torch.float32).unsqueeze(1)
    frequency = torch.exp(torch.arange(0, d, 2, dtype=torch.float32) * (-math.log(10000.0) / d))
    table = torch.zeros(length, d)
    table[:, 0::2] = torch.sin(position * frequency)
    table[:, 1::2] = torch.cos(position * frequency)
    return table


class Seq2SeqTransformer(nn.Module):
    def __init__(self, d, heads, f, enc, dec, vocab):
        super().__init__()
        self.d = d
        self.heads = heads
        self.src_embed = nn.Embedding(vocab, d, padding_idx=PAD)
        self.tgt_embed = nn.Embedding(vocab, d, padding_idx=PAD)
        self.register_buffer("positions", sinusoidal_table(MAX_POSITIONS, d), persistent=False)
        self.dropout = nn.Dropout(DROPOUT)
        encoder_layer = nn.TransformerEncoderLayer(d, heads, f, DROPOUT, activation="relu",
                                                   batch_first=True, norm_first=False)
        decoder_layer = nn.TransformerDecoderLayer(d, heads, f, DROPOUT, activation="relu",
                                                   batch_first=True, norm_first=False)
        self.encoder = nn.TransformerEncoder(encoder_layer, enc, norm=None,
                                             enable_nested_tensor=False)
        self.decoder = nn.TransformerDecoder(decoder_layer, dec, norm=None)
        self.generator = nn.Linear(d, vocab)

    def embed(self, embedding, ids, offset=0):
        x = embedding(ids) * math.sqrt(self.d)
        return self.dropout(x + self.positions[offset:offset + ids.shape[1]])

    def encode(self, src):
        x = self.embed(self.src_embed, src)
        if torch.is_autocast_cpu_enabled() and not self.training:
            # PyTorch 1.13's inference fast path of nn.TransformerEncoderLayer fails under CPU
            # autocast ("expected scalar type BFloat16 but found Float"); an all-zero additive
            # mask takes the standard path, with the same result.
            return self.encoder(x, mask=torch.zeros(x.shape[1], x.shape[1]))
        return self.encoder(x)

    def forward(self, src, tgt_in, causal_mask):
        memory = self.encode(src)
        hidden = self.decoder(self.embed(self.tgt_embed, tgt_in), memory, tgt_mask=causal_mask)
        return self.generator(hidden)


def causal_mask(length):
    return torch.triu(torch.full((length, length), float("-inf")), diagonal=1)


def peak_rss_bytes():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux: kilobytes


def time_runs(runs, function):
    """Seconds of each of `runs` calls of `function`."""
    seconds = []
    for _ in range(runs):
        start = time.perf_counter()
        function()
        seconds.append(time.perf_counter() - start)
    return seconds


# ---- Decoding with a hand-written key/value cache -----------------------------------------

class CachedGreedyDecoder:
    """Greedy decoding of Seq2SeqTransformer in eval mode, one token per step for all rows."""

    def __init__(self, model, src, max_length):
        self.model = model
        self.heads = model.heads
        self.head_dim = model.d // model.heads
        self.rows = src.shape[0]
        self.memory = model.encode(src)  # [rows, src, d]
        self.layers = list(model.decoder.layers)
        shape = (self.rows, self.heads, max_length, self.head_dim)
        self.self_keys = [torch.empty(shape) for _ in self.layers]
        self.self_values = [torch.empty(shape) for _ in self.layers]
        # Cross-attention keys and values: projected from the memory once.
        self.cross_keys, self.cross_values = [], []
        for layer in self.layers:
            attention = layer.multihead_attn
            _, w_k, w_v = attention.in_proj_weight.chunk(3)
            _, b_k, b_v = attention.in_proj_bias.chunk(3)
            self.cross_keys.append(self.split_heads(F.linear(self.memory, w_k, b_k)))
            self.cross_values.append(self.split_heads(F.linear(self.memory, w_v, b_v)))
        self.steps = 0

    def split_heads(self, x):  # [rows, time, d] -> [rows, heads, time, head_dim]
        return x.view(self.rows, -1, self.heads, self.head_dim).transpose(1, 2)

    def merge_heads(self, x):  # [rows, heads, time, head_dim] -> [rows, time, d]
        return x.transpose(1, 2).reshape(self.rows, -1, self.heads * self.head_dim)

    def attend(self, query, keys, values):
        scores = torch.matmul(query, keys.transpose(-1, -2)) / math.sqrt(self.head_dim)
        return torch.matmul(torch.softmax(scores, dim=-1), values)

    def step(self, last_tokens):
        """last_tokens: [rows] -> logits [rows, vocab]."""
        t = self.steps
        x = self.model.embed(self.model.tgt_embed, last_tokens.unsqueeze(1), offset=t)
        for i, layer in enumerate(self.layers):
            attention = layer.self_attn
            q, k, v = F.linear(x, attention.in_proj_weight, attention.in_proj_bias).chunk(3, -1)
            self.self_keys[i][:, :, t:t + 1] = self.split_heads(k)
            self.self_values[i][:, :, t:t + 1] = self.split_heads(v)
            context = self.attend(self.split_heads(q), self.self_keys[i][:, :, :t + 1],
                                  self.self_values[i][:, :, :t + 1])
            x = layer.norm1(x + attention.out_proj(self.merge_heads(context)))
            cross = layer.multihead_attn
            w_q = cross.in_proj_weight[:self.model.d]
            b_q = cross.in_proj_bias[:self.model.d]
            context = self.attend(self.split_heads(F.linear(x, w_q, b_q)), self.cross_keys[i],
                                  self.cross_values[i])
            x = layer.norm2(x + cross.out_proj(self.merge_heads(context)))
            x = layer.norm3(x + layer.linear2(F.relu(layer.linear1(x))))
        self.steps += 1
        return self.model.generator(x).squeeze(1)


def greedy_decode(model, src, length):
    decoder = CachedGreedyDecoder(model, src, length)
    tokens = torch.full((src.shape[0],), BOS, dtype=torch.long)
    for _ in range(length):
        tokens = decoder.step(tokens).argmax(-1)
    return tokens


def check_cached_decoder(model, src, length):
    """The cached steps' logits against the full decoder's, on a fixed random prefix."""
    generator = torch.Generator().manual_seed(3)
    tgt_in = torch.randint(3, model.generator.out_features, (src.shape[0], length),
                           generator=generator)
    tgt_in[:, 0] = BOS
    full = model(src, tgt_in, causal_mask(length))
    decoder = CachedGreedyDecoder(model, src, length)
    worst = 0.0
    for t in range(length):
        worst = max(worst, (decoder.step(tgt_in[:, t]) - full[:, t]).abs().max().item())
    if worst > 1e-3:
        raise SystemExit(f"compare_pytorch.py: the cached decoder differs from the full one by "
                         f"{worst:g}")
    return worst


def autocast(dtype):
    """bf16: torch.autocast on the CPU; f32: no change."""
    return torch.autocast("cpu", dtype=torch.bfloat16, enabled=dtype == "bf16")


# ---- One configuration ------------------------------------------------------------------

def run(name, args):
    d, heads, f, enc, dec, vocab, batch, length = CONFIGS[name]
    torch.manual_seed(args.seed)
    model = Seq2SeqTransformer(d, heads, f, enc, dec, vocab)
    parameters = sum(p.numel() for p in model.parameters())
    optimizer = torch.optim.Adam(model.parameters(), lr=LEARNING_RATE, betas=(0.9, 0.98),
                                 eps=1e-9)
    loss_function = nn.CrossEntropyLoss(label_smoothing=LABEL_SMOOTHING, ignore_index=PAD)
    generator = torch.Generator().manual_seed(args.seed + 1)
    target = torch.randint(3, vocab, (batch, length), generator=generator)
    tgt_in = torch.cat([torch.full((batch, 1), BOS), target[:, :-1]], dim=1)
    src = torch.randint(3, vocab, (batch, length), generator=generator)
    mask = causal_mask(length)
    model.train()
    last_loss = []

    def step():
        with autocast(args.dtype):
            logits = model(src, tgt_in, mask)
            loss = loss_function(logits.reshape(-1, vocab), target.reshape(-1))
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        last_loss[:] = [loss.item()]

    time_runs(args.warmup, step)
    seconds = time_runs(args.steps, step)
    median = statistics.median(seconds)
    rss = peak_rss_bytes()
    flops = training_step_flops(d, f, enc, dec, vocab, batch, length)
    result = {
        "model": name,
        "framework": "pytorch",
        "dtype": args.dtype,
        "threads": torch.get_num_threads(),
        "parameters": parameters,
        "training": {
            "steps": args.steps,
            "warmup": args.warmup,
            "step_ms_median": median * 1e3,
            "step_ms_min": min(seconds) * 1e3,
            "step_ms_max": max(seconds) * 1e3,
            "target_tokens_per_second": batch * length / median,
            "flops_per_step": flops,
            "achieved_gflops": flops / median * 1e-9,
            "peak_rss_bytes": rss,
            "final_loss": last_loss[0],
        },
        "decoding": None,
    }
    if args.decode_runs > 0:
        model.eval()
        decode_src = torch.randint(3, vocab, (batch, length), generator=generator)
        with torch.inference_mode():  # the cache is checked in f32, timed in args.dtype
            worst = check_cached_decoder(model, decode_src, args.decode_length)
        with torch.inference_mode(), autocast(args.dtype):
            greedy_decode(model, decode_src, args.decode_length)  # warm-up
            decode_median = statistics.median(time_runs(
                args.decode_runs, lambda: greedy_decode(model, decode_src, args.decode_length)))
        result["decoding"] = {
            "batch": batch,
            "source_length": length,
            "decode_length": args.decode_length,
            "runs": args.decode_runs,
            "greedy_sentences_per_second": batch / decode_median,
            "cache_check_max_abs_difference": worst,
        }
    return result


def status_bytes(field):
    """A "VmRSS:" or "VmHWM:" line of /proc/self/status, in bytes."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field):
                return int(line.split()[1]) * 1024
    return None


def reset_peak_rss():
    """Resets VmHWM to the current resident set (Linux >= 4.0); False where not allowed."""
    try:
        with open("/proc/self/clear_refs", "w") as clear_refs:
            clear_refs.write("5")
        return True
    except OSError:
        return False


def attention_sweep(lengths, tokens, seed):
    """The attention of encoder self-attention in training, as `attnlab bench
    --attention_sweep` times it (experiments/bench/attention_sweep.h): 8 heads of 64,
    batch = tokens / length, softmax(q k^T / 8) with dropout 0.1 on the weights, times v,
    forward + backward. PyTorch 1.13 has no fused attention for training on CPU, so the
    [batch, heads, L, L] scores and weights are materialised. Median of 5 steps after 1;
    the peak memory of one step is the growth of the resident set over it."""
    heads, head_dim, dropout, steps = 8, 64, 0.1, 5
    libc = ctypes.CDLL("libc.so.6")
    scale = 1.0 / math.sqrt(head_dim)
    rows = []
    for length in lengths:
        batch = max(1, tokens // length)
        generator = torch.Generator().manual_seed(seed)
        shape = (batch, heads, length, head_dim)
        leaves = [(torch.rand(shape, generator=generator) * 2 - 1).requires_grad_()
                  for _ in range(3)]
        output_grad = torch.rand(shape, generator=generator) * 2 - 1
        query, key, value = leaves

        def step():
            weights = torch.softmax(torch.matmul(query, key.transpose(-1, -2)) * scale, dim=-1)
            output = torch.matmul(F.dropout(weights, dropout, training=True), value)
            output.backward(output_grad)
            for leaf in leaves:
                leaf.grad = None

        gc.collect()
        libc.malloc_trim(0)  # freed heap pages back to the system, as attnlab's side does
        rss_before = status_bytes("VmRSS:")
        reset = reset_peak_rss()
        step()
        peak = status_bytes("VmHWM:")
        growth = max(0, peak - rss_before) if reset and peak and rss_before else -1
        seconds = time_runs(steps, step)
        rows.append({"kind": "attention_sweep", "framework": "pytorch", "length": length,
                     "batch": batch, "heads": heads, "head_dim": head_dim, "dropout": dropout,
                     "threads": torch.get_num_threads(), "steps": steps,
                     "step_ms_median": statistics.median(seconds) * 1e3,
                     "peak_rss_growth_bytes": growth})
    return rows


def gemm_gflops():
    """torch.mm at 1024^3 (OpenBLAS here): PyTorch's own GEMM rate, for information."""
    a, b = torch.rand(1024, 1024), torch.rand(1024, 1024)
    time_runs(3, lambda: torch.mm(a, b))
    return 2 * 1024 ** 3 / statistics.median(time_runs(15, lambda: torch.mm(a, b))) * 1e-9


def loaded_blas_libraries():
    """The BLAS/LAPACK shared objects this process really mapped."""
    libraries = set()
    with open("/proc/self/maps") as maps:
        for line in maps:
            path = line.split()[-1]
            if any(part in path for part in ("blas", "lapack")):
                libraries.add(os.path.realpath(path))
    return sorted(libraries)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", default="tiny,small,base")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--decode_runs", type=int, default=1)
    parser.add_argument("--decode_length", type=int, default=64)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--dtype", choices=["f32", "bf16"], default="f32")
    parser.add_argument("--attention_sweep", default="",
                        help="comma-separated lengths: time the attention sweep after the models")
    parser.add_argument("--tokens", type=int, default=8192,
                        help="with --attention_sweep: batch x length at every length")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    models = [name for name in args.models.split(",") if name and name != "none"]
    for name in models:
        if name not in CONFIGS:
            raise SystemExit(f"compare_pytorch.py: unknown model '{name}'; the reference "
                             f"configurations are tiny, small, base")
    header = {
        "torch_version": torch.__version__,
        "threads": torch.get_num_threads(),
        "blas_libraries": loaded_blas_libraries(),
        "torch_config": torch.__config__.show(),
        "openblas_environment": {k: v for k, v in os.environ.items() if k.startswith("OPENBLAS")},
        "openmp_environment": {k: v for k, v in os.environ.items()
                               if k.startswith(("OMP_", "GOMP_"))},
        "torch_mm_1024_gflops": gemm_gflops(),
    }
    print(json.dumps({"header": header}), flush=True)
    for name in models:
        print(json.dumps(run(name, args)), flush=True)
    if args.attention_sweep:
        lengths = [int(length) for length in args.attention_sweep.split(",")]
        for row in attention_sweep(lengths, args.tokens, args.seed):
            print(json.dumps(row), flush=True)


if __name__ == "__main__":
    sys.exit(main())
