#!/usr/bin/python3
"""Golden files for tests/experiments/golden_test.cc: attnlab's models rebuilt in PyTorch.

As llm.c's test_gpt2 does with GPT-2, every case here builds attnlab's model a second
time, independently, in PyTorch, from the same weights, and records what PyTorch computes
on a fixed batch. The C++ test then checks attnlab against it. Per case:

  1. writes tests/golden/<case>.toml, a tiny copy-task config;
  2. runs `attnlab init` for the initial weights; parameters that init sets to a constant
     (biases 0, LayerNorm gains 1) get a little noise, so that a bias added in the wrong
     place, or not at all, changes the numbers;
  3. builds the model in PyTorch (float64) from those tensors, by name, and computes the
     logits, the label-smoothed cross-entropy (F.cross_entropy, label_smoothing 0.1,
     ignore_index = pad = 0), every parameter's gradient, and the losses after each of 3
     Adam steps (betas (0.9, 0.98), eps 1e-9, lr 1e-3, dropout off) on the same batch;
  4. writes tests/golden/<case>.safetensors: src, tgt_in, tgt_out (i32), the weights under
     their parameter names, logits, loss, grad.<name> and adam_losses [3] (f32);
  5. runs `attnlab dump` on the same weights and batch and prints the largest differences,
     a first look before the C++ test.

The hand-written attention is first checked against torch.nn.MultiheadAttention; the RNN
encoder is torch.nn.GRU over a pack_padded_sequence and the decoder cell torch.nn.GRUCell.

Run through tools/make-golden, which installs Debian's python3-torch and builds attnlab.
Safetensors files are read and written here by hand (8-byte little-endian header length,
a JSON header, raw little-endian data), with numpy only.
"""

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

PAD, BOS, EOS = 0, 1, 2
LABEL_SMOOTHING = 0.1
ADAM_STEPS = 3
ADAM_LR = 1e-3
ADAM_BETAS = (0.9, 0.98)
ADAM_EPS = 1e-9
PERTURBATION_STD = 0.1  # noise added to parameters that init sets to a constant
SEED = 20240601

# ---- configs -------------------------------------------------------------------------

TASK = """\
[task]
name = "copy"
vocab_size = 6
min_length = 3
max_length = 5
train_size = 50
valid_size = 10
test_size = 10
"""

TRANSFORMER_MODEL = """\
[model]
type = "transformer"
d_model = 16
heads = 2
d_ff = 32
encoder_layers = 2
decoder_layers = 2
dropout = 0.1
attention = "scaled_dot"
positional = "sinusoidal"
max_len = 16
norm = "{norm}"
activation = "relu"
"""

RNN_MODEL = """\
[model]
type = "rnn"
d_model = 16
hidden_size = 12
rnn_cell = "gru"
attention = "additive"
attention_style = "bahdanau"
dropout = 0.1
"""

TRAIN = """\
[train]
optimizer = "adam"
lr = 0.001
beta1 = 0.9
beta2 = 0.98
eps = 1e-9
schedule = "constant"
warmup_steps = 0
label_smoothing = 0.1
"""


def config_text(case, model):
    header = (f"# Golden case {case}: written by tools/make-golden (tools/golden/make_golden.py);\n"
              "# tests/experiments/golden_test.cc builds this model. Do not edit by hand.\n"
              "[experiment]\nseed = 7\n\n")
    return header + TASK + "\n" + model + "\n" + TRAIN


CASES = {
    "transformer_post_ln": config_text("transformer_post_ln",
                                      TRANSFORMER_MODEL.format(norm="post")),
    "transformer_pre_ln": config_text("transformer_pre_ln", TRANSFORMER_MODEL.format(norm="pre")),
    "rnn_gru_bahdanau": config_text("rnn_gru_bahdanau", RNN_MODEL),
}

# ---- safetensors ---------------------------------------------------------------------

DTYPES = {"F32": np.dtype("<f4"), "I32": np.dtype("<i4"), "F64": np.dtype("<f8")}


def read_safetensors(path):
    with open(path, "rb") as f:
        data = f.read()
    header_length = int.from_bytes(data[:8], "little")
    header = json.loads(data[8:8 + header_length].decode("utf-8"))
    metadata = header.pop("__metadata__", {})
    base = 8 + header_length
    tensors = {}
    for name, entry in sorted(header.items(), key=lambda item: item[1]["data_offsets"][0]):
        begin, end = entry["data_offsets"]
        array = np.frombuffer(data[base + begin:base + end], dtype=DTYPES[entry["dtype"]])
        tensors[name] = array.reshape(entry["shape"]).copy()
    return tensors, metadata


