#include "daemon/state.h"

namespace portsentinel::daemon {

Transition advance(TargetState& state, const probes::ProbeResult& result) {
  Transition t;
  t.first = !state.last_reason.has_value();
  t.from = state.last_reason.value_or(probes::Reason::kOk);
  t.to = result.reason;
  t.changed = t.first || t.from != t.to;
  state.last_reason = result.reason;
  return t;
}

}  // namespace portsentinel::daemon
