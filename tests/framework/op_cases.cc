#include "tests/framework/op_cases.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <numbers>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "framework/ops/ops.h"
#include "framework/random/generator.h"

// The table leaves out the fields a case does not need (their defaults apply); GCC 12
// warns about every designated initializer that does so.
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"

namespace attnlab::testing {

InputSpec Uniform(const Shape& shape) { return InputSpec{.shape = shape}; }
InputSpec Uniform(const Shape& shape, float low, float high) {
  return InputSpec{.shape = shape, .low = low, .high = high};
}
InputSpec Positive(const Shape& shape) { return Uniform(shape, 0.5f, 2.0f); }
InputSpec AwayFromZero(const Shape& shape) {
  return InputSpec{.shape = shape, .low = -1.9f, .high = 1.9f, .away_from_zero = 0.1f};
}
InputSpec Distinct(const Shape& shape, int64_t multiplier) {
  return InputSpec{.shape = shape, .distinct_multiplier = multiplier};
}
InputSpec Constant(const Shape& shape) { return InputSpec{.shape = shape, .requires_grad = false}; }

std::string OpCase::Name() const {
  std::string name = std::string(op) + "_" + variant;
  for (char& c : name) {
    if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
  }
  return name;
}

void PrintTo(const OpCase& op_case, std::ostream* os) { *os << op_case.Name(); }

void PrintTo(const Activation& activation, std::ostream* os) { *os << activation.op; }

const std::vector<Activation>& AllActivations() {
  const auto symmetric = [](const Shape& shape) { return Uniform(shape, -2.0f, 2.0f); };
  constexpr double kEluAlpha = 0.7;
  const double sqrt_two_over_pi = std::sqrt(2.0 / std::numbers::pi);
  static const std::vector<Activation>* activations = new std::vector<Activation>{
      {"relu", Relu, [](double x) { return x > 0.0 ? x : 0.0; }, AwayFromZero},
      {"gelu_erf", GeluErf, [](double x) { return 0.5 * x * (1.0 + std::erf(x / std::sqrt(2.0))); },
       symmetric},
      {"gelu_tanh", GeluTanh,
       [sqrt_two_over_pi](double x) {
         return 0.5 * x * (1.0 + std::tanh(sqrt_two_over_pi * (x + 0.044715 * x * x * x)));
       },
       symmetric},
      {"tanh", Tanh, [](double x) { return std::tanh(x); }, symmetric},
      {"sigmoid", Sigmoid, [](double x) { return 1.0 / (1.0 + std::exp(-x)); }, symmetric},
      {"exp", Exp, [](double x) { return std::exp(x); }, symmetric},
      {"log", Log, [](double x) { return std::log(x); }, Positive},
      {"sqrt", Sqrt, [](double x) { return std::sqrt(x); }, Positive},
      {"elu", [](const Tensor& x) { return Elu(x, static_cast<float>(kEluAlpha)); },
       [](double x) { return x > 0.0 ? x : kEluAlpha * (std::exp(x) - 1.0); }, AwayFromZero},
  };
  return *activations;
}

namespace {

// FNV-1a: a seed that depends on the case's name only.
uint64_t SeedFromName(std::string_view name) {
  uint64_t hash = 14695981039346656037ull;
  for (char c : name) hash = (hash ^ static_cast<unsigned char>(c)) * 1099511628211ull;
  return hash;
}

// "2x3x4", or "rank0" for a scalar (so that "add_rank0_3x5" is not read as add_scalar).
std::string ShapeLabel(const Shape& shape) {
  if (shape.empty()) return "rank0";
  return absl::StrJoin(shape, "x");
}

// The inputs' shapes joined by "_", then `detail` if any.
std::string Label(const std::vector<InputSpec>& inputs, std::string_view detail = "") {
  std::vector<std::string> parts;
  for (const InputSpec& input : inputs) parts.push_back(ShapeLabel(input.shape));
  if (!detail.empty()) parts.emplace_back(detail);
  return absl::StrJoin(parts, "_");
}

// ---- naive references: plain loops over the row-major values of contiguous inputs ----

NaiveForward NaiveElementwise(std::function<double(double)> formula) {
  return [formula](const std::vector<Tensor>& x) {
    std::vector<float> values = x[0].ToFloats();
    for (float& value : values) value = static_cast<float>(formula(value));
    return values;
  };
}

// out[i] = formula(a[i'], b[i'']) with numpy broadcasting.
NaiveForward NaiveBroadcast(std::function<double(double, double)> formula) {
  return [formula](const std::vector<Tensor>& x) {
    const Shape &a_shape = x[0].shape(), &b_shape = x[1].shape();
    const size_t rank = std::max(a_shape.size(), b_shape.size());
    // Shapes right-aligned to `rank`, padded with 1.
    const auto aligned = [rank](const Shape& shape) {
      Shape padded(rank - shape.size(), 1);
      padded.insert(padded.end(), shape.begin(), shape.end());
      return padded;
    };
    const Shape a = aligned(a_shape), b = aligned(b_shape);
    Shape out(rank);
    for (size_t d = 0; d < rank; ++d) out[d] = std::max(a[d], b[d]);
    const std::vector<float> av = x[0].ToFloats(), bv = x[1].ToFloats();
    std::vector<float> result(NumElements(out));
    for (int64_t flat = 0; flat < static_cast<int64_t>(result.size()); ++flat) {
      int64_t rest = flat, a_index = 0, b_index = 0, a_stride = 1, b_stride = 1;
      for (size_t d = rank; d-- > 0;) {
        const int64_t coordinate = rest % out[d];
        rest /= out[d];
        a_index += (a[d] == 1 ? 0 : coordinate) * a_stride;
        b_index += (b[d] == 1 ? 0 : coordinate) * b_stride;
        a_stride *= a[d];
        b_stride *= b[d];
      }
      result[flat] = static_cast<float>(formula(av[a_index], bv[b_index]));
    }
    return result;
  };
}

// 2-D op(a) @ op(b), op transposing when asked.
NaiveForward NaiveMatmul2d(bool transpose_a, bool transpose_b) {
  return [=](const std::vector<Tensor>& x) {
    const std::vector<float> a = x[0].ToFloats(), b = x[1].ToFloats();
    const int64_t m = transpose_a ? x[0].size(1) : x[0].size(0);
    const int64_t k = transpose_a ? x[0].size(0) : x[0].size(1);
    const int64_t n = transpose_b ? x[1].size(0) : x[1].size(1);
    std::vector<float> c(m * n);
    for (int64_t i = 0; i < m; ++i) {
      for (int64_t j = 0; j < n; ++j) {
        double total = 0.0;
        for (int64_t q = 0; q < k; ++q) {
          total += double{a[transpose_a ? q * m + i : i * k + q]} *
                   b[transpose_b ? j * k + q : q * n + j];
        }
        c[i * n + j] = static_cast<float>(total);
      }
    }
    return c;
  };
}

// x [..., in] @ weight[out, in]^T + bias [out] (bias optional: a third input).
std::vector<float> NaiveLinear(const std::vector<Tensor>& x) {
  const std::vector<float> in = x[0].ToFloats(), weight = x[1].ToFloats();
  const std::vector<float> bias = x.size() > 2 ? x[2].ToFloats() : std::vector<float>();
  const int64_t features_in = x[1].size(1), features_out = x[1].size(0);
  const int64_t rows = x[0].numel() / features_in;
  std::vector<float> out(rows * features_out);
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t o = 0; o < features_out; ++o) {
      double total = bias.empty() ? 0.0 : bias[o];
      for (int64_t i = 0; i < features_in; ++i)
        total += double{in[r * features_in + i]} * weight[o * features_in + i];
      out[r * features_out + o] = static_cast<float>(total);
    }
  }
  return out;
}

