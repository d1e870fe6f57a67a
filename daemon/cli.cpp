#include "daemon/cli.h"

#include <openssl/opensslv.h>

#include <cstdio>
#include <iostream>
#include <optional>

#include "config/config.h"
#include "daemon/app.h"
#include "daemon/diagnose.h"
#include "daemon/scheduler.h"
#include "daemon/version.h"
#include "probes/tls_context.h"

namespace portsentinel::daemon {
namespace {

constexpr const char* kUsage =
    "usage: portsentinel <command> [options]\n"
    "\n"
    "commands:\n"
    "  run [--config FILE] [--web.listen-address ADDR] [--state-dir DIR]\n"
    "        run the daemon in the foreground (default: the embedded config)\n"
    "  check-config FILE\n"
    "        validate a config file; prints FILE:LINE:COL: message on errors\n"
    "  diagnose HOST[:PORT] [--json] [--timeout DUR] [--ca-file FILE] [--server-name NAME]\n"
    "           [--http-port PORT] [--nginx-config FILE] [--apache-config FILE]\n"
    "        one-shot troubleshooting report (exit 0 healthy, 1 problems, 2 usage)\n"
    "  version\n"
    "        print the version\n";

int usage_error(const std::string& message) {
  std::cerr << "portsentinel: " << message << "\n\n" << kUsage;
  return 2;
}

// Parses "--name VALUE" and "--name=VALUE" from args[i]; advances i past the value.
std::optional<std::string> flag_value(const std::vector<std::string>& args, size_t& i,
                                      const std::string& name, std::string* error) {
  const std::string& arg = args[i];
  if (arg == name) {
    if (i + 1 >= args.size()) {
      *error = name + " needs a value";
      return std::nullopt;
    }
    return args[++i];
  }
  if (arg.rfind(name + "=", 0) == 0) {
    return arg.substr(name.size() + 1);
  }
  return std::nullopt;
}

int cmd_run(const std::vector<std::string>& args) {
  RunOptions options;
  for (size_t i = 1; i < args.size(); ++i) {
    std::string error;
    if (auto v = flag_value(args, i, "--config", &error)) {
      options.config_file = *v;
    } else if (auto v2 = flag_value(args, i, "--web.listen-address", &error)) {
      options.listen_address = *v2;
    } else if (auto v3 = flag_value(args, i, "--state-dir", &error)) {
      options.state_dir = *v3;
    } else {
      return usage_error(error.empty() ? "run: unknown argument \"" + args[i] + "\"" : error);
    }
  }
  return run_daemon(options);
}

int cmd_check_config(const std::vector<std::string>& args) {
  if (args.size() != 2) {
    return usage_error("check-config takes exactly one FILE");
  }
  try {
    const config::Config cfg = config::load_config(args[1]);
    // Build what the daemon builds at start, so a broken CA file fails here too.
    probes::TlsContextCache contexts;
    try {
      prepare_tls_contexts(cfg, contexts);
    } catch (const std::exception& e) {
      std::cerr << args[1] << ": " << e.what() << "\n";
      return 1;
    }
    std::cout << args[1] << ": OK (" << cfg.targets.size() << " targets, "
              << cfg.ports.watch.size() << " watched ports, " << cfg.path_groups.size()
              << " path groups)\n";
    return 0;
  } catch (const config::ConfigError& e) {
    std::cerr << e.what() << "\n";
    return 1;
  }
}

}  // namespace

int main_with_args(const std::vector<std::string>& args) {
  if (args.empty()) {
    return usage_error("missing command");
  }
  const std::string& cmd = args[0];
  if (cmd == "run") {
    return cmd_run(args);
  }
  if (cmd == "check-config") {
    return cmd_check_config(args);
  }
  if (cmd == "diagnose") {
    return run_diagnose(args);
  }
  if (cmd == "version" || cmd == "--version") {
    std::cout << "portsentinel " << kVersion << " (revision " << kRevision << ", "
              << OPENSSL_VERSION_TEXT << ")\n";
    return 0;
  }
  if (cmd == "help" || cmd == "--help" || cmd == "-h") {
    std::cout << kUsage;
    return 0;
  }
  return usage_error("unknown command \"" + cmd + "\"");
}

}  // namespace portsentinel::daemon