def write_safetensors(path, tensors, metadata=None):
    """tensors: list of (name, numpy array of float32 or int32), written in this order."""
    header, chunks, offset = {}, [], 0
    for name, array in tensors:
        if array.dtype == np.float32:
            dtype, raw = "F32", array.astype("<f4").tobytes()
        elif array.dtype == np.int32:
            dtype, raw = "I32", array.astype("<i4").tobytes()
        else:
            raise TypeError(f"{name}: unsupported dtype {array.dtype}")
        header[name] = {"dtype": dtype, "shape": list(array.shape),
                        "data_offsets": [offset, offset + len(raw)]}
        chunks.append(raw)
        offset += len(raw)
    if metadata:
        header["__metadata__"] = metadata
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(len(text).to_bytes(8, "little"))
        f.write(text)
        for chunk in chunks:
            f.write(chunk)


# ---- the Transformer, written from the paper (and the Annotated Transformer) ----------


def sinusoidal_table(max_len, d_model):
    """PE(pos, 2i) = sin(pos / 10000^(2i/d)), PE(pos, 2i+1) = cos(...), as the Annotated
    Transformer computes it (exp of a log), independently of attnlab's pow."""
    position = torch.arange(max_len, dtype=torch.float64).unsqueeze(1)
    div_term = torch.exp(torch.arange(0, d_model, 2, dtype=torch.float64) *
                         -(math.log(10000.0) / d_model))
    table = torch.zeros(max_len, d_model, dtype=torch.float64)
    table[:, 0::2] = torch.sin(position * div_term)
    table[:, 1::2] = torch.cos(position * div_term)
    return table


class MultiHeadAttention(nn.Module):
    """Section 3.2.2: softmax(Q K^T / sqrt(d_k)) V per head, heads concatenated, projected."""

    def __init__(self, d_model, heads):
        super().__init__()
        self.heads, self.head_dim = heads, d_model // heads
        self.q_proj = nn.Linear(d_model, d_model)
        self.k_proj = nn.Linear(d_model, d_model)
        self.v_proj = nn.Linear(d_model, d_model)
        self.out_proj = nn.Linear(d_model, d_model)

    def split(self, x):  # [B, T, d] -> [B, h, T, d_k]
        return x.view(x.size(0), x.size(1), self.heads, self.head_dim).transpose(1, 2)

    def forward(self, query, memory, key_padding_mask=None, causal=False):
        q, k, v = self.split(self.q_proj(query)), self.split(self.k_proj(memory)), \
            self.split(self.v_proj(memory))
        scores = q @ k.transpose(-2, -1) / math.sqrt(self.head_dim)  # [B, h, T, S]
        if key_padding_mask is not None:  # bool [B, S], True at padding
            scores = scores.masked_fill(key_padding_mask[:, None, None, :], float("-inf"))
        if causal:
            future = torch.triu(torch.ones(scores.shape[-2:], dtype=torch.bool), diagonal=1)
            scores = scores.masked_fill(future, float("-inf"))
        context = scores.softmax(dim=-1) @ v  # [B, h, T, d_k]
        merged = context.transpose(1, 2).reshape(query.size(0), query.size(1), -1)
        return self.out_proj(merged)


def check_attention_against_torch():
    """The hand-written MultiHeadAttention above must equal torch.nn.MultiheadAttention
    (one packed in_proj_weight; boolean masks, True = not allowed)."""
    d_model, heads, batch, tgt, src = 16, 2, 3, 4, 5
    ours = MultiHeadAttention(d_model, heads).double()
    theirs = nn.MultiheadAttention(d_model, heads, batch_first=True).double()
    with torch.no_grad():
        for module in (ours.q_proj, ours.k_proj, ours.v_proj):
            module.bias.normal_()
        theirs.in_proj_weight.copy_(torch.cat([ours.q_proj.weight, ours.k_proj.weight,
                                               ours.v_proj.weight]))
        theirs.in_proj_bias.copy_(torch.cat([ours.q_proj.bias, ours.k_proj.bias,
                                             ours.v_proj.bias]))
        theirs.out_proj.weight.copy_(ours.out_proj.weight)
        theirs.out_proj.bias.copy_(torch.randn(d_model, dtype=torch.float64))
        ours.out_proj.bias.copy_(theirs.out_proj.bias)
    query = torch.randn(batch, tgt, d_model, dtype=torch.float64)
    memory = torch.randn(batch, src, d_model, dtype=torch.float64)
    padding = torch.tensor([[False] * 5, [False] * 3 + [True] * 2, [False] * 4 + [True]])
    expected, _ = theirs(query, memory, memory, key_padding_mask=padding)
    assert torch.allclose(ours(query, memory, key_padding_mask=padding), expected, atol=1e-12)
    causal = torch.triu(torch.ones(tgt, tgt, dtype=torch.bool), diagonal=1)
    expected, _ = theirs(query, query, query, attn_mask=causal)
    assert torch.allclose(ours(query, query, causal=True), expected, atol=1e-12)