// Sum or mean of every element.
NaiveForward NaiveTotal(bool mean) {
  return [mean](const std::vector<Tensor>& x) {
    const std::vector<float> values = x[0].ToFloats();
    double total = 0.0;
    for (float value : values) total += value;
    if (mean) total /= static_cast<double>(values.size());
    return std::vector<float>{static_cast<float>(total)};
  };
}

// Softmax or log-softmax over the last dim.
NaiveForward NaiveSoftmax(bool log) {
  return [log](const std::vector<Tensor>& x) {
    std::vector<float> values = x[0].ToFloats();
    const int64_t width = x[0].shape().back();
    for (size_t row = 0; row < values.size(); row += width) {
      const float* begin = values.data() + row;
      const double largest = *std::max_element(begin, begin + width);
      double total = 0.0;
      for (int64_t i = 0; i < width; ++i) total += std::exp(begin[i] - largest);
      for (int64_t i = 0; i < width; ++i) {
        const double shifted = values[row + i] - largest;
        values[row + i] =
            static_cast<float>(log ? shifted - std::log(total) : std::exp(shifted) / total);
      }
    }
    return values;
  };
}

// (x - mean) / sqrt(var + 1e-5) * gamma + beta over the last dim, in double.
std::vector<float> NaiveLayerNorm(const std::vector<Tensor>& x) {
  std::vector<float> values = x[0].ToFloats();
  const std::vector<float> gamma = x[1].ToFloats(), beta = x[2].ToFloats();
  const size_t width = gamma.size();
  for (size_t row = 0; row < values.size(); row += width) {
    double mean = 0.0, variance = 0.0;
    for (size_t i = 0; i < width; ++i) mean += values[row + i];
    mean /= width;
    for (size_t i = 0; i < width; ++i) variance += std::pow(values[row + i] - mean, 2);
    variance /= width;
    const double inverse_deviation = 1.0 / std::sqrt(variance + 1e-5);
    for (size_t i = 0; i < width; ++i) {
      values[row + i] =
          static_cast<float>((values[row + i] - mean) * inverse_deviation * gamma[i] + beta[i]);
    }
  }
  return values;
}

