#pragma once

#include <deque>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "config/config.h"
#include "daemon/path_groups.h"
#include "daemon/port_watch.h"
#include "exporters/alertmanager.h"
#include "probes/probe_result.h"

namespace portsentinel::daemon {

using exporters::Alert;

// What one observation changed: alerts that start (or keep) firing, alerts that resolved.
struct AlertChanges {
  std::vector<Alert> fired;
  std::vector<Alert> resolved;
};

// Per target: the hysteresis and baselines the alert rules keep. Survives a reload of an
// unchanged target (the scheduler keeps it with the target).
struct TargetAlertState {
  int consecutive_failures = 0;
  std::optional<Alert> failing;          // ProbeFailing, while firing
  std::deque<double> handshakes;         // recent successful handshake latencies (baseline)
  int slow_streak = 0;
  std::string best_version;              // the strongest TLS version seen while healthy
  int best_cipher_rank = -1;
  std::optional<Alert> regression;       // TLSHandshakeRegression, while firing
  std::optional<Alert> expiring;         // TLSCertificateExpiringSoon, while firing
  std::string fingerprint;               // last leaf seen
  std::optional<Alert> changed;          // TLSCertificateChanged, while firing
  double changed_at = 0;
};

// The alert rules (DESIGN.md's names), pure: observations in, alert changes out.
//   ProbeFailing            after failures_before_alert consecutive failures; resolved on the
//                           first success; its `reason` label follows the failure
//   TLSHandshakeRegression  latency over factor x the median of recent healthy handshakes for
//                           kSlowProbes probes in a row, or a weaker TLS version or cipher
//   TLSCertificateExpiringSoon  leaf expires within cert_expiry_warning
//   TLSCertificateChanged   (info) the leaf fingerprint changed; fires for kChangedFor
//   PortHijacked / PortNotListening  from the port watch's transitions (its grace polls)
//   PathCertificateMismatch a path group turned inconsistent
class AlertRules {
 public:
  static constexpr size_t kBaselineWindow = 20;
  static constexpr size_t kBaselineMin = 5;
  static constexpr int kSlowProbes = 3;
  static constexpr double kChangedFor = 3600;

  AlertRules(config::AlertingConfig config, std::string instance);
  void set_config(config::AlertingConfig config) { config_ = std::move(config); }

  AlertChanges on_probe(const config::Target& target, TargetAlertState& state,
                        const probes::ProbeResult& result, double now) const;
  AlertChanges on_port_event(uint16_t port, const PortEvent& event, double now) const;
  AlertChanges on_path_group(const std::string& group, const GroupVerdict& verdict,
                             double now) const;
  // Alerts of a target that goes away: all resolve.
  AlertChanges on_target_removed(TargetAlertState& state) const;

 private:
  Alert make(const std::string& name, const std::string& severity,
             std::map<std::string, std::string> labels, std::string summary, std::string remedy,
             double now) const;
  config::AlertingConfig config_;
  std::string instance_;
};

// A rough strength rank of a cipher by its name: AEAD beats CBC, 256-bit keys beat 128.
int cipher_rank(const std::string& cipher);
// TLS version order: "TLSv1" < "TLSv1.1" < "TLSv1.2" < "TLSv1.3"; -1 when unknown.
int version_rank(const std::string& version);
// The median of the values (the baseline ignores outliers).
double median(std::deque<double> values);

}  // namespace portsentinel::daemon
