#include "experiments/config/experiment_config.h"

namespace attnlab::experiments {
namespace {

// Upper bounds of the sizes that allocate memory: far beyond what attnlab's CPU training
// can use, and low enough that products of them stay well inside int64 (the model's own
// bounds are in layers/model_options.cc).
constexpr double kMaxSequence = 1 << 20;     // tokens or characters of one sequence
constexpr double kMaxBatchTokens = 1 << 24;  // tokens or sentences of one batch
constexpr double kMaxExamples = 10'000'000;  // examples of one split

}  // namespace

const OptionFields<ExperimentOptions>& ExperimentOptionFields() {
  static const auto* fields = new OptionFields<ExperimentOptions>{
      StringOption("name", &ExperimentOptions::name,
                   "Run group name; runs go to <runs_dir>/<name>/<run>. "
                   "Empty: the config file's directory and stem (e.g. `copy/transformer`)."),
      StringOption("runs_dir", &ExperimentOptions::runs_dir, "Where run directories are created."),
      IntOption("seed", &ExperimentOptions::seed,
                "Seed of model initialisation, data order and dropout."),
      IntOption("threads", &ExperimentOptions::threads,
                "OpenMP threads; 0 = OMP_NUM_THREADS or all cores.", 0, 1024),
  };
  return *fields;
}

const OptionFields<TaskOptions>& TaskOptionFields() {
  static const auto* fields = new OptionFields<TaskOptions>{
      StringOption("name", &TaskOptions::name, "Registered task (see the README's task list)."),
      IntOption("seed", &TaskOptions::seed, "Seed of the task's data generator and split."),
      IntOption("train_size", &TaskOptions::train_size,
                "Training examples (generated tasks, >= 1). Real-data tasks (cmudict, de_en): "
                "a cap on their ~90% training split, 0 = all.",
                0, kMaxExamples),
      IntOption("valid_size", &TaskOptions::valid_size,
                "Validation examples (generated tasks, >= 1). Real-data tasks: a cap on their "
                "~5% validation split, 0 = all.",
                0, kMaxExamples),
      IntOption("test_size", &TaskOptions::test_size,
                "Test examples (generated tasks, >= 1). Real-data tasks: a cap on their ~5% "
                "test split, 0 = all.",
                0, kMaxExamples),
      IntOption("vocab_size", &TaskOptions::vocab_size, "Distinct symbols (copy, reverse, sort).",
                2, 100000),
      IntOption("min_length", &TaskOptions::min_length,
                "Shortest sequence / number of digits (generated tasks).", 1, kMaxSequence),
      IntOption("max_length", &TaskOptions::max_length,
                "Longest sequence / number of digits (generated tasks); de_en: longest German "
                "phrase or English target in characters (longer pairs are left out).",
                1, kMaxSequence),
      IntOption("test_min_length", &TaskOptions::test_min_length,
                "If > 0, test lengths start here (length generalisation).", 0, kMaxSequence),
      IntOption("test_max_length", &TaskOptions::test_max_length,
                "If > 0, test lengths end here (length generalisation).", 0, kMaxSequence),
      StringOption("train_path", &TaskOptions::train_path,
                   "source<TAB>target file (task `files`)."),
      StringOption("valid_path", &TaskOptions::valid_path,
                   "source<TAB>target file (task `files`)."),
      StringOption("test_path", &TaskOptions::test_path, "source<TAB>target file (task `files`)."),
      StringOption("tokenizer", &TaskOptions::tokenizer,
                   "Tokens of task `files`: characters, whitespace-separated words, or "
                   "SentencePiece subwords trained on the training file (task.subword_model, "
                   "task.subword_vocab_size, task.shared_vocabulary).",
                   FixedChoices({"char", "whitespace", "sentencepiece"})),
      StringOption("teacher_score", &TaskOptions::teacher_score,
                   "seed_pooling: the hidden teacher's scoring "
                   "(the student's is model.attention).",
                   FixedChoices({"additive", "dot"})),
      FloatOption("teacher_sharpness", &TaskOptions::teacher_sharpness,
                  "seed_pooling: multiplies the teacher's scores.", 0),
      StringOption("data_dir", &TaskOptions::data_dir,
                   "Where tools/fetch-data put the real data (its ATTNLAB_DATA_DIR; default: "
                   "the repository's data/, relative to the current directory)."),
      BoolOption("keep_stress", &TaskOptions::keep_stress,
                 "cmudict: keep ARPAbet stress digits (AH0, AH1) instead of the 39-phoneme set."),
      IntOption("subword_vocab_size", &TaskOptions::subword_vocab_size,
                "SentencePiece vocabulary size of each model (de_en; files with tokenizer = "
                "sentencepiece): at least the training text's distinct characters + 2 (the word "
                "mark and <unk>); a small text may give fewer pieces.",
                100, 1000000),
      StringOption("subword_model", &TaskOptions::subword_model,
                   "SentencePiece model type (de_en; files with tokenizer = sentencepiece).",
                   FixedChoices({"unigram", "bpe"})),
      BoolOption("shared_vocabulary", &TaskOptions::shared_vocabulary,
                 "SentencePiece (de_en; files with tokenizer = sentencepiece): one model trained "
                 "on sources and targets together, or false: one trained on the sources and one "
                 "on the targets."),
  };
  return *fields;
}

const OptionFields<TrainOptions>& TrainOptionFields() {
  static const auto* fields = new OptionFields<TrainOptions>{
      StringOption("optimizer", &TrainOptions::optimizer, "Optimizer.",
                   FixedChoices({"adam", "adamw", "sgd"})),
      FloatOption("lr", &TrainOptions::lr,
                  "Peak learning rate (factor for the inverse_sqrt schedule).", 0),
      FloatOption("beta1", &TrainOptions::beta1, "Adam beta1.", 0, 1),
      FloatOption("beta2", &TrainOptions::beta2, "Adam beta2.", 0, 1),
      FloatOption("eps", &TrainOptions::eps, "Adam epsilon.", 0),
      FloatOption("weight_decay", &TrainOptions::weight_decay,
                  "Weight decay (decoupled for adamw).", 0),
      FloatOption("momentum", &TrainOptions::momentum, "SGD momentum.", 0, 1),
      StringOption("schedule", &TrainOptions::schedule, "Learning-rate schedule.",
                   FixedChoices({"inverse_sqrt", "cosine", "constant"})),
      IntOption("warmup_steps", &TrainOptions::warmup_steps, "Warm-up steps.", 0),
      FloatOption("min_lr", &TrainOptions::min_lr, "Final learning rate of the cosine schedule.",
                  0),
      IntOption("max_steps", &TrainOptions::max_steps, "Optimizer steps (0 = use epochs).", 0),
      IntOption("epochs", &TrainOptions::epochs, "Epochs when max_steps = 0.", 0),
      IntOption("batch_tokens", &TrainOptions::batch_tokens,
                "Token budget per batch (source or target, the larger).", 1, kMaxBatchTokens),
      IntOption("max_batch_size", &TrainOptions::max_batch_size,
                "At most this many sentences per batch.", 1, kMaxBatchTokens),
      IntOption("accumulation", &TrainOptions::accumulation,
                "Batches per optimizer step (gradient accumulation).", 1),
      FloatOption("clip_norm", &TrainOptions::clip_norm, "Global gradient-norm clip (0 = off).", 0),
      FloatOption("label_smoothing", &TrainOptions::label_smoothing,
                  "Label smoothing of the cross-entropy.", 0, 0.99),
      StringOption(
          "dtype", &TrainOptions::dtype,
          "Matmul inputs: f32, or bf16 mixed precision (f32 weights, accumulation, softmax, "
          "norms and loss; needs AVX512-BF16). Evaluation and decoding use it too.",
          FixedChoices({"f32", "bf16"})),
      IntOption("log_every", &TrainOptions::log_every,
                "Steps between log lines / metrics.jsonl records.", 1),
      IntOption("eval_every", &TrainOptions::eval_every, "Steps between validation runs.", 1),
      IntOption("checkpoint_every", &TrainOptions::checkpoint_every,
                "Steps between `last` checkpoints.", 1),
      IntOption("keep_last", &TrainOptions::keep_last,
                "Also keep the last K of those checkpoints as `checkpoint_step_<N>.safetensors`, "
                "for `attnlab average` (0 = off).",
                0),
      FloatOption("ema_decay", &TrainOptions::ema_decay,
                  "Decay d in [0, 1) of an exponential moving average of the weights "
                  "(bias-corrected), evaluated beside them (`ema_*` metrics) and saved as "
                  "`checkpoint_ema.safetensors` (0 = off).",
                  0, 1),
      StringOption("early_stopping_metric", &TrainOptions::early_stopping_metric,
                   "Validation metric for early stopping and "
                   "the best checkpoint (empty: the task's main metric)."),
      IntOption("patience", &TrainOptions::patience,
                "Evaluations without improvement before stopping (0 = never).", 0),
      StringOption("nan_policy", &TrainOptions::nan_policy,
                   "On a NaN/Inf loss: stop (keeping the last good "
                   "checkpoint) or skip the step.",
                   FixedChoices({"stop", "skip"})),
      IntOption(
          "max_skipped_steps", &TrainOptions::max_skipped_steps,
          "With nan_policy = skip: this many skipped steps in a row stop the run with an error.",
          1),
  };
  return *fields;
}

const OptionFields<EvalOptions>& EvalOptionFields() {
  static const auto* fields = new OptionFields<EvalOptions>{
      IntOption("beam_size", &EvalOptions::beam_size, "Beam size for test decoding (1 = greedy).",
                1, 64),
      FloatOption("length_penalty", &EvalOptions::length_penalty,
                  "GNMT length penalty alpha for beam search.", 0, 10),
      IntOption("max_decode_length", &EvalOptions::max_decode_length,
                "Longest decoded output (0 = 2 x source + 10).", 0, kMaxSequence),
      IntOption("samples", &EvalOptions::samples, "Validation examples written to samples.txt.", 0),
      IntOption("attention_plots", &EvalOptions::attention_plots,
                "Validation examples drawn as attention heatmaps.", 0),
      BoolOption("all_heads", &EvalOptions::all_heads,
                 "Plot every layer and head, not only the last cross-attention."),
  };
  return *fields;
}

}  // namespace attnlab::experiments