std::vector<float> NaiveMseLoss(const std::vector<Tensor>& x) {
  const std::vector<float> prediction = x[0].ToFloats(), target = x[1].ToFloats();
  double total = 0.0;
  for (size_t i = 0; i < prediction.size(); ++i) total += std::pow(prediction[i] - target[i], 2);
  return {static_cast<float>(total / prediction.size())};
}

// ---- the table, family by family ----------------------------------------------------

void AddMatmulCases(std::vector<OpCase>& cases) {
  struct Operands {
    Shape a, b;
    bool transpose_a, transpose_b;
  };
  for (const Operands& o : std::vector<Operands>{{{3, 4}, {4, 5}, false, false},
                                                 {{4, 3}, {4, 5}, true, false},
                                                 {{3, 4}, {5, 4}, false, true},
                                                 {{4, 3}, {5, 4}, true, true},
                                                 {{1, 1}, {1, 1}, false, false},
                                                 {{2, 3, 5}, {2, 5, 7}, false, false},
                                                 {{2, 5, 3}, {2, 7, 5}, true, true},
                                                 {{2, 3, 3, 4}, {2, 3, 4, 2}, false, false},
                                                 {{2, 3, 5}, {5, 4}, false, false},
                                                 {{2, 3, 5}, {4, 5}, false, true}}) {
    const std::vector<InputSpec> inputs = {Uniform(o.a), Uniform(o.b)};
    const std::string transposes = absl::StrCat(o.transpose_a ? "transposed" : "plain", "_",
                                                o.transpose_b ? "transposed" : "plain");
    const bool two_dimensional = o.a.size() == 2 && o.b.size() == 2;
    cases.push_back({.op = "matmul",
                     .variant = Label(inputs, transposes),
                     .inputs = inputs,
                     .build =
                         [o](const std::vector<Tensor>& x) {
                           return Matmul(x[0], x[1], o.transpose_a, o.transpose_b);
                         },
                     .naive_forward = two_dimensional ? NaiveMatmul2d(o.transpose_a, o.transpose_b)
                                                      : NaiveForward(),
                     .bf16_applies = true});
  }
  const std::vector<InputSpec> with_bias = {Uniform({2, 3, 4}), Uniform({5, 4}), Uniform({5})};
  cases.push_back({.op = "linear",
                   .variant = Label(with_bias),
                   .inputs = with_bias,
                   .build = [](const std::vector<Tensor>& x) { return Linear(x[0], x[1], x[2]); },
                   .naive_forward = NaiveLinear,
                   .bf16_applies = true});
  const std::vector<InputSpec> no_bias = {Uniform({3, 4}), Uniform({2, 4})};
  cases.push_back(
      {.op = "linear",
       .variant = Label(no_bias, "no_bias"),
       .inputs = no_bias,
       .build = [](const std::vector<Tensor>& x) { return Linear(x[0], x[1], Tensor()); },
       .naive_forward = NaiveLinear,
       .bf16_applies = true});
}

void AddBinaryCases(std::vector<OpCase>& cases) {
  struct Binary {
    std::string_view op;
    Tensor (*apply)(const Tensor&, const Tensor&);
    std::function<double(double, double)> formula;
  };
  const std::vector<Binary> binaries = {
      {"add", Add, [](double a, double b) { return a + b; }},
      {"sub", Sub, [](double a, double b) { return a - b; }},
      {"mul", Mul, [](double a, double b) { return a * b; }},
      {"div", Div, [](double a, double b) { return a / b; }},
  };
  // Equal shapes (the fast path), one or both sides broadcast, scalars, odd sizes.
  const std::vector<std::pair<Shape, Shape>> shapes = {{{2, 3, 4}, {2, 3, 4}},
                                                       {{2, 3, 4}, {4}},
                                                       {{2, 1, 4}, {3, 1}},
                                                       {{2, 3, 4}, {3, 1}},
                                                       {{5, 7}, {}},
                                                       {{}, {3, 5}},
                                                       {{}, {}},
                                                       {{1}, {1}},
                                                       {{1, 1}, {7}},
                                                       {{7, 1, 3}, {1, 5, 1}},
                                                       {{13}, {13}}};
  for (const Binary& binary : binaries) {
    for (const auto& [a, b] : shapes) {
      // Divisors stay away from zero.
      const std::vector<InputSpec> inputs = {Uniform(a),
                                             binary.op == "div" ? Positive(b) : Uniform(b)};
      const auto apply = binary.apply;
      cases.push_back({.op = binary.op,
                       .variant = Label(inputs),
                       .inputs = inputs,
                       .build = [apply](const std::vector<Tensor>& x) { return apply(x[0], x[1]); },
                       .naive_forward = NaiveBroadcast(binary.formula)});
    }
  }
}

