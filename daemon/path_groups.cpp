#include "daemon/path_groups.h"

#include <map>

namespace portsentinel::daemon {
namespace {

std::string describe(const GroupMember& m) {
  return m.subject + " (sha256 " + m.fingerprint.substr(0, 16) + "…, issuer " + m.issuer + ")";
}

}  // namespace

GroupVerdict evaluate_path_group(const std::vector<GroupMember>& members) {
  GroupVerdict v;
  for (const auto& m : members) {
    if (!m.probed) {
      return v;  // not known yet
    }
  }
  v.known = true;
  // The reference certificate: the one most members serve.
  std::map<std::string, int> votes;
  for (const auto& m : members) {
    if (!m.fingerprint.empty()) {
      ++votes[m.fingerprint];
    }
  }
  const GroupMember* reference = nullptr;
  for (const auto& m : members) {
    if (!m.fingerprint.empty() &&
        (reference == nullptr || votes[m.fingerprint] > votes[reference->fingerprint])) {
      reference = &m;
    }
  }
  std::string differences;
  auto add = [&](const std::string& text) {
    differences += (differences.empty() ? "" : "; ") + text;
  };
  for (const auto& m : members) {
    if (m.reason != probes::Reason::kOk) {
      std::string text = m.name + " fails with " + std::string(probes::reason_name(m.reason));
      if (!m.fingerprint.empty() && reference != nullptr &&
          m.fingerprint != reference->fingerprint) {
        text += " and serves " + describe(m);
      }
      add(text);
    } else if (m.fingerprint.empty()) {
      add(m.name + " serves no TLS");
    } else if (reference != nullptr && m.fingerprint != reference->fingerprint) {
      add(m.name + " serves " + describe(m) + " where " + reference->name + " serves " +
          describe(*reference));
    }
  }
  v.consistent = differences.empty() && reference != nullptr;
  v.explanation = v.consistent ? "all " + std::to_string(members.size()) + " members serve " +
                                     describe(*reference)
                               : differences;
  return v;
}

}  // namespace portsentinel::daemon