class FeedForward(nn.Module):
    """Eq. (2): max(0, x W1 + b1) W2 + b2."""

    def __init__(self, d_model, d_ff):
        super().__init__()
        self.linear1 = nn.Linear(d_model, d_ff)
        self.linear2 = nn.Linear(d_ff, d_model)

    def forward(self, x):
        return self.linear2(F.relu(self.linear1(x)))


class SublayerConnection(nn.Module):
    """post: LayerNorm(x + Sublayer(x)) (the paper); pre: x + Sublayer(LayerNorm(x))."""

    def __init__(self, d_model, pre_norm):
        super().__init__()
        self.norm = nn.LayerNorm(d_model, eps=1e-5)
        self.pre_norm = pre_norm

    def forward(self, x, sublayer):
        if self.pre_norm:
            return x + sublayer(self.norm(x))
        return self.norm(x + sublayer(x))


class EncoderLayer(nn.Module):

    def __init__(self, d_model, heads, d_ff, pre_norm):
        super().__init__()
        self.self_attn = MultiHeadAttention(d_model, heads)
        self.self_attn_sublayer = SublayerConnection(d_model, pre_norm)
        self.feed_forward = FeedForward(d_model, d_ff)
        self.feed_forward_sublayer = SublayerConnection(d_model, pre_norm)

    def forward(self, x, src_pad):
        x = self.self_attn_sublayer(x, lambda y: self.self_attn(y, y, key_padding_mask=src_pad))
        return self.feed_forward_sublayer(x, self.feed_forward)


class DecoderLayer(nn.Module):

    def __init__(self, d_model, heads, d_ff, pre_norm):
        super().__init__()
        self.self_attn = MultiHeadAttention(d_model, heads)
        self.self_attn_sublayer = SublayerConnection(d_model, pre_norm)
        self.cross_attn = MultiHeadAttention(d_model, heads)
        self.cross_attn_sublayer = SublayerConnection(d_model, pre_norm)
        self.feed_forward = FeedForward(d_model, d_ff)
        self.feed_forward_sublayer = SublayerConnection(d_model, pre_norm)

    def forward(self, x, memory, src_pad):
        x = self.self_attn_sublayer(x, lambda y: self.self_attn(y, y, causal=True))
        x = self.cross_attn_sublayer(
            x, lambda y: self.cross_attn(y, memory, key_padding_mask=src_pad))
        return self.feed_forward_sublayer(x, self.feed_forward)


class Stack(nn.Module):
    """N layers, then a final LayerNorm when pre-LN."""

    def __init__(self, layers, d_model, pre_norm):
        super().__init__()
        self.layers = nn.ModuleList(layers)
        self.norm = nn.LayerNorm(d_model, eps=1e-5) if pre_norm else None

    def forward(self, x, *args):
        for layer in self.layers:
            x = layer(x, *args)
        return self.norm(x) if self.norm is not None else x


class Transformer(nn.Module):

    def __init__(self, src_vocab, tgt_vocab, d_model, heads, d_ff, encoder_layers,
                 decoder_layers, pre_norm, max_len):
        super().__init__()
        self.d_model = d_model
        self.src_embed = nn.Embedding(src_vocab, d_model, padding_idx=PAD)
        self.tgt_embed = nn.Embedding(tgt_vocab, d_model, padding_idx=PAD)
        self.encoder = Stack([EncoderLayer(d_model, heads, d_ff, pre_norm)
                              for _ in range(encoder_layers)], d_model, pre_norm)
        self.decoder = Stack([DecoderLayer(d_model, heads, d_ff, pre_norm)
                              for _ in range(decoder_layers)], d_model, pre_norm)
        self.generator = nn.Linear(d_model, tgt_vocab)
        self.register_buffer("positions", sinusoidal_table(max_len, d_model), persistent=False)

    def embed(self, table, ids):  # section 3.4: embeddings * sqrt(d_model), + PE (3.5)
        return table(ids) * math.sqrt(self.d_model) + self.positions[:ids.size(1)]

    def forward(self, src, tgt_in):
        src_pad = src == PAD
        memory = self.encoder(self.embed(self.src_embed, src), src_pad)
        return self.generator(self.decoder(self.embed(self.tgt_embed, tgt_in), memory, src_pad))


