#include "experiments/pooling/seed_pooling.h"

#include <chrono>
#include <cmath>
#include <numeric>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "experiments/tasks/generation.h"
#include "framework/autograd/grad_mode.h"
#include "framework/ops/ops.h"
#include "framework/optim/adam.h"
#include "framework/random/generator.h"
#include "layers/attention_pooling.h"

namespace attnlab::experiments {
namespace {

constexpr int64_t kTimeSteps = 10;  // the seed's [batch, 10, 10] inputs
constexpr int64_t kDim = 10;

// Scales the teacher's last score parameter (v or q) in place; its scores scale with it.
void Sharpen(nn::AttentionPooling& teacher, float factor) {
  NoGradGuard no_grad;
  for (auto& [name, parameter] : teacher.NamedParameters()) {
    if (name != "score_vector" && name != "query") continue;
    float* data = parameter.data<float>();
    for (int64_t i = 0; i < parameter.numel(); ++i) data[i] *= factor;
  }
}

double Mse(const nn::AttentionPooling& model, const Tensor& inputs, const Tensor& targets) {
  NoGradGuard no_grad;
  return MseLoss(model.Forward(inputs).pooled, targets).item();
}

double MeanWeightDifference(const nn::AttentionPooling& student,
                            const nn::AttentionPooling& teacher, const Tensor& inputs) {
  NoGradGuard no_grad;
  const std::vector<float> student_weights = student.Forward(inputs).weights.ToFloats();
  const std::vector<float> teacher_weights = teacher.Forward(inputs).weights.ToFloats();
  double total = 0.0;
  for (size_t i = 0; i < student_weights.size(); ++i) {
    total += std::abs(static_cast<double>(student_weights[i]) - teacher_weights[i]);
  }
  return total / static_cast<double>(student_weights.size());
}

// The inputs x [N, time, dim] of a split and the teacher's pooled outputs [N, dim].
struct PoolingSplit {
  Tensor inputs, targets;
};

// What Evaluate() measures; lower is better for both.
const std::vector<MetricSpec> kValidationMetrics = {{"mse", false}, {"weight_difference", false}};

class SeedPoolingObjective : public Objective {
 public:
  SeedPoolingObjective(const Config& config, nn::PoolingScore student_score,
                       nn::PoolingScore teacher_score)
      : config_(config),
        teacher_(MakePooling(teacher_score, static_cast<uint64_t>(config.task().seed) + 1)),
        student_(MakePooling(student_score, config.experiment().seed)),
        order_(config.task().train_size),
        order_random_(config.task().seed) {
    Sharpen(*teacher_, static_cast<float>(config.task().teacher_sharpness));
    teacher_->Eval();
    // Train, test, then validation inputs from one stream: the first two are the seed
    // experiment's whatever task.valid_size is.
    Generator data_generator(config.task().seed);
    train_ = MakeSplit(config.task().train_size, data_generator);
    test_ = MakeSplit(config.task().test_size, data_generator);
    valid_ = MakeSplit(config.task().valid_size, data_generator);
    initial_test_metrics_ = Measure(test_);
    std::iota(order_.begin(), order_.end(), 0);
  }

  nn::Module& module() override { return *student_; }

  std::string Description() const override {
    return absl::StrFormat(
        "seed_pooling (%s student, %s teacher): %d parameters, %d/%d/%d examples",
        nn::PoolingScoreName(student_->score()), nn::PoolingScoreName(teacher_->score()),
        student_->ParameterCount(), train_.inputs.size(0), valid_.inputs.size(0),
        test_.inputs.size(0));
  }

  // The seed's optimizer, whatever train.optimizer, train.schedule and their settings say.
  absl::StatusOr<std::unique_ptr<Optimizer>> MakeOptimizer(const Config& config) override {
    return std::unique_ptr<Optimizer>(new Adam(student_->NamedParameters(), AdamOptions()));
  }
  absl::StatusOr<std::unique_ptr<LearningRateSchedule>> MakeSchedule(const Config& config,
                                                                     int64_t) override {
    return std::make_unique<Constant>(config.train().lr);
  }

  // Walks a permutation of the training set in batches, reshuffling it (Fisher-Yates,
  // from task.seed) before each epoch; a remainder too short for a batch is left out.
  std::vector<std::vector<int64_t>> EpochPlan(int64_t epoch) override {
    if (epoch < shuffled_epochs_ - 1) {  // back to an earlier epoch: replay from the start
      std::iota(order_.begin(), order_.end(), 0);
      order_random_ = TaskRandom(config_.task().seed);
      shuffled_epochs_ = 0;
    }
    for (; shuffled_epochs_ <= epoch; ++shuffled_epochs_) {
      for (int64_t i = static_cast<int64_t>(order_.size()) - 1; i > 0; --i) {
        std::swap(order_[i], order_[order_random_.Uniform(0, i)]);
      }
    }
    const int64_t batch_size = config_.train().max_batch_size;
    std::vector<std::vector<int64_t>> plan;
    const int64_t size = static_cast<int64_t>(order_.size());
    for (int64_t start = 0; start + batch_size <= size; start += batch_size) {
      plan.emplace_back(order_.begin() + start, order_.begin() + start + batch_size);
    }
    return plan;
  }

