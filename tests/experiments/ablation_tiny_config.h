// The tiny copy-task config the ablation tests vary: 20 steps of a 1 + 1-layer, 16-wide
// Transformer, well under a second per run.
#pragma once

namespace attnlab::experiments::testing {

inline constexpr char kTinyConfig[] = R"toml(
[task]
name = "copy"
vocab_size = 5
min_length = 3
max_length = 5
train_size = 100
valid_size = 10
test_size = 10

[model]
d_model = 16
heads = 2
d_ff = 32
encoder_layers = 1
decoder_layers = 1

[train]
lr = 0.003
schedule = "constant"
max_steps = 20
eval_every = 10
log_every = 5
checkpoint_every = 10
batch_tokens = 64

[eval]
samples = 2
attention_plots = 0
)toml";

}  // namespace attnlab::experiments::testing
