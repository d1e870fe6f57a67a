#pragma once

#include <optional>

#include "probes/probe_result.h"

namespace portsentinel::daemon {

// What the daemon remembers of one target between probes.
struct TargetState {
  std::optional<probes::Reason> last_reason;  // none before the first probe
};

// What one result changed; the scheduler logs a line only when `changed`.
struct Transition {
  bool changed = false;
  bool first = false;
  probes::Reason from = probes::Reason::kOk;
  probes::Reason to = probes::Reason::kOk;
};

// The pure step from (state, result) to the next state.
Transition advance(TargetState& state, const probes::ProbeResult& result);

}  // namespace portsentinel::daemon