  BatchLoss Loss(const std::vector<int64_t>& batch, const BatchShard& shard) override {
    const int64_t batch_rows = static_cast<int64_t>(batch.size());
    const int64_t first = shard.FirstRow(batch_rows), end = shard.EndRow(batch_rows);
    if (first == end) return EmptyShardLoss(batch_rows);
    const std::vector<int32_t> indices(batch.begin() + first, batch.begin() + end);
    const Tensor rows = Tensor::FromInts(indices, {end - first});
    const Tensor inputs = IndexSelect(train_.inputs, 0, rows);
    const Tensor targets = IndexSelect(train_.targets, 0, rows);
    const Tensor shard_mean = MseLoss(student_->Forward(inputs).pooled, targets);
    if (shard.whole()) return {shard_mean, batch_rows};
    // The shard's squared errors summed, over the whole batch's (every row has as many).
    return {MulScalar(shard_mean, static_cast<float>(static_cast<double>(end - first) /
                                                     static_cast<double>(batch_rows))),
            batch_rows};
  }

  std::vector<MetricSpec> Metrics() const override { return kValidationMetrics; }

  Evaluation Evaluate(const std::string& split, const StopRequestedFn&) override {
    const auto start = std::chrono::steady_clock::now();
    Evaluation evaluation;
    evaluation.metrics = Measure(split == "test" ? test_ : valid_);
    evaluation.seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    return evaluation;
  }

  TestPass Test(int64_t, const StopRequestedFn& stop_requested) override {
    TestPass test;
    test.evaluation = Evaluate("test", stop_requested);
    for (const auto& [name, value] : initial_test_metrics_) {
      test.evaluation.metrics["initial_" + name] = value;
    }
    return test;
  }

 private:
  static std::shared_ptr<nn::AttentionPooling> MakePooling(nn::PoolingScore score, uint64_t seed) {
    Generator generator(seed);
    return std::make_shared<nn::AttentionPooling>(kDim, score, generator);
  }

  PoolingSplit MakeSplit(int64_t size, Generator& generator) const {
    PoolingSplit split;
    split.inputs = RandomNormal({size, kTimeSteps, kDim}, 0.0f, 1.0f, generator);
    NoGradGuard no_grad;
    split.targets = teacher_->Forward(split.inputs).pooled;
    return split;
  }

  std::map<std::string, double> Measure(const PoolingSplit& split) const {
    return {{"mse", Mse(*student_, split.inputs, split.targets)},
            {"weight_difference", MeanWeightDifference(*student_, *teacher_, split.inputs)}};
  }

  const Config config_;
  std::shared_ptr<nn::AttentionPooling> teacher_, student_;
  PoolingSplit train_, valid_, test_;
  std::map<std::string, double> initial_test_metrics_;
  // The permutation EpochPlan walks, after `shuffled_epochs_` shuffles by order_random_.
  std::vector<int32_t> order_;
  TaskRandom order_random_;
  int64_t shuffled_epochs_ = 0;
};

}  // namespace

absl::StatusOr<std::unique_ptr<Objective>> MakeSeedPoolingObjective(
    const Config& config, const CheckpointContents* resumed) {
  // model.attention names the student's pooling score here, not an attention variant.
  const absl::StatusOr<nn::PoolingScore> student_score =
      nn::ParsePoolingScore(config.model().attention.variant);
  if (!student_score.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat(config.Origin("model.attention"),
                     ": seed_pooling scores with \"additive\" or \"dot\", not \"",
                     config.model().attention.variant, "\""));
  }
  ASSIGN_OR_RETURN(const nn::PoolingScore teacher_score,
                   nn::ParsePoolingScore(config.task().teacher_score));
  if (config.train().max_batch_size > config.task().train_size) {
    return absl::InvalidArgumentError(
        absl::StrCat("seed_pooling: ", config.Describe("train.max_batch_size"), " exceeds ",
                     config.Describe("task.train_size"), ": no batch can be drawn"));
  }
  return std::unique_ptr<Objective>(
      new SeedPoolingObjective(config, *student_score, teacher_score));
}

// Validation: kValidationMetrics; test: those and their values before training.
absl::StatusOr<ReportedMetrics> SeedPoolingReportedMetrics(const Config&) {
  ReportedMetrics reported;
  reported.validation = kValidationMetrics;
  for (const MetricSpec& spec : kValidationMetrics) {
    reported.test.push_back(spec.name);
    reported.test.push_back("initial_" + spec.name);
  }
  return reported;
}

ATTNLAB_REGISTER_OBJECTIVE(seed_pooling, "seed_pooling", MakeSeedPoolingObjective,
                           SeedPoolingReportedMetrics);

}  // namespace attnlab::experiments
