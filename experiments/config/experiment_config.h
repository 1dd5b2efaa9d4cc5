// The tables of an experiment config as plain structs, one per TOML table. A member's
// initialiser is the key's default; the table's field list (experiment_config.cc, in the
// same order) gives its meaning and range. [model] is nn::ModelOptions
// (layers/model_options.h), which the models take directly, and the attention variants'
// own options are [attention.<variant>] tables kept in model.attention.variant_options.
//
// Code reads a setting as a field: config.train().max_steps, config.model().d_model.
#pragma once

#include <cstdint>
#include <string>

#include "framework/core/option_fields.h"
#include "layers/model_options.h"

namespace attnlab::experiments {

struct ExperimentOptions {  // [experiment]
  std::string name;         // runs go to <runs_dir>/<name>/<run>; empty: from the path
  std::string runs_dir = "runs";
  int64_t seed = 1;     // model initialisation, data order, dropout
  int64_t threads = 0;  // OpenMP threads; 0 = OMP_NUM_THREADS or all cores
};

struct TaskOptions {          // [task]
  std::string name = "copy";  // a registered task
  int64_t seed = 1234;        // the task's data generator and split
  int64_t train_size = 20000;
  int64_t valid_size = 500;
  int64_t test_size = 1000;
  int64_t vocab_size = 10;
  int64_t min_length = 1;
  int64_t max_length = 10;
  int64_t test_min_length = 0;
  int64_t test_max_length = 0;
  std::string train_path, valid_path, test_path;  // task `files`
  std::string tokenizer = "char";
  std::string teacher_score = "additive";  // seed_pooling
  double teacher_sharpness = 3.0;          // seed_pooling
  std::string data_dir = "data";
  bool keep_stress = false;               // cmudict
  int64_t subword_vocab_size = 8000;      // de_en; files with tokenizer = "sentencepiece"
  std::string subword_model = "unigram";  // de_en; files with tokenizer = "sentencepiece"
  bool shared_vocabulary = true;          // de_en; files with tokenizer = "sentencepiece"
};

struct TrainOptions {  // [train]
  std::string optimizer = "adam";
  double lr = 1.0;
  double beta1 = 0.9;
  double beta2 = 0.98;
  double eps = 1e-9;
  double weight_decay = 0.0;
  double momentum = 0.9;
  std::string schedule = "inverse_sqrt";
  int64_t warmup_steps = 400;
  double min_lr = 0.0;
  int64_t max_steps = 2000;
  int64_t epochs = 0;
  int64_t batch_tokens = 4096;
  int64_t max_batch_size = 256;
  int64_t accumulation = 1;
  double clip_norm = 0.0;
  double label_smoothing = 0.1;
  std::string dtype = "f32";
  int64_t log_every = 50;
  int64_t eval_every = 500;
  int64_t checkpoint_every = 500;
  int64_t keep_last = 0;   // checkpoint_step_<N> files kept; 0 = none
  double ema_decay = 0.0;  // moving average of the weights; 0 = off
  std::string early_stopping_metric;
  int64_t patience = 0;
  std::string nan_policy = "stop";
  int64_t max_skipped_steps = 50;
};

struct EvalOptions {  // [eval]
  int64_t beam_size = 1;
  double length_penalty = 0.6;
  int64_t max_decode_length = 0;
  int64_t samples = 10;
  int64_t attention_plots = 3;
  bool all_heads = false;
};

// A whole config: one member per table.
struct ExperimentConfig {
  ExperimentOptions experiment;
  TaskOptions task;
  nn::ModelOptions model;
  TrainOptions train;
  EvalOptions eval;
};

const OptionFields<ExperimentOptions>& ExperimentOptionFields();
const OptionFields<TaskOptions>& TaskOptionFields();
const OptionFields<TrainOptions>& TrainOptionFields();
const OptionFields<EvalOptions>& EvalOptionFields();

}  // namespace attnlab::experiments
