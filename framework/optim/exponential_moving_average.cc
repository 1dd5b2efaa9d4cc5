#include "framework/optim/exponential_moving_average.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "framework/core/error.h"
#include "framework/io/safetensors.h"
#include "framework/parallel/parallel_for.h"

namespace attnlab {
namespace {

// Elements per unit of parallel work. Fixed, so the split does not depend on threads.
constexpr int64_t kWorkGrain = int64_t{1} << 15;

// average <- average + take (values - average), written as PyTorch's lerp: from the
// nearer end, so that take = 1 gives the values exactly and values equal to the average
// leave it unchanged (a parameter that does not move never drifts). `keep` = 1 - take.
void MoveTowards(float* __restrict average, const float* __restrict values, int64_t count,
                 float take, float keep) {
  if (take < 0.5f) {
    for (int64_t i = 0; i < count; ++i) average[i] += take * (values[i] - average[i]);
  } else {
    for (int64_t i = 0; i < count; ++i) average[i] = values[i] - keep * (values[i] - average[i]);
  }
}

}  // namespace

ExponentialMovingAverage::ExponentialMovingAverage(NamedTensors parameters, double decay,
                                                   const FlatArena* arena)
    : parameters_(std::move(parameters)), decay_(decay), arena_(arena) {
  ATTNLAB_CHECK(decay >= 0.0 && decay < 1.0, "ExponentialMovingAverage: decay ", decay,
                " is not in [0, 1)");
  int64_t total = 0;
  for (const auto& [name, parameter] : parameters_) {
    CheckTrainableParameter("ExponentialMovingAverage", name, parameter);
    offsets_.push_back(total);
    total += AlignedSliceSize(parameter.numel());
  }
  if (arena_ != nullptr) {
    const NamedTensors& held = arena_->parameters();
    ATTNLAB_CHECK(held.size() == parameters_.size() && arena_->offsets() == offsets_,
                  "ExponentialMovingAverage: the arena does not hold exactly the parameters");
    for (size_t p = 0; p < held.size(); ++p) {
      ATTNLAB_CHECK(held[p].second.impl() == parameters_[p].second.impl(),
                    "ExponentialMovingAverage: arena slot ", p, " holds '", held[p].first,
                    "', not '", parameters_[p].first, "'");
    }
  }
  buffer_ = Tensor::Zeros({total});
  for (size_t p = 0; p < parameters_.size(); ++p) {
    const Shape& shape = parameters_[p].second.shape();
    average_.emplace_back(parameters_[p].first,
                          MakeView(buffer_, shape, ContiguousStrides(shape), offsets_[p]));
    const int64_t numel = parameters_[p].second.numel();
    for (int64_t begin = 0; begin < numel; begin += kWorkGrain) {
      slices_.push_back({p, begin, std::min(numel, begin + kWorkGrain)});
    }
  }
  Reset();
}

template <typename Fn>
void ExponentialMovingAverage::ForEachSlice(Fn&& fn) {
  float* average = buffer_.data<float>();
  if (arena_ != nullptr) {
    // Same layout, padding included (zero in both): one loop over the whole arena.
    float* values = arena_->parameter_span().data();
    ParallelFor(buffer_.numel(), kWorkGrain, [&](int64_t begin, int64_t end) {
      fn(average + begin, values + begin, end - begin);
    });
    return;
  }
  ParallelFor(static_cast<int64_t>(slices_.size()), 1, [&](int64_t begin, int64_t end) {
    for (int64_t s = begin; s < end; ++s) {
      const Slice& slice = slices_[s];
      fn(average + offsets_[slice.parameter] + slice.begin,
         parameters_[slice.parameter].second.data<float>() + slice.begin, slice.end - slice.begin);
    }
  });
}

void ExponentialMovingAverage::Update(int64_t t) {
  ATTNLAB_CHECK(t >= 1, "ExponentialMovingAverage::Update: update ", t, " (counted from 1)");
  const double d = decay_;
  // beta_t = d (1 - d^(t-1)) / (1 - d^t); 1 - beta_t = (1 - d) / (1 - d^t).
  const double bias = 1.0 - std::pow(d, static_cast<double>(t));
  const double beta = d * (1.0 - std::pow(d, static_cast<double>(t - 1))) / bias;
  const auto take = static_cast<float>((1.0 - d) / bias);
  const auto keep = static_cast<float>(beta);
  ForEachSlice([take, keep](float* average, float* values, int64_t count) {
    MoveTowards(average, values, count, take, keep);
  });
}

void ExponentialMovingAverage::Reset() {
  ForEachSlice([](float* average, float* values, int64_t count) {
    std::memcpy(average, values, static_cast<size_t>(count) * sizeof(float));
  });
}

absl::Status ExponentialMovingAverage::Load(const NamedTensors& average) {
  const std::vector<std::string> problems = NamedLoadProblems(average_, average, /*strict=*/true);
  if (!problems.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "the moving average does not match the parameters (", problems.size(),
        problems.size() == 1 ? " problem): " : " problems): ", absl::StrJoin(problems, "; ")));
  }
  return LoadIntoNamed(average_, average, /*strict=*/true);
}

void ExponentialMovingAverage::SwapWithParameters() {
  ForEachSlice([](float* average, float* values, int64_t count) {
    std::swap_ranges(values, values + count, average);
  });
}

}  // namespace attnlab
