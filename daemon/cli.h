#pragma once

#include <string>
#include <vector>

namespace portsentinel::daemon {

// The whole command line: dispatches to run, check-config, diagnose, version. Returns the
// process exit code (2 for usage errors).
int main_with_args(const std::vector<std::string>& args);

}  // namespace portsentinel::daemon