void AddScalarCases(std::vector<OpCase>& cases) {
  cases.push_back({.op = "add_scalar",
                   .variant = "2x3_plus_0_7",
                   .inputs = {Uniform({2, 3})},
                   .build = [](const std::vector<Tensor>& x) { return AddScalar(x[0], 0.7f); },
                   .naive_forward = NaiveElementwise([](double x) { return x + double{0.7f}; })});
  cases.push_back({.op = "mul_scalar",
                   .variant = "2x3_times_minus_2_5",
                   .inputs = {Uniform({2, 3})},
                   .build = [](const std::vector<Tensor>& x) { return MulScalar(x[0], -2.5f); },
                   .naive_forward = NaiveElementwise([](double x) { return x * -2.5; })});
  struct Power {
    InputSpec input;
    float exponent;
    std::string variant;
  };
  // Fractional and negative exponents take positive bases.
  for (const Power& power : std::vector<Power>{{Uniform({2, 3}), 2.0f, "2x3_squared"},
                                               {Uniform({5}), 3.0f, "5_cubed"},
                                               {Positive({2, 3}), 2.5f, "2x3_to_2_5"},
                                               {Positive({7}), -0.5f, "7_to_minus_0_5"},
                                               {Uniform({}), 2.0f, "rank0_squared"}}) {
    const float exponent = power.exponent;
    cases.push_back(
        {.op = "pow_scalar",
         .variant = power.variant,
         .inputs = {power.input},
         .build = [exponent](const std::vector<Tensor>& x) { return PowScalar(x[0], exponent); },
         .naive_forward = NaiveElementwise(
             [exponent](double x) { return std::pow(x, static_cast<double>(exponent)); })});
  }
  cases.push_back({.op = "pow_scalar",
                   .variant = "3x4_strided_columns_squared",
                   .inputs = {Uniform({3, 4})},
                   .build = [](const std::vector<Tensor>& x) {
                     return PowScalar(x[0].narrow(1, 1, 2), 2.0f);
                   }});
}

void AddReductionCases(std::vector<OpCase>& cases) {
  const std::vector<std::pair<Shape, std::vector<int64_t>>> reductions = {
      {{2, 3, 4}, {}},        {{2, 3, 4}, {0}},  {{2, 3, 4}, {1}},
      {{2, 3, 4}, {2}},       {{2, 3, 4}, {-1}}, {{2, 3, 4}, {0, 2}},
      {{2, 3, 4}, {2, 0, 2}},  // unsorted, repeated
      {{2, 3, 4}, {0, 1, 2}}, {{5}, {0}},        {{1, 7, 1}, {1}},
      {{3, 1, 5}, {1}},       {{}, {}}};
  for (const bool mean : {false, true}) {
    for (const auto& [shape, dims] : reductions) {
      for (const bool keepdim : {false, true}) {
        const std::string over =
            dims.empty() ? "all" : absl::StrCat("dims_", absl::StrJoin(dims, "_"));
        const std::vector<InputSpec> inputs = {Uniform(shape)};
        const bool total = dims.empty() && !keepdim;
        cases.push_back({.op = mean ? "mean" : "sum",
                         .variant = Label(inputs, absl::StrCat(over, keepdim ? "_keepdim" : "")),
                         .inputs = inputs,
                         .build =
                             [mean, dims, keepdim](const std::vector<Tensor>& x) {
                               return mean ? Mean(x[0], dims, keepdim) : Sum(x[0], dims, keepdim);
                             },
                         .naive_forward = total ? NaiveTotal(mean) : NaiveForward()});
      }
    }
  }
  for (const int64_t dim : {0, 1, 2, -1}) {
    for (const bool keepdim : {false, true}) {
      cases.push_back({.op = "max",
                       .variant = absl::StrCat("3x4x5_dim_", dim < 0 ? "minus" : "", std::abs(dim),
                                               keepdim ? "_keepdim" : ""),
                       .inputs = {Distinct({3, 4, 5}, 7)},
                       .build = [dim, keepdim](const std::vector<Tensor>& x) {
                         return Max(x[0], dim, keepdim);
                       }});
    }
  }
  cases.push_back(
      {.op = "max",
       .variant = "4x5_strided_columns_dim_1",
       .inputs = {Distinct({4, 5}, 3)},
       .build = [](const std::vector<Tensor>& x) { return Max(x[0].narrow(1, 1, 3), 1); }});
  cases.push_back({.op = "max",
                   .variant = "4x1_dim_1_of_size_one",
                   .inputs = {Distinct({4, 1}, 3)},
                   .build = [](const std::vector<Tensor>& x) { return Max(x[0], 1); }});
}

