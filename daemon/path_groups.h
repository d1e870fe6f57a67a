#pragma once

#include <string>
#include <vector>

#include "probes/reason.h"

namespace portsentinel::daemon {

// What a path group needs to know of one member's last probe.
struct GroupMember {
  std::string name;
  bool probed = false;  // false until the member's first probe ended
  probes::Reason reason = probes::Reason::kOk;
  std::string fingerprint;  // leaf sha256; empty when no certificate was seen
  std::string subject;
  std::string issuer;
};

struct GroupVerdict {
  bool known = false;       // every member has been probed at least once
  bool consistent = false;  // every member succeeded and serves the same leaf certificate
  // Which members differ and how, e.g. "cdn serves CN=cdn edge (sha256 1a2b3c4d…, issuer
  // CN=x) where origin serves CN=shop (sha256 …)"; for a consistent group, the shared leaf.
  std::string explanation;
  bool operator==(const GroupVerdict&) const = default;
};

// The pure verdict over a path group (the same service reached through a CDN edge, a load
// balancer, the origin, a container port). The reference is the certificate most members
// serve (ties: the earliest member in config order); each other member is explained.
GroupVerdict evaluate_path_group(const std::vector<GroupMember>& members);

}  // namespace portsentinel::daemon
