// The daemons' shutdown signals, taken synchronously: SIGTERM and SIGINT (and any
// `extra`, e.g. SIGHUP for a reload) blocked in the calling thread before it starts
// others, which inherit the mask; sigwait() on the returned set then receives them.
// SIGPIPE is ignored (a peer that hung up is an error return, not a death).
#ifndef WEFT_LIB_SYS_STOP_SIGNALS_H_
#define WEFT_LIB_SYS_STOP_SIGNALS_H_

#include <pthread.h>
#include <signal.h>

#include <initializer_list>

namespace weft::sys {

inline sigset_t BlockStopSignals(std::initializer_list<int> extra = {}) {
  signal(SIGPIPE, SIG_IGN);
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  for (int s : extra) sigaddset(&set, s);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  return set;
}

}  // namespace weft::sys

#endif  // WEFT_LIB_SYS_STOP_SIGNALS_H_
