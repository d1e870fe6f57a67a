#include "daemon/alert_rules.h"

#include <algorithm>
#include <cstdio>

namespace portsentinel::daemon {
namespace {

std::string seconds_text(double s) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.0f ms", s * 1000);
  return buf;
}

}  // namespace

int cipher_rank(const std::string& c) {
  const bool aead = c.find("GCM") != std::string::npos || c.find("CHACHA20") != std::string::npos ||
                    c.find("CCM") != std::string::npos;
  // The key size, not the hash's ("TLS_AES_128_GCM_SHA256" is a 128-bit cipher).
  const bool strong = c.find("AES_256") != std::string::npos ||
                      c.find("AES256") != std::string::npos ||
                      c.find("CHACHA20") != std::string::npos;
  return (aead ? 2 : 0) + (strong ? 1 : 0);
}

int version_rank(const std::string& v) {
  if (v == "TLSv1.3") {
    return 4;
  }
  if (v == "TLSv1.2") {
    return 3;
  }
  if (v == "TLSv1.1") {
    return 2;
  }
  if (v == "TLSv1") {
    return 1;
  }
  return -1;
}

double median(std::deque<double> values) {
  if (values.empty()) {
    return 0;
  }
  const size_t mid = values.size() / 2;
  std::nth_element(values.begin(), values.begin() + static_cast<long>(mid), values.end());
  return values[mid];
}

AlertRules::AlertRules(config::AlertingConfig config, std::string instance)
    : config_(std::move(config)), instance_(std::move(instance)) {}

Alert AlertRules::make(const std::string& name, const std::string& severity,
                       std::map<std::string, std::string> labels, std::string summary,
                       std::string remedy, double now) const {
  Alert a;
  a.labels = std::move(labels);
  a.labels["alertname"] = name;
  a.labels["severity"] = severity;
  a.labels["instance"] = instance_;
  a.annotations["summary"] = std::move(summary);
  a.annotations["remedy"] = std::move(remedy);
  a.starts_at = now;
  return a;
}

AlertChanges AlertRules::on_probe(const config::Target& t, TargetAlertState& s,
                                  const probes::ProbeResult& r, double now) const {
  AlertChanges out;
  std::map<std::string, std::string> base = t.labels;
  base["target"] = t.name;

  // ProbeFailing, with hysteresis on the way in and none on the way out.
  if (r.ok()) {
    s.consecutive_failures = 0;
    if (s.failing) {
      out.resolved.push_back(*s.failing);
      s.failing.reset();
    }
  } else {
    ++s.consecutive_failures;
    const std::string reason(probes::reason_name(r.reason));
    if (s.failing && s.failing->labels.at("reason") != reason) {
      out.resolved.push_back(*s.failing);  // a new reason is a new alert
      s.failing.reset();
    }
    if (!s.failing && s.consecutive_failures >= config_.failures_before_alert) {
      auto labels = base;
      labels["reason"] = reason;
      s.failing = make("ProbeFailing", "critical", std::move(labels),
                       t.name + " (" + config::format_host_port(t.address) + ") fails: " + reason +
                           (r.detail.empty() ? "" : " — " + r.detail),
                       probes::reason_remedy_for(r.reason, t.address.host, t.address.port,
                                                 t.server_name),
                       now);
      out.fired.push_back(*s.failing);
    }
  }

  if (r.tls && r.tls->leaf) {
    const auto& leaf = *r.tls->leaf;
    // TLSCertificateChanged: an info alert for a while after the leaf changed.
    if (!s.fingerprint.empty() && s.fingerprint != leaf.fingerprint_sha256) {
      if (s.changed) {
        out.resolved.push_back(*s.changed);
      }
      auto labels = base;
      labels["fingerprint_sha256"] = leaf.fingerprint_sha256;
      s.changed = make("TLSCertificateChanged", "info", std::move(labels),
                       t.name + " now serves " + leaf.subject + " issued by " + leaf.issuer +
                           " (sha256 " + leaf.fingerprint_sha256.substr(0, 16) + "…, was " +
                           s.fingerprint.substr(0, 16) + "…)",
                       "If no certificate was deployed, find out who changed it: compare with "
                       "`openssl s_client -connect " +
                           config::format_host_port(t.address) + " -servername " + t.server_name +
                           " | openssl x509 -noout -fingerprint -sha256`.",
                       now);
      s.changed_at = now;
      out.fired.push_back(*s.changed);
    }
    s.fingerprint = leaf.fingerprint_sha256;
    // TLSCertificateExpiringSoon.
    const double left = static_cast<double>(leaf.not_after) - now;
    const double warn = std::chrono::duration<double>(config_.cert_expiry_warning).count();
    if (left < warn && !s.expiring) {
      auto labels = base;
      s.expiring = make("TLSCertificateExpiringSoon", "warning", std::move(labels),
                        t.name + " serves a certificate that expires in " +
                            std::to_string(static_cast<long>(left / 86400)) + " days (" +
                            leaf.subject + ")",
                        "Renew the certificate and reload the server; check with `openssl "
                        "s_client -connect " + config::format_host_port(t.address) +
                            " | openssl x509 -noout -enddate`.",
                        now);
      out.fired.push_back(*s.expiring);
    } else if (left >= warn && s.expiring) {
      out.resolved.push_back(*s.expiring);
      s.expiring.reset();
    }
  }
  if (s.changed && now - s.changed_at >= kChangedFor) {
    out.resolved.push_back(*s.changed);
    s.changed.reset();
  }

  // TLSHandshakeRegression: latency against a median of recent healthy handshakes, and the
  // negotiated version and cipher against the best seen.
  if (r.ok() && r.tls) {
    const double latency = r.phases.tls;
    const double baseline = s.handshakes.size() >= kBaselineMin ? median(s.handshakes) : 0;
    const bool slow = baseline > 0 && latency > config_.handshake_regression_factor * baseline;
    s.slow_streak = slow ? s.slow_streak + 1 : 0;
    if (!slow) {
      // Slow samples stay out of the baseline, so it does not drift up to the regression.
      s.handshakes.push_back(latency);
      if (s.handshakes.size() > kBaselineWindow) {
        s.handshakes.pop_front();
      }
    }
    const int version = version_rank(r.tls->version);
    const int cipher = cipher_rank(r.tls->cipher);
    const bool weaker_version = !s.best_version.empty() && version < version_rank(s.best_version);
    const bool weaker_cipher = s.best_cipher_rank >= 0 && cipher < s.best_cipher_rank;
    if (version > version_rank(s.best_version)) {
      s.best_version = r.tls->version;
    }
    s.best_cipher_rank = std::max(s.best_cipher_rank, cipher);
    std::string why;
    if (s.slow_streak >= kSlowProbes) {
      why = "handshake took " + seconds_text(latency) + ", over " +
            std::to_string(config_.handshake_regression_factor).substr(0, 3) +
            "x its baseline of " + seconds_text(baseline) + " for " +
            std::to_string(s.slow_streak) + " probes";
    } else if (weaker_version) {
      why = "negotiated " + r.tls->version + " where it had " + s.best_version;
    } else if (weaker_cipher) {
      why = "negotiated the weaker cipher " + r.tls->cipher;
    }
    if (!why.empty() && !s.regression) {
      auto labels = base;
      s.regression = make("TLSHandshakeRegression", "warning", std::move(labels),
                          t.name + ": " + why,
                          "Check the server's load and TLS settings (ssl_protocols, ssl_ciphers) "
                          "and what changed in front of it; `openssl s_client -connect " +
                              config::format_host_port(t.address) + "` shows the handshake.",
                          now);
      out.fired.push_back(*s.regression);
    } else if (why.empty() && s.regression && s.slow_streak == 0) {
      out.resolved.push_back(*s.regression);
      s.regression.reset();
    }
  }
  return out;
}

