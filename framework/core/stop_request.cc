#include "framework/core/stop_request.h"

#include <pthread.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstring>
#include <thread>

namespace attnlab {
namespace {

std::atomic<int> stop_signal{0};
std::atomic<int> open_scopes{0};

// The default action of `signal` for the whole process (termination), as if it had never
// been blocked: reset the disposition, unblock it in this thread only and send it here.
[[noreturn]] void TerminateAsTheSignalWould(int signal) {
  ::signal(signal, SIG_DFL);
  sigset_t only;
  sigemptyset(&only);
  sigaddset(&only, signal);
  pthread_sigmask(SIG_UNBLOCK, &only, nullptr);
  pthread_kill(pthread_self(), signal);
  _exit(128 + signal);  // not reached: the signal's default action ends the process
}

void TakeSignals() {
  const sigset_t signals = StopSignals();
  bool told_already_stopping = false;
  for (;;) {
    int signal = 0;
    if (sigwait(&signals, &signal) != 0) continue;
    // Once stopping, the process is on its way out (saving, then exiting 128 + the
    // first signal): later signals must not cut that short, in a scope or after it.
    if (stop_signal.load() == 0) {
      if (open_scopes.load() == 0) TerminateAsTheSignalWould(signal);
      RequestStop(signal);
    } else if (!told_already_stopping) {
      told_already_stopping = true;
      std::fprintf(stderr,
                   "\nattnlab: already stopping (%s again): saving first; SIGKILL stops at once "
                   "and keeps the previous checkpoint\n",
                   strsignal(signal));
    }
  }
}

}  // namespace

sigset_t StopSignals() {
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  // A closed terminal or ssh session: save the run like Ctrl-C rather than lose it.
  sigaddset(&signals, SIGHUP);
  return signals;
}

void StartSignalThread() {
  ::signal(SIGXFSZ, SIG_IGN);
  const sigset_t signals = StopSignals();
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  std::thread(TakeSignals).detach();
}

bool StopRequested() { return stop_signal.load() != 0; }

int StopSignal() { return stop_signal.load(); }

void RequestStop(int signal) {
  int none = 0;
  stop_signal.compare_exchange_strong(none, signal);
}

StopRequestScope::StopRequestScope() {
  if (open_scopes.fetch_add(1) == 0) stop_signal.store(0);
}

StopRequestScope::~StopRequestScope() { open_scopes.fetch_sub(1); }

}  // namespace attnlab