# ---- the RNN encoder-decoder (Bahdanau et al. 2014), as layers/rnn/rnn_seq2seq.h --------


class AdditiveAttention(nn.Module):
    """score(s, k_j) = v^T tanh(W_q s + W_k k_j), masked at padding, softmax over j."""

    def __init__(self, dim):
        super().__init__()
        self.query_weight = nn.Parameter(torch.empty(dim, dim))
        self.key_weight = nn.Parameter(torch.empty(dim, dim))
        self.score_vector = nn.Parameter(torch.empty(dim))

    def forward(self, query, keys, values, key_padding_mask):
        # query [B, H]; keys, values [B, S, H]; key_padding_mask bool [B, S]
        hidden = torch.tanh((query @ self.query_weight.T)[:, None, :] + keys @ self.key_weight.T)
        scores = hidden @ self.score_vector  # [B, S]
        scores = scores.masked_fill(key_padding_mask, float("-inf"))
        weights = scores.softmax(dim=-1)
        return (weights[:, :, None] * values).sum(dim=1)  # [B, H]


class RnnEncoder(nn.Module):
    """Bidirectional GRU over right-padded sequences, through pack_padded_sequence."""

    def __init__(self, input_size, hidden):
        super().__init__()
        self.gru = nn.GRU(input_size, hidden, batch_first=True, bidirectional=True)

    def forward(self, embedded, lengths):
        packed = nn.utils.rnn.pack_padded_sequence(embedded, lengths, batch_first=True,
                                                   enforce_sorted=False)
        outputs, final = self.gru(packed)
        outputs, _ = nn.utils.rnn.pad_packed_sequence(outputs, batch_first=True,
                                                      total_length=embedded.size(1))
        return outputs, final  # [B, S, 2H] (zero at padding), [2, B, H]


class RnnSeq2Seq(nn.Module):

    def __init__(self, src_vocab, tgt_vocab, embedding_dim, hidden):
        super().__init__()
        self.source_embedding = nn.Embedding(src_vocab, embedding_dim, padding_idx=PAD)
        self.target_embedding = nn.Embedding(tgt_vocab, embedding_dim, padding_idx=PAD)
        self.encoder = RnnEncoder(embedding_dim, hidden)
        self.bridge_hidden = nn.Linear(2 * hidden, hidden)
        self.key_projection = nn.Linear(2 * hidden, hidden, bias=False)
        self.value_projection = nn.Linear(2 * hidden, hidden, bias=False)
        self.attention = AdditiveAttention(hidden)
        self.decoder_cell = nn.GRUCell(embedding_dim + hidden, hidden)
        self.readout = nn.Linear(2 * hidden + embedding_dim, hidden, bias=False)
        self.generator = nn.Linear(hidden, tgt_vocab)

    def forward(self, src, tgt_in):
        src_pad = src == PAD
        lengths = (~src_pad).sum(dim=1)
        annotations, final = self.encoder(self.source_embedding(src), lengths)
        keys, values = self.key_projection(annotations), self.value_projection(annotations)
        state = torch.tanh(self.bridge_hidden(torch.cat([final[0], final[1]], dim=1)))  # s_0
        embedded = self.target_embedding(tgt_in)  # [B, T, E]
        outputs = []
        for t in range(tgt_in.size(1)):
            previous = embedded[:, t]                                          # E y_{t-1}
            context = self.attention(state, keys, values, src_pad)             # c_t from s_{t-1}
            state = self.decoder_cell(torch.cat([previous, context], 1), state)  # s_t
            outputs.append(torch.tanh(self.readout(torch.cat([state, context, previous], 1))))
        return self.generator(torch.stack(outputs, dim=1))  # [B, T, V]


# The attnlab names of the GRU's weights: encoder.forward_cell.weight_ih <-> weight_ih_l0.
def rnn_name_map(model):
    names = {}
    for name, _ in model.named_parameters():
        if name.startswith("encoder.gru."):
            base = name[len("encoder.gru."):]
            cell = "backward_cell" if base.endswith("_reverse") else "forward_cell"
            base = base.replace("_l0_reverse", "").replace("_l0", "")
            names[name] = f"encoder.{cell}.{base}"
        else:
            names[name] = name
    return names


