// A long-running program of the lab (controller, agent) started inside a namespace.
#ifndef WEFT_TESTS_LAB_CHILD_PROCESS_H_
#define WEFT_TESTS_LAB_CHILD_PROCESS_H_

#include <sys/types.h>

#include <string>
#include <vector>

namespace weft::lab {

class ChildProcess {
 public:
  // Starts argv[0] with `args` in the netns at `netns_path` ("" for this process's own),
  // output to `log_path`. It
  // dies with the thread that started it (nothing outlives a crashed test).
  ChildProcess(const std::string& netns_path, const std::vector<std::string>& args, const std::string& log_path);
  ~ChildProcess();  // Stop()
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  // SIGTERM, then SIGKILL after 3 s. Returns the exit status (-1 if killed or never ran).
  int Stop();
  // SIGKILL at once (a crash).
  void Kill();
  void Signal(int sig);
  bool running() const { return pid_ > 0; }
  pid_t pid() const { return pid_; }
  // Whether it has exited (reaped here; then running() is false too).
  bool Exited();
  // Waits up to `timeout_ms` for it to exit on its own: its exit status, or -1 (killed
  // by a signal, or still running: then it is left running).
  int Wait(int timeout_ms);
  const std::string& log_path() const { return log_; }

 private:
  pid_t pid_ = -1;
  int exit_status_ = -1;  // once reaped by Exited()
  std::string log_;
};

}  // namespace weft::lab

#endif  // WEFT_TESTS_LAB_CHILD_PROCESS_H_
