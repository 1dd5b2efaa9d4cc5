// How `attnlab decode` and `attnlab score` answer their input: one output line per input
// line, in order.
//
// From --input FILE, every line is checked before any is answered: a bad line is one error
// naming FILE:LINE, and nothing is printed. From standard input, lines are answered as
// they arrive, so the command can serve as a pipe (the lines that one read() delivers are
// answered together, as a batch: a file piped in is still batched) and stdout is flushed
// after each batch. A bad line there does not stop the command: its error goes to stderr
// ("attnlab COMMAND: stdin:LINE: ..."), a stand-in answer keeps stdout at one line per
// input line, and at the end of the input the command fails with the count of bad lines.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace attnlab::cli {

struct LineAnswerer {
  // OK if the line can be answered; otherwise what is wrong with it (not where).
  std::function<absl::Status(const std::string& line)> check;
  // The answers to checked lines, one output line each (without '\n'), in their order.
  std::function<std::vector<std::string>(const std::vector<std::string>& lines)> answer;
  // The output line that stands in for the answer to a bad line of standard input, given
  // its error message (with its location).
  std::function<std::string(const std::string& error)> error_answer;
};

// The lines of `path`, each without its '\n' and a '\r' before it. A directory (which
// would read as no lines) or a file that cannot be opened is an error.
absl::StatusOr<std::vector<std::string>> ReadInputLines(const std::string& path);

// Checks every line of `lines` (read from `path`), then prints every answer.
absl::Status AnswerFileLines(const std::string& path, const std::vector<std::string>& lines,
                             const LineAnswerer& answerer);

// Answers standard input as it arrives, until its end. `command` names the command in
// the error lines of bad input lines.
absl::Status AnswerStandardInput(const std::string& command, const LineAnswerer& answerer);

}  // namespace attnlab::cli
