#include "tools/cli/line_answering.h"

#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "framework/core/error.h"

namespace attnlab::cli {
namespace {

void StripCarriageReturn(std::string& line) {
  if (!line.empty() && line.back() == '\r') line.pop_back();
}

void PrintLine(const std::string& line) {
  std::fwrite(line.data(), 1, line.size(), stdout);
  std::fputc('\n', stdout);
}

// Lines of a file descriptor as they arrive: each call waits for input and returns the
// complete lines it has then (a last line without '\n' once the input ends).
class ArrivingLines {
 public:
  explicit ArrivingLines(int descriptor) : descriptor_(descriptor) {}

  // Empty at the end of the input.
  absl::StatusOr<std::vector<std::string>> Next() {
    std::vector<std::string> lines;
    while (lines.empty() && !ended_) {
      char chunk[1 << 16];
      const ssize_t got = ::read(descriptor_, chunk, sizeof chunk);
      if (got < 0 && errno == EINTR) continue;
      if (got < 0) {
        return absl::UnavailableError(absl::StrCat("stdin: cannot read: ", std::strerror(errno)));
      }
      if (got == 0) {
        ended_ = true;
        if (!pending_.empty()) lines.push_back(std::move(pending_));
        pending_.clear();
        break;
      }
      pending_.append(chunk, static_cast<size_t>(got));
      size_t start = 0;
      for (size_t end; (end = pending_.find('\n', start)) != std::string::npos; start = end + 1) {
        lines.push_back(pending_.substr(start, end - start));
      }
      pending_.erase(0, start);
    }
    for (std::string& line : lines) StripCarriageReturn(line);
    return lines;
  }

 private:
  int descriptor_;
  std::string pending_;  // the start of a line whose '\n' has not arrived yet
  bool ended_ = false;
};

}  // namespace

absl::StatusOr<std::vector<std::string>> ReadInputLines(const std::string& path) {
  // A directory opens as a stream with no lines: that would answer nothing, silently.
  if (std::filesystem::is_directory(path)) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": is a directory"));
  }
  std::ifstream input(path);
  if (!input) return absl::NotFoundError(absl::StrCat(path, ": cannot open"));
  std::vector<std::string> lines;
  for (std::string line; std::getline(input, line);) {
    StripCarriageReturn(line);
    lines.push_back(std::move(line));
  }
  return lines;
}

absl::Status AnswerFileLines(const std::string& path, const std::vector<std::string>& lines,
                             const LineAnswerer& answerer) {
  for (size_t i = 0; i < lines.size(); ++i) {
    const absl::Status status = answerer.check(lines[i]);
    if (!status.ok()) {
      return absl::Status(status.code(), absl::StrCat(path, ":", i + 1, ": ", status.message()));
    }
  }
  const std::vector<std::string> answers = answerer.answer(lines);
  ATTNLAB_CHECK(answers.size() == lines.size(), answers.size(), " answers to ", lines.size(),
                " lines");
  for (const std::string& answer : answers) PrintLine(answer);
  return absl::OkStatus();
}

absl::Status AnswerStandardInput(const std::string& command, const LineAnswerer& answerer) {
  ArrivingLines input(STDIN_FILENO);
  int64_t lines_read = 0, bad_lines = 0;
  for (;;) {
    ASSIGN_OR_RETURN(const std::vector<std::string> lines, input.Next());
    if (lines.empty()) break;
    // The good lines are answered as one batch; each bad one keeps its place with an error.
    std::vector<std::string> good, errors(lines.size());
    for (size_t i = 0; i < lines.size(); ++i) {
      const absl::Status status = answerer.check(lines[i]);
      if (status.ok()) {
        good.push_back(lines[i]);
      } else {
        errors[i] = absl::StrCat("stdin:", lines_read + static_cast<int64_t>(i) + 1, ": ",
                                 status.message());
      }
    }
    const std::vector<std::string> answers = good.empty() ? good : answerer.answer(good);
    ATTNLAB_CHECK(answers.size() == good.size(), answers.size(), " answers to ", good.size(),
                  " lines");
    size_t next_answer = 0;
    for (size_t i = 0; i < lines.size(); ++i) {
      if (errors[i].empty()) {
        PrintLine(answers[next_answer++]);
        continue;
      }
      ++bad_lines;
      std::fflush(stdout);  // so that on a terminal the error shows where it belongs
      std::fprintf(stderr, "attnlab %s: %s\n", command.c_str(), errors[i].c_str());
      PrintLine(answerer.error_answer(errors[i]));
    }
    std::fflush(stdout);
    lines_read += static_cast<int64_t>(lines.size());
  }
  if (bad_lines > 0) {
    return absl::InvalidArgumentError(absl::StrCat(bad_lines, " of ", lines_read,
                                                   " input lines were not answered (see the "
                                                   "stdin:LINE errors above)"));
  }
  return absl::OkStatus();
}

}  // namespace attnlab::cli
