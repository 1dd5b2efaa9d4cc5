#include "experiments/trainer/progress.h"

#include <unistd.h>

#include <cstdio>

#include "absl/strings/str_format.h"

namespace attnlab::experiments {

std::string FormatDuration(double seconds) {
  const int64_t total = static_cast<int64_t>(seconds + 0.5);
  if (total >= 3600) return absl::StrFormat("%dh%02dm", total / 3600, (total % 3600) / 60);
  if (total >= 60) return absl::StrFormat("%dm%02ds", total / 60, total % 60);
  return absl::StrFormat("%ds", total);
}

ProgressDisplay::ProgressDisplay(int64_t total_steps)
    : total_steps_(total_steps), terminal_(isatty(fileno(stderr)) != 0) {}

void ProgressDisplay::Update(int64_t step, double loss, double tokens_per_second,
                             double learning_rate, double elapsed_seconds, bool force_line) {
  const double eta = step > 0 && total_steps_ > 0 ? elapsed_seconds / static_cast<double>(step) *
                                                        static_cast<double>(total_steps_ - step)
                                                  : 0.0;
  const std::string stats = absl::StrFormat("loss %.4f  %.0f tok/s  lr %.2e  ETA %s", loss,
                                            tokens_per_second, learning_rate, FormatDuration(eta));
  if (!terminal_) {
    if (force_line)
      std::fprintf(stderr, "step %lld/%lld  %s\n", static_cast<long long>(step),
                   static_cast<long long>(total_steps_), stats.c_str());
    return;
  }
  if (!force_line && elapsed_seconds - last_draw_ < 0.2) return;
  last_draw_ = elapsed_seconds;
  constexpr int kWidth = 24;
  const int filled = total_steps_ > 0 ? static_cast<int>(kWidth * step / total_steps_) : 0;
  std::string bar(filled, '=');
  if (filled < kWidth) bar += '>' + std::string(kWidth - filled - 1, ' ');
  std::fprintf(stderr, "\r\033[Kstep %lld/%lld [%s] %s", static_cast<long long>(step),
               static_cast<long long>(total_steps_), bar.c_str(), stats.c_str());
  std::fflush(stderr);
  bar_shown_ = true;
}

void ProgressDisplay::Message(const std::string& text) {
  if (terminal_ && bar_shown_) std::fprintf(stderr, "\r\033[K");
  std::fprintf(stderr, "%s\n", text.c_str());
  bar_shown_ = false;
}

void ProgressDisplay::Finish() {
  if (terminal_ && bar_shown_) std::fprintf(stderr, "\n");
  bar_shown_ = false;
}

}  // namespace attnlab::experiments
