#pragma once

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "probes/probe_result.h"

namespace portsentinel::daemon {

// `portsentinel diagnose HOST[:PORT] ...`: one HTTPS probe, reported as a checklist.
// Exit 0 healthy, 1 problems found, 2 usage error.
int run_diagnose(const std::vector<std::string>& args);

// Whether the addresses of one name answer alike (same reason, same leaf). nullopt when they
// do; else the evidence ("ADDR: reason sha256 …; ADDR: …").
std::optional<std::string> addresses_disagree(
    const std::vector<std::pair<std::string, probes::ProbeResult>>& per_address);

}  // namespace portsentinel::daemon