void AddActivationCases(std::vector<OpCase>& cases) {
  for (const Activation& activation : AllActivations()) {
    for (const Shape& shape : {Shape{3, 7}, Shape{2, 3, 5}, Shape{1, 1}, Shape{4, 1, 3}, Shape{}}) {
      const std::vector<InputSpec> inputs = {activation.draw(shape)};
      const auto apply = activation.apply;
      cases.push_back({.op = activation.op,
                       .variant = Label(inputs),
                       .inputs = inputs,
                       .build = [apply](const std::vector<Tensor>& x) { return apply(x[0]); },
                       // oneDNN's vectorised exp/erf/tanh are accurate to a few ulp.
                       .naive_forward = NaiveElementwise(activation.formula)});
    }
  }
}

void AddNormalisationCases(std::vector<OpCase>& cases) {
  for (const bool log : {false, true}) {
    for (const Shape& shape :
         {Shape{3, 7}, Shape{2, 3, 5}, Shape{1, 1}, Shape{4, 1}, Shape{1, 9}}) {
      const std::vector<InputSpec> inputs = {Uniform(shape, -3.0f, 3.0f)};
      cases.push_back({.op = log ? "log_softmax" : "softmax",
                       .variant = Label(inputs),
                       .inputs = inputs,
                       .build =
                           [log](const std::vector<Tensor>& x) {
                             return log ? LogSoftmax(x[0]) : Softmax(x[0]);
                           },
                       .naive_forward = NaiveSoftmax(log)});
    }
  }
  // gamma in [0.5, 1.5); the rows' variance (~1/3 for U[-1, 1]) keeps 1/sqrt(var) far
  // from epsilon.
  for (const Shape& shape :
       {Shape{3, 7}, Shape{2, 3, 5}, Shape{1, 4}, Shape{4, 1, 6}, Shape{9}, Shape{3, 1}}) {
    const int64_t channels = shape.back();
    const std::vector<InputSpec> inputs = {Uniform(shape), Uniform({channels}, 0.5f, 1.5f),
                                           Uniform({channels})};
    cases.push_back(
        {.op = "layer_norm",
         .variant = Label(inputs),
         .inputs = inputs,
         .build = [](const std::vector<Tensor>& x) { return LayerNorm(x[0], x[1], x[2]); },
         .naive_forward = NaiveLayerNorm});
  }
}

