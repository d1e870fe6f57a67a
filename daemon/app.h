#pragma once

#include <string>
#include <vector>

namespace portsentinel::daemon {

struct RunOptions {
  std::string config_file;      // empty: the embedded default
  std::string listen_address;   // overrides web.listen_address when set
  std::string state_dir = "/var/lib/portsentinel";
};

// `portsentinel run`: the daemon in the foreground until SIGTERM/SIGINT, then exits the process
// with 0. Returns only on a start-up error, with the exit code.
int run_daemon(const RunOptions& options);

// The embedded default config (DESIGN.md): probe localhost:443 as TLS and localhost:80 as
// HTTP when something listens there. `listening` says which of those ports have a listener.
std::string default_config_yaml(bool listening_443, bool listening_80);

}  // namespace portsentinel::daemon
