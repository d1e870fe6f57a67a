#pragma once

#include <sys/types.h>

#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace portsentinel::testing {

// The built portsentinel binary (set by CMake).
std::string portsentinel_binary();

// A child process with stderr and stdout captured to a file. Killed (SIGKILL) on destruction
// if still running.
class Process {
 public:
  // `run_as_uid` >= 0: the child drops to that uid and gid (needs root) before exec.
  // `env`: extra "NAME=value" entries on top of this process's environment.
  Process(const std::vector<std::string>& argv, const std::string& log_file,
          int run_as_uid = -1, const std::vector<std::string>& env = {});
  ~Process();
  Process(const Process&) = delete;
  Process& operator=(const Process&) = delete;

  pid_t pid() const { return pid_; }
  std::string log() const;
  // Sends `signo` and waits up to `limit`; returns the exit code, or nullopt if it did not exit
  // (or died from a signal).
  std::optional<int> stop(int signo, std::chrono::milliseconds limit);
  bool running();

 private:
  pid_t pid_ = -1;
  std::string log_file_;
  bool reaped_ = false;
};

// Runs a command to completion and returns its exit code; output goes to `output`.
int run_command(const std::vector<std::string>& argv, std::string* output = nullptr,
                const std::string& stdin_text = "");

// Polls `condition` every 20 ms until it holds or `limit` passes. Returns whether it held.
bool eventually(const std::function<bool()>& condition,
                std::chrono::milliseconds limit = std::chrono::seconds(10));

// A blocking HTTP/1.0 request to 127.0.0.1:port; returns status and body, or nullopt.
struct HttpReply {
  int status = 0;
  std::string body;
};
std::optional<HttpReply> http_request(uint16_t port, const std::string& method,
                                      const std::string& path);

// The port from the daemon's "listen=http://127.0.0.1:PORT/metrics" start-up line, once logged.
std::optional<uint16_t> listen_port_from_log(const std::string& log);

// Whether a program is on PATH.
bool have_program(const std::string& name);

}  // namespace portsentinel::testing