void AddRandomisedCases(std::vector<OpCase>& cases) {
  // Every evaluation restarts the stream, so all of them see the same mask. The fused
  // forms' ReLU keeps its kink away from the inputs (AwayFromZero) so the numerical
  // gradient does not straddle it.
  for (const float p : {0.2f, 0.5f}) {
    const std::string variant = absl::StrCat("5x7_p_0_", static_cast<int>(p * 10));
    cases.push_back({.op = "dropout",
                     .variant = variant,
                     .inputs = {Uniform({5, 7})},
                     .build = [p](const std::vector<Tensor>& x) {
                       ManualSeed(16);
                       return Dropout(x[0], p, true);
                     }});
    cases.push_back({.op = "relu_dropout",
                     .variant = variant,
                     .inputs = {AwayFromZero({5, 7})},
                     .build = [p](const std::vector<Tensor>& x) {
                       ManualSeed(17);
                       return ReluDropout(x[0], p, true);
                     }});
    cases.push_back({.op = "dropout_matmul",
                     .variant = absl::StrCat("2x3x4_at_2x4x5_p_0_", static_cast<int>(p * 10)),
                     .inputs = {Uniform({2, 3, 4}), Uniform({2, 4, 5})},
                     .build = [p](const std::vector<Tensor>& x) {
                       ManualSeed(21);
                       return DropoutMatmul(x[0], x[1], p, true);
                     }});
    cases.push_back({.op = "add_dropout",
                     .variant = variant,
                     .inputs = {Uniform({5, 7}), Uniform({5, 7})},
                     .build = [p](const std::vector<Tensor>& x) {
                       ManualSeed(19);
                       return AddDropout(x[0], x[1], p, true);
                     }});
  }
  cases.push_back({.op = "dropout",
                   .variant = "5x6_strided_rows_p_0_3",
                   .inputs = {Uniform({5, 6})},
                   .build = [](const std::vector<Tensor>& x) {
                     ManualSeed(18);
                     return Dropout(x[0].narrow(0, 1, 3), 0.3f, true);
                   }});
  cases.push_back({.op = "add_dropout",
                   .variant = "5x6_strided_rows_p_0_3",
                   .inputs = {Uniform({3, 6}), Uniform({5, 6})},
                   .build = [](const std::vector<Tensor>& x) {
                     ManualSeed(20);
                     return AddDropout(x[0], x[1].narrow(0, 1, 3), 0.3f, true);
                   }});
  // [batch, heads, tgt, dim] queries against [batch, heads, src, dim] keys and values;
  // batch b pads its last b keys.
  struct Attention {
    int64_t batch, heads, tgt, src, dim;
    bool padded, causal;
    int64_t query_offset;
    float dropout;
    std::string variant;
  };
  for (const Attention& a :
       std::vector<Attention>{{2, 2, 3, 4, 3, true, true, 1, 0.0f, "padded_causal_offset_1"},
                              {1, 2, 3, 5, 2, false, false, 0, 0.4f, "dropout_0_4"}}) {
    std::vector<float> padding(a.batch * a.src, 0.0f);
    for (int64_t b = 0; b < a.batch; ++b) {
      for (int64_t s = a.src - b; s < a.src; ++s) padding[b * a.src + s] = 1.0f;
    }
    const Tensor padding_mask = a.padded ? Tensor::FromFloats(padding, {a.batch, a.src}) : Tensor();
    const std::vector<InputSpec> inputs = {Uniform({a.batch, a.heads, a.tgt, a.dim}),
                                           Uniform({a.batch, a.heads, a.src, a.dim}),
                                           Uniform({a.batch, a.heads, a.src, a.dim})};
    cases.push_back({.op = "scaled_dot_product_attention",
                     .variant = Label(inputs, a.variant),
                     .inputs = inputs,
                     .build = [a, padding_mask](const std::vector<Tensor>& x) {
                       ManualSeed(6);  // every evaluation sees the same dropout mask
                       return ScaledDotProductAttention(
                           x[0], x[1], x[2], padding_mask, a.causal, a.query_offset,
                           1.0f / std::sqrt(static_cast<float>(a.dim)), a.dropout, true);
                     }});
  }
}

void AddLookupAndLossCases(std::vector<OpCase>& cases) {
  const Tensor ids = Tensor::FromInts(std::vector<int32_t>{1, 3, 1, 0, 3, 3}, {3, 2});
  // A padding index that never occurs changes nothing.
  for (const int64_t padding_index : {-1, 2}) {
    cases.push_back(
        {.op = "embedding",
         .variant = padding_index < 0 ? "4x5_repeated_ids" : "4x5_unused_padding_index",
         .inputs = {Uniform({4, 5})},
         .build = [ids, padding_index](
                      const std::vector<Tensor>& x) { return Embedding(x[0], ids, padding_index); },
         .naive_forward =
             [ids](const std::vector<Tensor>& x) {
               const std::vector<float> weight = x[0].ToFloats();
               const int64_t dim = x[0].size(1);
               std::vector<float> out;
               const int32_t* id = ids.data<int32_t>();
               for (int64_t i = 0; i < ids.numel(); ++i) {
                 const auto row = weight.begin() + id[i] * dim;
                 out.insert(out.end(), row, row + dim);
               }
               return out;
             }});
  }
  cases.push_back({.op = "embedding",
                   .variant = "4x5_strided_columns",
                   .inputs = {Uniform({4, 5})},
                   .build = [ids](const std::vector<Tensor>& x) {
                     return Embedding(x[0].narrow(1, 1, 3), ids);
                   }});
  const Tensor targets = Tensor::FromInts(std::vector<int32_t>{0, 4, 2, 2, 3}, {5});
  const Tensor targets_with_ignored =
      Tensor::FromInts(std::vector<int32_t>{0, -100, 2, 5, -100}, {5});
  for (const float smoothing : {0.0f, 0.1f}) {
    const std::string smoothed = smoothing > 0.0f ? "_smoothing_0_1" : "";
    cases.push_back({.op = "cross_entropy",
                     .variant = absl::StrCat("5x6", smoothed),
                     .inputs = {Uniform({5, 6}, -2.0f, 2.0f)},
                     .build = [targets, smoothing](const std::vector<Tensor>& x) {
                       return CrossEntropy(x[0], targets, smoothing);
                     }});
    cases.push_back({.op = "cross_entropy",
                     .variant = absl::StrCat("5x8_strided_with_ignored_rows", smoothed),
                     .inputs = {Uniform({5, 8}, -2.0f, 2.0f)},
                     .build = [targets_with_ignored, smoothing](const std::vector<Tensor>& x) {
                       return CrossEntropy(x[0].narrow(1, 1, 6), targets_with_ignored, smoothing);
                     }});
  }
  for (const Shape& shape : {Shape{3, 4}, Shape{2, 3, 2}}) {
    const std::vector<InputSpec> inputs = {Uniform(shape), Uniform(shape)};
    cases.push_back({.op = "mse_loss",
                     .variant = Label(inputs),
                     .inputs = inputs,
                     .build = [](const std::vector<Tensor>& x) { return MseLoss(x[0], x[1]); },
                     .naive_forward = NaiveMseLoss});
  }
}

