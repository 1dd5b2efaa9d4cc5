// `attnlab demo`: the engine on its own. A two-layer MLP learns y = sin(2x) + x/2 on
// [-2, 2] with full-batch SGD with momentum, printing its falling loss. It exercises
// linear (oneDNN matmul with fused bias), tanh (oneDNN eltwise), broadcasting
// arithmetic, reductions and autograd.
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "framework/autograd/grad_mode.h"
#include "framework/ops/ops.h"
#include "framework/parallel/parallel_for.h"
#include "framework/random/generator.h"
#include "tools/cli/command.h"

namespace attnlab::cli {
namespace {

absl::Status RunDemo(const std::vector<std::string>& args) {
  int steps = 600;
  for (const std::string& arg : args) {
    if (arg.rfind("--steps=", 0) == 0 && absl::SimpleAtoi(arg.substr(8), &steps) && steps > 0)
      continue;
    if (arg.rfind("--threads=", 0) == 0) {
      int threads = 0;
      if (!absl::SimpleAtoi(arg.substr(10), &threads) || threads < 1) {
        return absl::InvalidArgumentError("--threads needs a positive integer, got '" + arg + "'");
      }
      SetNumThreads(threads);
      continue;
    }
    return absl::InvalidArgumentError("unknown argument '" + arg + "' (see attnlab demo --help)");
  }
  constexpr int64_t kPoints = 256, kHidden = 64;
  Generator generator(7);
  // Inputs on a grid, targets from the function being learned: x, y: [points, 1].
  std::vector<float> xs(kPoints), ys(kPoints);
  for (int64_t i = 0; i < kPoints; ++i) {
    xs[i] = -2.0f + 4.0f * static_cast<float>(i) / (kPoints - 1);
    ys[i] = std::sin(2.0f * xs[i]) + 0.5f * xs[i];
  }
  const Tensor x = Tensor::FromFloats(xs, {kPoints, 1});
  const Tensor y = Tensor::FromFloats(ys, {kPoints, 1});
  // Xavier-uniform weights ([out, in]), zero biases.
  auto xavier = [&](int64_t out, int64_t in) {
    const float limit = std::sqrt(6.0f / static_cast<float>(in + out));
    Tensor w = RandomUniform({out, in}, -limit, limit, generator);
    w.set_requires_grad(true);
    return w;
  };
  std::vector<Tensor> parameters = {xavier(kHidden, 1), Tensor::Zeros({kHidden}),
                                    xavier(1, kHidden), Tensor::Zeros({1})};
  parameters[1].set_requires_grad(true);
  parameters[3].set_requires_grad(true);
  std::vector<Tensor> velocity;
  for (const Tensor& p : parameters) velocity.push_back(Tensor::Zeros(p.shape()));

  constexpr float kLearningRate = 0.05f, kMomentum = 0.9f;
  std::printf("demo: MLP 1 -> %lld -> 1 (tanh) learns y = sin(2x) + x/2 on %lld points\n",
              static_cast<long long>(kHidden), static_cast<long long>(kPoints));
  for (int step = 1; step <= steps; ++step) {
    const Tensor hidden = Tanh(Linear(x, parameters[0], parameters[1]));
    const Tensor prediction = Linear(hidden, parameters[2], parameters[3]);
    const Tensor error = prediction - y;
    const Tensor loss = Mean(error * error);
    loss.backward();
    {
      NoGradGuard no_grad;
      for (size_t i = 0; i < parameters.size(); ++i) {
        // v = momentum * v + grad; p -= lr * v
        const Tensor new_velocity = velocity[i] * kMomentum + parameters[i].grad();
        velocity[i] = new_velocity;
        AddInPlace(parameters[i], new_velocity * -kLearningRate);
        parameters[i].zero_grad();
      }
    }
    if (step == 1 || step % 100 == 0 || step == steps) {
      std::printf("step %4d  mse %.6f\n", step, loss.item());
    }
  }
  return absl::OkStatus();
}

}  // namespace

ATTNLAB_COMMAND(demo, "demo", "train a small MLP on a toy regression (the engine alone)",
                "usage: attnlab demo [--steps=N] [--threads=N]\n\n"
                "Trains a 1-64-1 tanh MLP on y = sin(2x) + x/2 with SGD + momentum and prints\n"
                "the mean squared error as it falls. Default 600 steps.",
                RunDemo);

}  // namespace attnlab::cli