# ---- cases ---------------------------------------------------------------------------


def build_model(case, weights):
    if case.startswith("transformer"):
        model = Transformer(src_vocab=weights["src_embed.weight"].shape[0],
                            tgt_vocab=weights["tgt_embed.weight"].shape[0], d_model=16, heads=2,
                            d_ff=32, encoder_layers=2, decoder_layers=2,
                            pre_norm=case.endswith("pre_ln"), max_len=16)
        names = {name: name for name, _ in model.named_parameters()}
    else:
        model = RnnSeq2Seq(src_vocab=weights["source_embedding.weight"].shape[0],
                           tgt_vocab=weights["target_embedding.weight"].shape[0],
                           embedding_dim=16, hidden=12)
        names = rnn_name_map(model)
    model = model.double()
    torch_names = set(names.values())
    missing = sorted(torch_names - set(weights))
    unexpected = sorted(set(weights) - torch_names)
    if missing or unexpected:
        sys.exit(f"{case}: PyTorch model and checkpoint disagree: missing {missing}, "
                 f"unexpected {unexpected}")
    with torch.no_grad():
        for torch_name, parameter in model.named_parameters():
            value = weights[names[torch_name]]
            if tuple(parameter.shape) != value.shape:
                sys.exit(f"{case}: {names[torch_name]}: PyTorch {tuple(parameter.shape)}, "
                         f"attnlab {value.shape}")
            parameter.copy_(torch.from_numpy(value.astype(np.float64)))
    return model, names


def make_batch(vocab):
    """Three copy examples of lengths 5, 3 and 4 (symbols 4..vocab-1), right-padded."""
    rows = [[4, 7, 5, 9, 6], [8, 4, 8], [5, 9, 7, 6]]
    assert max(max(row) for row in rows) < vocab
    src_len, tgt_len = 5, 6
    src = np.zeros((len(rows), src_len), np.int32)
    tgt_in = np.zeros((len(rows), tgt_len), np.int32)
    tgt_out = np.zeros((len(rows), tgt_len), np.int32)
    for b, row in enumerate(rows):
        src[b, :len(row)] = row
        tgt_in[b, :len(row) + 1] = [BOS] + row
        tgt_out[b, :len(row) + 1] = row + [EOS]
    return src, tgt_in, tgt_out


def loss_of(model, src, tgt_in, tgt_out):
    logits = model(src, tgt_in)
    loss = F.cross_entropy(logits.reshape(-1, logits.size(-1)), tgt_out.reshape(-1).long(),
                           ignore_index=PAD, label_smoothing=LABEL_SMOOTHING)
    return logits, loss


def perturb_constants(weights, rng):
    """Adds N(0, PERTURBATION_STD^2) noise to every tensor init sets to one constant."""
    perturbed = {}
    for name, value in weights.items():
        if value.size > 1 and np.all(value == value.flat[0]):
            value = (value + rng.normal(0.0, PERTURBATION_STD, value.shape)).astype(np.float32)
            perturbed[name] = True
        weights[name] = value
    return sorted(perturbed)


def run(command):
    print("+", " ".join(command), flush=True)
    subprocess.run(command, check=True)


