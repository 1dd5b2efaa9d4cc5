#include "experiments/config/schema.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <map>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "framework/core/edit_distance.h"

namespace attnlab::experiments {
namespace {

ConfigKey Int(std::string name, int64_t value, std::string doc, std::optional<double> min = 0,
              std::optional<double> max = std::nullopt) {
  return {std::move(name), ValueType::kInt, value, std::move(doc), min, max, {}};
}
ConfigKey Float(std::string name, double value, std::string doc, std::optional<double> min = 0,
                std::optional<double> max = std::nullopt) {
  return {std::move(name), ValueType::kFloat, value, std::move(doc), min, max, {}};
}
ConfigKey Bool(std::string name, bool value, std::string doc) {
  return {std::move(name), ValueType::kBool, value, std::move(doc), std::nullopt, std::nullopt, {}};
}
ConfigKey String(std::string name, std::string value, std::string doc,
                 std::vector<std::string> choices = {}) {
  return {std::move(name), ValueType::kString, std::move(value),  std::move(doc),
          std::nullopt,    std::nullopt,       std::move(choices)};
}

// Upper bounds of the sizes that allocate memory. They are far beyond what attnlab's
// CPU training can use, and low enough that products of them (a [max_len, d_model]
// table, layers x d_model x d_ff weights) stay well inside int64; whether a config
// actually fits in memory is estimated when its model is built (model_factory.cc).
constexpr double kMaxWidth = 1 << 16;        // d_model, key_size, hidden_size
constexpr double kMaxFeedForward = 1 << 20;  // d_ff
constexpr double kMaxLayers = 1024;          // encoder or decoder layers
constexpr double kMaxSequence = 1 << 20;     // tokens or characters of one sequence
constexpr double kMaxBatchTokens = 1 << 24;  // tokens or sentences of one batch
constexpr double kMaxExamples = 10'000'000;  // examples of one split

std::vector<ConfigKey> BuildSchema() {
  return {
      // ---- [experiment] ----
      String("experiment.name", "",
             "Run group name; runs go to <runs_dir>/<name>/<run>. "
             "Empty: the config file's directory and stem (e.g. `copy/transformer`)."),
      String("experiment.runs_dir", "runs", "Where run directories are created."),
      Int("experiment.seed", 1, "Seed of model initialisation, data order and dropout."),
      Int("experiment.threads", 0, "OpenMP threads; 0 = OMP_NUM_THREADS or all cores.", 0, 1024),

      // ---- [task] ----
      String("task.name", "copy", "Registered task (see the README's task list)."),
      Int("task.seed", 1234, "Seed of the task's data generator and split."),
      Int("task.train_size", 20000,
          "Training examples (generated tasks, >= 1). Real-data tasks (cmudict, de_en): "
          "a cap on their ~90% training split, 0 = all.",
          0, kMaxExamples),
      Int("task.valid_size", 500,
          "Validation examples (generated tasks, >= 1). Real-data tasks: a cap on their "
          "~5% validation split, 0 = all.",
          0, kMaxExamples),
      Int("task.test_size", 1000,
          "Test examples (generated tasks, >= 1). Real-data tasks: a cap on their ~5% "
          "test split, 0 = all.",
          0, kMaxExamples),
      Int("task.vocab_size", 10, "Distinct symbols (copy, reverse, sort).", 2, 100000),
      Int("task.min_length", 1, "Shortest sequence / number of digits (generated tasks).", 1,
          kMaxSequence),
      Int("task.max_length", 10,
          "Longest sequence / number of digits (generated tasks); de_en: longest German "
          "phrase or English target in characters (longer pairs are left out).",
          1, kMaxSequence),
      Int("task.test_min_length", 0, "If > 0, test lengths start here (length generalisation).", 0,
          kMaxSequence),
      Int("task.test_max_length", 0, "If > 0, test lengths end here (length generalisation).", 0,
          kMaxSequence),
      String("task.train_path", "", "source<TAB>target file (task `files`)."),
      String("task.valid_path", "", "source<TAB>target file (task `files`)."),
      String("task.test_path", "", "source<TAB>target file (task `files`)."),
      String("task.tokenizer", "char", "Tokenizer for file tasks.", {"char", "whitespace"}),
      String("task.teacher_score", "additive",
             "seed_pooling: the hidden teacher's scoring "
             "(the student's is model.attention).",
             {"additive", "dot"}),
      Float("task.teacher_sharpness", 3.0, "seed_pooling: multiplies the teacher's scores.", 0),
      String("task.data_dir", "data",
             "Where tools/fetch-data put the real data (its ATTNLAB_DATA_DIR; default: "
             "the repository's data/, relative to the current directory)."),
      Bool("task.keep_stress", false,
           "cmudict: keep ARPAbet stress digits (AH0, AH1) instead of the 39-phoneme set."),
      Int("task.subword_vocab_size", 8000, "de_en: SentencePiece vocabulary size.", 100, 1000000),
      String("task.subword_model", "unigram", "de_en: SentencePiece model type.",
             {"unigram", "bpe"}),

      // ---- [model] ----
      String("model.type", "transformer", "Model family.", {"transformer", "rnn"}),
      Int("model.d_model", 128, "Model width (Transformer) or embedding size (RNN).", 1, kMaxWidth),
      Int("model.heads", 4,
          "Attention heads (d_model must be divisible by heads unless model.key_size is set).", 1,
          1024),
      Int("model.key_size", 0,
          "Per-head query/key/value size d_k = d_v; 0 = d_model / heads (the paper). "
          "Otherwise attention projects d_model to heads x key_size and back.",
          0, kMaxWidth),
      Int("model.d_ff", 512, "Feed-forward inner width.", 1, kMaxFeedForward),
      Int("model.encoder_layers", 2, "Encoder layers.", 1, kMaxLayers),
      Int("model.decoder_layers", 2, "Decoder layers.", 1, kMaxLayers),
      Float("model.dropout", 0.1, "Dropout on embeddings, sublayer outputs and feed-forward.", 0,
            0.99),
      Float("model.attention_dropout", 0.0, "Dropout on attention weights.", 0, 0.99),
      String("model.attention", "scaled_dot", "Attention variant (registered name)."),
      String("model.positional", "sinusoidal", "Positional encoding.",
             {"sinusoidal", "learned", "none", "rope"}),
      Int("model.max_len", 256,
          "Longest sequence (in tokens, with bos/eos) the positional encoding supports; "
          "longer data is an error when it is loaded.",
          1, kMaxSequence),
      String("model.norm", "post", "Residual LayerNorm placement.", {"post", "pre"}),
      String("model.activation", "relu", "Feed-forward activation.", {"relu", "gelu"}),
      Bool("model.share_embeddings", false, "One embedding table for source and target."),
      Bool("model.tie_generator", false, "Generator weight = target embedding."),
      String("model.rnn_cell", "gru", "RNN cell (model.type = rnn).", {"gru", "lstm"}),
      Int("model.hidden_size", 128, "RNN hidden size per direction.", 1, kMaxWidth),
      String("model.attention_style", "bahdanau", "How the RNN decoder uses attention.",
             {"bahdanau", "luong"}),

      // ---- [train] ----
      String("train.optimizer", "adam", "Optimizer.", {"adam", "adamw", "sgd"}),
      Float("train.lr", 1.0, "Peak learning rate (factor for the inverse_sqrt schedule).", 0),
      Float("train.beta1", 0.9, "Adam beta1.", 0, 1),
      Float("train.beta2", 0.98, "Adam beta2.", 0, 1),
      Float("train.eps", 1e-9, "Adam epsilon.", 0),
      Float("train.weight_decay", 0.0, "Weight decay (decoupled for adamw).", 0),
      Float("train.momentum", 0.9, "SGD momentum.", 0, 1),
      String("train.schedule", "inverse_sqrt", "Learning-rate schedule.",
             {"inverse_sqrt", "cosine", "constant"}),
      Int("train.warmup_steps", 400, "Warm-up steps.", 0),
      Float("train.min_lr", 0.0, "Final learning rate of the cosine schedule.", 0),
      Int("train.max_steps", 2000, "Optimizer steps (0 = use epochs).", 0),
      Int("train.epochs", 0, "Epochs when max_steps = 0.", 0),
      Int("train.batch_tokens", 4096, "Token budget per batch (source or target, the larger).", 1,
          kMaxBatchTokens),
      Int("train.max_batch_size", 256, "At most this many sentences per batch.", 1,
          kMaxBatchTokens),
      Int("train.accumulation", 1, "Batches per optimizer step (gradient accumulation).", 1),
      Float("train.clip_norm", 0.0, "Global gradient-norm clip (0 = off).", 0),
      Float("train.label_smoothing", 0.1, "Label smoothing of the cross-entropy.", 0, 0.99),
      String("train.dtype", "f32",
             "Matmul inputs: f32, or bf16 mixed precision (f32 weights, accumulation, softmax, "
             "norms and loss; needs AVX512-BF16). Evaluation and decoding use it too.",
             {"f32", "bf16"}),
      Int("train.log_every", 50, "Steps between log lines / metrics.jsonl records.", 1),
      Int("train.eval_every", 500, "Steps between validation runs.", 1),
      Int("train.checkpoint_every", 500, "Steps between `last` checkpoints.", 1),
      String("train.early_stopping_metric", "",
             "Validation metric for early stopping and "
             "the best checkpoint (empty: the task's main metric)."),
      Int("train.patience", 0, "Evaluations without improvement before stopping (0 = never).", 0),
      String("train.nan_policy", "stop",
             "On a NaN/Inf loss: stop (keeping the last good "
             "checkpoint) or skip the step.",
             {"stop", "skip"}),
      Int("train.max_skipped_steps", 50,
          "With nan_policy = skip: this many skipped steps in a row stop the run with an error.",
          1),

      // ---- [eval] ----
      Int("eval.beam_size", 1, "Beam size for test decoding (1 = greedy).", 1, 64),
      Float("eval.length_penalty", 0.6, "GNMT length penalty alpha for beam search.", 0, 10),
      Int("eval.max_decode_length", 0, "Longest decoded output (0 = 2 x source + 10).", 0,
          kMaxSequence),
      Int("eval.samples", 10, "Validation examples written to samples.txt.", 0),
      Int("eval.attention_plots", 3, "Validation examples drawn as attention heatmaps.", 0),
      Bool("eval.all_heads", false,
           "Plot every layer and head, not only the last cross-attention."),
  };
}

}  // namespace

const std::vector<ConfigKey>& ConfigSchema() {
  static const std::vector<ConfigKey>* schema = new std::vector<ConfigKey>(BuildSchema());
  return *schema;
}

const ConfigKey* FindConfigKey(const std::string& name) {
  for (const ConfigKey& key : ConfigSchema()) {
    if (key.name == name) return &key;
  }
  return nullptr;
}

std::string NearestConfigKey(const std::string& name) {
  std::string best;
  int64_t best_distance = INT64_MAX;
  for (const ConfigKey& key : ConfigSchema()) {
    // Compare with the whole name, and with the part after the table, so that
    // `model.dmodel` and `d_model` (table forgotten) both find `model.d_model`.
    const std::string tail = key.name.substr(key.name.find('.') + 1);
    const int64_t distance = std::min(EditDistance(name, key.name), EditDistance(name, tail) + 1);
    if (distance < best_distance) {
      best_distance = distance;
      best = key.name;
    }
  }
  return best;
}

std::string ValueTypeName(ValueType type) {
  switch (type) {
    case ValueType::kInt:
      return "integer";
    case ValueType::kFloat:
      return "float";
    case ValueType::kBool:
      return "boolean";
    case ValueType::kString:
      return "string";
  }
  return "?";
}

std::string ValueTypeWithArticle(ValueType type) {
  return (type == ValueType::kInt ? "an " : "a ") + ValueTypeName(type);
}

std::string FormatConfigValue(const ConfigValue& value) {
  if (const auto* i = std::get_if<int64_t>(&value)) return absl::StrCat(*i);
  if (const auto* d = std::get_if<double>(&value)) {
    // The shortest text that reads back as exactly this double, so that a saved resolved
    // config reloads bit for bit (a fixed "%.10g" would round 0.123456789012 away).
    char buffer[64];
    const std::to_chars_result printed = std::to_chars(buffer, buffer + sizeof(buffer), *d);
    std::string text(buffer, printed.ptr);
    if (text.find_first_of(".eEn") == std::string::npos) text += ".0";
    return text;
  }
  if (const auto* b = std::get_if<bool>(&value)) return *b ? "true" : "false";
  // A TOML basic string: escape backslashes, quotes and control characters (a raw
  // newline would end a basic string, and TOML forbids the other raw control characters).
  std::string escaped;
  for (char c : std::get<std::string>(value)) {
    if (c == '\\' || c == '"') {
      escaped += '\\';
      escaped += c;
    } else if (c == '\n') {
      escaped += "\\n";
    } else if (static_cast<unsigned char>(c) < 0x20 || c == 0x7F) {
      absl::StrAppend(&escaped, absl::StrFormat("\\u%04X", static_cast<unsigned char>(c)));
    } else {
      escaped += c;
    }
  }
  return absl::StrCat("\"", escaped, "\"");
}

std::string ConfigReferenceMarkdown() {
  std::string out =
      "# Config reference\n\n"
      "Generated from `experiments/config/schema.cc` (the test suite checks this page is\n"
      "current; regenerate with `attnlab keys > experiments/CONFIG.md`). A config is a TOML\n"
      "file with the tables below; `base = \"path\"` at the top inherits another config\n"
      "(relative to this file), and `--set table.key=value` overrides any key.\n";
  std::string table;
  for (const ConfigKey& key : ConfigSchema()) {
    const std::string key_table = key.name.substr(0, key.name.find('.'));
    if (key_table != table) {
      table = key_table;
      absl::StrAppend(&out, "\n## [", table,
                      "]\n\n| key | type | default | meaning |\n|---|---|---|---|\n");
    }
    std::string type = ValueTypeName(key.type);
    if (!key.choices.empty()) type = absl::StrCat("one of ", absl::StrJoin(key.choices, ", "));
    if (key.min || key.max) {
      // Integer bounds in full ("1048576", not "1.04858e+06").
      auto bound = [&](double value) {
        return key.type == ValueType::kInt ? absl::StrCat(static_cast<int64_t>(value))
                                           : absl::StrFormat("%g", value);
      };
      absl::StrAppend(&type, " in [", key.min ? bound(*key.min) : "-inf", ", ",
                      key.max ? bound(*key.max) : "inf", "]");
    }
    absl::StrAppend(&out, "| `", key.name.substr(table.size() + 1), "` | ", type, " | `",
                    FormatConfigValue(key.default_value), "` | ", key.doc, " |\n");
  }
  return out;
}

}  // namespace attnlab::experiments
