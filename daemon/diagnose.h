#pragma once

#include <string>
#include <vector>

namespace portsentinel::daemon {

// `portsentinel diagnose HOST[:PORT] ...`: one HTTPS probe, reported as a checklist.
// Exit 0 healthy, 1 problems found, 2 usage error.
int run_diagnose(const std::vector<std::string>& args);

}  // namespace portsentinel::daemon