// A case whose input is one uniform tensor of `shape`.
OpCase OneInput(std::string_view op, const Shape& shape, std::string detail, TensorFunction build) {
  const std::vector<InputSpec> inputs = {Uniform(shape)};
  return {.op = op, .variant = Label(inputs, detail), .inputs = inputs, .build = std::move(build)};
}

void AddShapeCases(std::vector<OpCase>& cases) {
  using Inputs = const std::vector<Tensor>&;
  cases.push_back(OneInput("reshape", {2, 3, 4}, "to_4_by_rest", [](Inputs x) {
    return Reshape(x[0], {4, -1});
  }));
  cases.push_back(OneInput("reshape", {3, 5}, "strided_rows_flattened",
                           [](Inputs x) { return Reshape(x[0].narrow(0, 1, 2), {-1}); }));
  cases.push_back(OneInput("narrow", {3, 5, 2}, "dim_1_from_1_length_3",
                           [](Inputs x) { return Narrow(x[0], 1, 1, 3); }));
  cases.push_back(OneInput("narrow", {4, 3}, "dim_0_from_2_length_1",
                           [](Inputs x) { return Narrow(x[0], 0, 2, 1); }));
  cases.push_back(OneInput("narrow", {3, 6}, "narrow_of_narrow",
                           [](Inputs x) { return Narrow(Narrow(x[0], -1, 1, 4), 0, 1, 2); }));
  cases.push_back(OneInput("contiguous", {3, 5}, "of_strided_columns",
                           [](Inputs x) { return Contiguous(x[0].narrow(1, 1, 3)); }));
  cases.push_back(OneInput("permute", {2, 3, 4}, "order_2_0_1", [](Inputs x) {
    return Permute(x[0], {2, 0, 1});
  }));
  cases.push_back(
      OneInput("permute", {3, 5}, "transpose", [](Inputs x) { return Transpose(x[0], 0, 1); }));

  const std::vector<InputSpec> three = {Uniform({2, 1, 3}), Uniform({2, 4, 3}), Uniform({2, 2, 3})};
  cases.push_back(
      {.op = "concat", .variant = Label(three, "dim_1"), .inputs = three, .build = [](Inputs x) {
         return Concat({x[0], x[1], x[2]}, 1);
       }});
  const std::vector<InputSpec> two = {Uniform({1, 3}), Uniform({2, 3})};
  cases.push_back(
      {.op = "concat", .variant = Label(two, "dim_0"), .inputs = two, .build = [](Inputs x) {
         return Concat({x[0], x[1]}, 0);
       }});
  cases.push_back(OneInput("concat", {2, 3}, "with_itself_on_last_dim", [](Inputs x) {
    return Concat({x[0], x[0]}, -1);
  }));
  const std::vector<InputSpec> with_constant = {Constant({2, 2}), Uniform({2, 3})};
  cases.push_back({.op = "concat",
                   .variant = Label(with_constant, "first_needs_no_gradient"),
                   .inputs = with_constant,
                   .build = [](Inputs x) {
                     return Concat({x[0], x[1]}, 1);
                   }});

  const Tensor repeated = Tensor::FromInts(std::vector<int32_t>{3, 0, 3, 1, 3}, {5});
  for (const int64_t dim : {1, 0}) {
    cases.push_back(
        OneInput("index_select", {4, 4, 3}, absl::StrCat("dim_", dim, "_repeated_picks"),
                 [dim, repeated](Inputs x) { return IndexSelect(x[0], dim, repeated); }));
  }

  const Tensor index = Tensor::FromInts(std::vector<int32_t>{3, 3, 0, 1, 1, 1}, {3, 2});
  const Tensor rows = Tensor::FromInts(std::vector<int32_t>{2, 0, 2, 2}, {1, 4});
  std::vector<int32_t> picks;
  for (int32_t i = 0; i < 2 * 6 * 3; ++i) picks.push_back((i * 5) % 4);
  const Tensor cube_index = Tensor::FromInts(picks, {2, 6, 3});
  cases.push_back(OneInput("gather", {3, 4}, "dim_1_repeated_picks",
                           [index](Inputs x) { return Gather(x[0], 1, index); }));
  cases.push_back(OneInput("gather", {3, 4}, "dim_0_repeated_picks",
                           [rows](Inputs x) { return Gather(x[0], 0, rows); }));
  cases.push_back(OneInput("gather", {3, 4, 5}, "dim_1_larger_index",
                           [cube_index](Inputs x) { return Gather(x[0], 1, cube_index); }));
  cases.push_back(OneInput("gather", {3, 6}, "dim_1_strided",
                           [index](Inputs x) { return Gather(x[0].narrow(1, 1, 4), 1, index); }));
}

