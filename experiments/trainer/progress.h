// Training progress on the terminal: a one-line bar redrawn in place when stderr is a
// terminal (step, loss, tokens/s, learning rate, ETA), plain log lines otherwise.
#pragma once

#include <cstdint>
#include <string>

namespace attnlab::experiments {

class ProgressDisplay {
 public:
  explicit ProgressDisplay(int64_t total_steps);
  // Called after every step; draws at most a few times per second on a terminal.
  void Update(int64_t step, double loss, double tokens_per_second, double learning_rate,
              double elapsed_seconds, bool force_line);
  // Prints a message on its own line (keeping the bar below it).
  void Message(const std::string& text);
  void Finish();

 private:
  int64_t total_steps_;
  bool terminal_;
  double last_draw_ = -1.0;
  bool bar_shown_ = false;
};

std::string FormatDuration(double seconds);

}  // namespace attnlab::experiments
