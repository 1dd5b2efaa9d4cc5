// Stop requests: how a long computation learns that the user asked it to stop (Ctrl-C,
// SIGTERM, a closed terminal), without running any code inside a signal handler.
//
// A signal delivered to a thread that is inside oneDNN's JIT code can find its stack
// pointer aimed at the heap, and the kernel then writes the signal frame there. So the
// program blocks SIGINT, SIGTERM and SIGHUP in its main thread before any other thread
// exists (every thread inherits the mask) and takes them on one thread of its own with
// sigwait. That thread only sets the stop request, which loops read between units of
// work (micro-batches, evaluation and decoding batches).
//
//   int main() { attnlab::StartSignalThread(); ... }
//   { StopRequestScope listening;  // signals now request a stop instead of killing
//     while (... && !StopRequested()) ...; }
//
// Outside every StopRequestScope a signal does what it always did: it terminates the
// process (default action, so the parent sees "killed by SIGINT"). Inside one, the first
// signal requests a stop; later ones, until the process exits, are reported once and
// otherwise ignored, so that they cannot cut short the checkpoint being saved (SIGKILL
// still stops at once; files are written atomically, so the previous checkpoint
// survives it).
#pragma once

#include <signal.h>

namespace attnlab {

// Blocks SIGINT, SIGTERM and SIGHUP in the calling thread, ignores SIGXFSZ (a write over
// the file-size limit then fails with EFBIG, an error we report, instead of killing the
// process), and starts the thread that takes the blocked signals. Call it first in
// main(), before anything starts a thread (OpenMP, oneDNN); call it once.
void StartSignalThread();

// The signals StartSignalThread blocks. A child process must be started with them
// unblocked and SIGXFSZ at its default (posix_spawnattr_setsigmask / setsigdefault).
sigset_t StopSignals();

// True once a stop was requested inside a StopRequestScope.
bool StopRequested();
// The signal that requested the stop (SIGINT, SIGTERM, SIGHUP), 0 if none.
int StopSignal();
// Requests a stop as `signal` would (the signal thread calls it; so do tests).
void RequestStop(int signal);

// While at least one scope lives, the signals request a stop instead of terminating the
// process. Opening the first scope clears an earlier request.
class StopRequestScope {
 public:
  StopRequestScope();
  ~StopRequestScope();
  StopRequestScope(const StopRequestScope&) = delete;
  StopRequestScope& operator=(const StopRequestScope&) = delete;
};

}  // namespace attnlab