void AddSequenceCases(std::vector<OpCase>& cases) {
  for (const auto& [shape, dim] : std::vector<std::pair<Shape, int64_t>>{{{7}, 0},
                                                                         {{1}, 0},
                                                                         {{4, 5}, 0},
                                                                         {{4, 5}, 1},
                                                                         {{2, 3, 4, 5}, 2},
                                                                         {{2, 3, 4}, -1},
                                                                         {{2, 6, 3}, -2}}) {
    const int64_t along = dim;
    cases.push_back(
        OneInput("cumsum", shape, absl::StrCat("dim_", dim < 0 ? "minus" : "", std::abs(dim)),
                 [along](const std::vector<Tensor>& x) { return CumSum(x[0], along); }));
  }
  for (const auto& [shape, offset] : std::vector<std::pair<Shape, int64_t>>{{{2, 3, 5, 4}, 0},
                                                                            {{2, 3, 5, 4}, 7},
                                                                            {{1, 1, 1, 2}, 3},
                                                                            {{2, 2, 4, 8}, 1000},
                                                                            {{6, 6}, 0},
                                                                            {{2, 1, 3, 16}, 2}}) {
    const int64_t position_offset = offset;
    cases.push_back(OneInput(
        "rotary", shape, absl::StrCat("offset_", offset),
        [position_offset](const std::vector<Tensor>& x) { return Rotary(x[0], position_offset); }));
  }
}

std::vector<OpCase> BuildTable() {
  std::vector<OpCase> cases;
  AddMatmulCases(cases);
  AddBinaryCases(cases);
  AddScalarCases(cases);
  AddReductionCases(cases);
  AddActivationCases(cases);
  AddNormalisationCases(cases);
  AddRandomisedCases(cases);
  AddLookupAndLossCases(cases);
  AddShapeCases(cases);
  AddSequenceCases(cases);
  return cases;
}

}  // namespace

const std::vector<OpCase>& AllOpCases() {
  static const std::vector<OpCase>* cases = new std::vector<OpCase>(BuildTable());
  return *cases;
}

Tensor DrawInput(const InputSpec& spec, uint64_t seed) {
  const int64_t count = NumElements(spec.shape);
  std::vector<float> values;
  if (spec.distinct_multiplier > 0) {
    values.resize(count);
    for (int64_t i = 0; i < count; ++i) {
      values[i] = 2.0f * static_cast<float>((i * spec.distinct_multiplier) % count) / count - 1.0f;
    }
  } else {
    Generator generator(seed);
    values = RandomUniform(spec.shape, spec.low, spec.high, generator).ToFloats();
    for (float& value : values) value += value < 0.0f ? -spec.away_from_zero : spec.away_from_zero;
  }
  Tensor t = Tensor::FromFloats(values, spec.shape);
  t.set_requires_grad(spec.requires_grad);
  return t;
}

std::vector<Tensor> DrawInputs(const OpCase& op_case) {
  const uint64_t seed = SeedFromName(op_case.Name());
  std::vector<Tensor> inputs;
  for (size_t i = 0; i < op_case.inputs.size(); ++i) {
    inputs.push_back(DrawInput(op_case.inputs[i], seed + i));
  }
  return inputs;
}

}  // namespace attnlab::testing