AlertChanges AlertRules::on_target_removed(TargetAlertState& s) const {
  AlertChanges out;
  for (auto* a : {&s.failing, &s.regression, &s.expiring, &s.changed}) {
    if (*a) {
      out.resolved.push_back(**a);
      a->reset();
    }
  }
  return out;
}

AlertChanges AlertRules::on_port_event(uint16_t port, const PortEvent& e, double now) const {
  AlertChanges out;
  const std::string p = std::to_string(port);
  auto hijacked = make("PortHijacked", "critical", {{"port", p}},
                       "Port " + p + " is owned by an unexpected process: " + e.evidence,
                       "Another program listens on port " + p + ": stop or move it (`ss -tlnp "
                       "'sport = :" + p + "'` shows it). If it is legitimate, add it to "
                       "ports.watch[].expected_owners.",
                       now);
  auto silent = make("PortNotListening", "critical", {{"port", p}},
                     "Nothing listens on port " + p + ": " + e.evidence,
                     "Start the server that owns port " + p + " and check its log (`systemctl "
                     "status` of its unit, `ss -tlnp 'sport = :" + p + "'`).",
                     now);
  switch (e.kind) {
    case PortEventKind::kHijacked:
      out.fired.push_back(std::move(hijacked));
      break;
    case PortEventKind::kHijackCleared:
      out.resolved.push_back(std::move(hijacked));
      break;
    case PortEventKind::kNotListening:
      out.fired.push_back(std::move(silent));
      break;
    case PortEventKind::kListeningAgain:
      out.resolved.push_back(std::move(silent));
      break;
    case PortEventKind::kOwnerChanged:
      break;  // in the metrics and the log; a hijack is its own alert
  }
  return out;
}

AlertChanges AlertRules::on_path_group(const std::string& group, const GroupVerdict& v,
                                       double now) const {
  AlertChanges out;
  if (!v.known) {
    return out;
  }
  auto alert = make("PathCertificateMismatch", "warning", {{"group", group}},
                    "Path group " + group + " is inconsistent: " + v.explanation,
                    "A path (CDN edge, load balancer, proxy, container port) serves another "
                    "certificate or no TLS: fix the member named in the summary, then compare "
                    "fingerprints with `openssl s_client -connect PATH | openssl x509 -noout "
                    "-fingerprint -sha256`.",
                    now);
  (v.consistent ? out.resolved : out.fired).push_back(std::move(alert));
  return out;
}

}  // namespace portsentinel::daemon