def make_case(case, attnlab, golden_dir, work_dir):
    config_path = os.path.join(golden_dir, f"{case}.toml")
    with open(config_path, "w") as f:
        f.write(CASES[case])
    init_path = os.path.join(work_dir, f"{case}.init.safetensors")
    run([attnlab, "init", "--config", config_path, "--out", init_path])
    weights, metadata = read_safetensors(init_path)
    names_in_order = list(weights)  # the checkpoint's order = NamedParameters() order
    perturbed = perturb_constants(weights, np.random.default_rng(SEED))
    print(f"{case}: {len(weights)} tensors, {sum(w.size for w in weights.values())} "
          f"parameters; perturbed {len(perturbed)} constant-initialised tensors")

    model, names = build_model(case, weights)
    src_vocab = weights["src_embed.weight" if "src_embed.weight" in weights
                        else "source_embedding.weight"].shape[0]
    src, tgt_in, tgt_out = make_batch(src_vocab)
    src_t, tgt_in_t, tgt_out_t = (torch.from_numpy(a.astype(np.int64)) for a in
                                  (src, tgt_in, tgt_out))

    model.zero_grad(set_to_none=True)
    logits, loss = loss_of(model, src_t, tgt_in_t, tgt_out_t)
    loss.backward()
    by_attnlab_name = {names[n]: p for n, p in model.named_parameters()}
    grads = {name: by_attnlab_name[name].grad.detach().numpy().astype(np.float32)
             for name in names_in_order}
    logits_np = logits.detach().numpy().astype(np.float32)
    loss_np = np.array(loss.item(), np.float32)

    optimizer = torch.optim.Adam(model.parameters(), lr=ADAM_LR, betas=ADAM_BETAS, eps=ADAM_EPS)
    adam_losses = []
    for _ in range(ADAM_STEPS):
        optimizer.zero_grad(set_to_none=True)
        _, step_loss = loss_of(model, src_t, tgt_in_t, tgt_out_t)
        step_loss.backward()
        optimizer.step()
        with torch.no_grad():
            adam_losses.append(loss_of(model, src_t, tgt_in_t, tgt_out_t)[1].item())
    print(f"{case}: loss {loss.item():.6f}, after Adam steps "
          + ", ".join(f"{value:.6f}" for value in adam_losses))

    tensors = [("src", src), ("tgt_in", tgt_in), ("tgt_out", tgt_out)]
    tensors += [(name, weights[name]) for name in names_in_order]
    tensors += [("logits", logits_np), ("loss", loss_np)]
    tensors += [(f"grad.{name}", grads[name]) for name in names_in_order]
    tensors += [("adam_losses", np.array(adam_losses, np.float32))]
    golden_metadata = {
        "case": case,
        "generator": "tools/make-golden (tools/golden/make_golden.py)",
        "torch_version": torch.__version__,
        "python_torch_package": os.environ.get("ATTNLAB_TORCH_PACKAGE", "unknown"),
        "reference_precision": "float64, stored as f32",
        "perturbed": ",".join(perturbed),
        "adam": f"lr {ADAM_LR}, betas {ADAM_BETAS}, eps {ADAM_EPS}; adam_losses[i] is the "
                "loss after i + 1 steps",
    }
    golden_path = os.path.join(golden_dir, f"{case}.safetensors")
    write_safetensors(golden_path, tensors, golden_metadata)
    print(f"{case}: wrote {golden_path} ({os.path.getsize(golden_path)} bytes)")

    # attnlab's own numbers on the same weights and batch, for a first comparison.
    checkpoint_path = os.path.join(work_dir, f"{case}.perturbed.safetensors")
    write_safetensors(checkpoint_path, [(name, weights[name]) for name in names_in_order],
                      metadata)
    batch_path = os.path.join(work_dir, f"{case}.batch.safetensors")
    write_safetensors(batch_path, tensors[:3])
    dump_path = os.path.join(work_dir, f"{case}.dump.safetensors")
    run([attnlab, "dump", "--config", config_path, "--checkpoint", checkpoint_path,
         "--batch", batch_path, "--out", dump_path])
    dumped, _ = read_safetensors(dump_path)
    model_scale = max(float(np.max(np.abs(grads[n]))) for n in names_in_order)
    worst_name, worst_ratio = "", 0.0
    for name in names_in_order:
        expected = grads[name].astype(np.float64)
        diff = float(np.max(np.abs(dumped[f"grad.{name}"] - expected)))
        tolerance = 1e-4 * float(np.max(np.abs(expected))) + 1e-6 * model_scale
        if diff / tolerance >= worst_ratio:
            worst_name, worst_ratio = name, diff / tolerance
    print(f"{case}: attnlab dump vs PyTorch: logits max |diff| "
          f"{np.max(np.abs(dumped['logits'] - logits_np)):.3g}, loss |diff| "
          f"{abs(float(dumped['loss']) - float(loss_np)):.3g}, worst gradient grad.{worst_name} "
          f"at {worst_ratio:.3g} of golden_test.cc's tolerance")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--attnlab", required=True, help="the attnlab binary")
    parser.add_argument("--golden-dir", required=True, help="tests/golden")
    parser.add_argument("cases", nargs="*", help=f"default: all of {', '.join(CASES)}")
    args = parser.parse_args()
    torch.manual_seed(SEED)
    torch.set_num_threads(1)
    os.makedirs(args.golden_dir, exist_ok=True)
    check_attention_against_torch()
    with tempfile.TemporaryDirectory(prefix="attnlab-golden-") as work_dir:
        for case in args.cases or list(CASES):
            if case not in CASES:
                sys.exit(f"unknown case '{case}'; known: {', '.join(CASES)}")
            make_case(case, args.attnlab, args.golden_dir, work_dir)


if __name__ == "__main__":
    main()
