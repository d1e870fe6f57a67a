#pragma once

#include <memory>
#include <string>
#include <vector>

#include "tests/support/pki.h"
#include "tests/support/process.h"
#include "tests/support/servers.h"

namespace portsentinel::testing {

// The full path of a program on PATH or in /usr/sbin and /sbin (nginx lives there), or "".
std::string find_program(const std::string& name);

// A real nginx from Debian, started in a temporary prefix with the given `http { }` server
// blocks (never the system's config), in the foreground. Stopped on destruction.
class Nginx {
 public:
  // Throws std::runtime_error with nginx's error log when it does not come up, i.e. when
  // every port in `ports` does not accept connections within a few seconds.
  Nginx(const TempDir& dir, const std::string& servers, const std::vector<uint16_t>& ports);
  ~Nginx();
  Nginx(const Nginx&) = delete;
  Nginx& operator=(const Nginx&) = delete;

  static bool available() { return !find_program("nginx").empty(); }
  std::string error_log() const;

 private:
  std::string prefix_;
  std::unique_ptr<Process> process_;
};

}  // namespace portsentinel::testing
