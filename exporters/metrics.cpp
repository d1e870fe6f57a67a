#include "exporters/metrics.h"

#include <openssl/opensslv.h>

namespace portsentinel::exporters {
namespace {

using prometheus::Counter;
using prometheus::Gauge;
using prometheus::Histogram;

constexpr std::array<const char*, 5> kPhases{"resolve", "connect", "tls", "http", "total"};

// Handshakes on a LAN take milliseconds, across continents hundreds.
const Histogram::BucketBoundaries kHandshakeBuckets{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                                    0.1,   0.25,   0.5,   1,    2.5,   5};
const Histogram::BucketBoundaries kLagBuckets{0.001, 0.005, 0.01, 0.025, 0.05, 0.1,
                                              0.25,  0.5,   1,    2.5,   5,    10};

prometheus::Family<Gauge>& gauge(prometheus::Registry& r, const char* name, const char* help) {
  return prometheus::BuildGauge().Name(name).Help(help).Register(r);
}
prometheus::Family<Counter>& counter(prometheus::Registry& r, const char* name, const char* help) {
  return prometheus::BuildCounter().Name(name).Help(help).Register(r);
}
prometheus::Family<Histogram>& histogram(prometheus::Registry& r, const char* name,
                                         const char* help) {
  return prometheus::BuildHistogram().Name(name).Help(help).Register(r);
}

}  // namespace

Metrics::Metrics(const std::string& version, const std::string& revision)
    : registry_(std::make_shared<prometheus::Registry>()),
      targets_(new TargetFamilies{
          gauge(*registry_, "portsentinel_probe_success",
                "1 when the last probe met its expectation"),
          gauge(*registry_, "portsentinel_probe_reason",
                "The reason of the last probe: one series per target, value 1"),
          counter(*registry_, "portsentinel_probe_failures_total", "Failed probes by reason"),
          gauge(*registry_, "portsentinel_probe_duration_seconds",
                "Duration of each phase of the last probe"),
          histogram(*registry_, "portsentinel_tls_handshake_duration_seconds",
                    "TLS handshake latency"),
          gauge(*registry_, "portsentinel_last_probe_timestamp_seconds",
                "When the last probe ended (unix time)"),
          gauge(*registry_, "portsentinel_tls_version_info", "1 for the negotiated TLS version"),
          gauge(*registry_, "portsentinel_tls_cipher_info", "1 for the negotiated cipher"),
          gauge(*registry_, "portsentinel_tls_cert_info",
                "The leaf certificate served, exported even when verification fails"),
          gauge(*registry_, "portsentinel_tls_cert_not_after_timestamp_seconds",
                "Leaf certificate expiry (unix time)"),
          gauge(*registry_, "portsentinel_tls_cert_not_before_timestamp_seconds",
                "Leaf certificate start (unix time)"),
          gauge(*registry_, "portsentinel_tls_chain_earliest_expiry_timestamp_seconds",
                "Earliest expiry in the served chain (unix time)"),
          gauge(*registry_, "portsentinel_tls_cert_verified",
                "1 when the chain and the name verified"),
          counter(*registry_, "portsentinel_tls_cert_changes_total",
                  "Leaf certificate fingerprint changes seen"),
          gauge(*registry_, "portsentinel_http_status_code", "The last HTTP status"),
      }),
      ports_(new PortFamilies{
          gauge(*registry_, "portsentinel_port_listeners",
                "Listening sockets on the port (>1 means shared, e.g. SO_REUSEPORT)"),
          gauge(*registry_, "portsentinel_port_owner_info",
                "1 per process owning a listener on the port; expected is true, false, or "
                "unknown when the daemon may not read the process"),
          gauge(*registry_, "portsentinel_port_hijacked",
                "1 while a listener on the port is owned by an unexpected process"),
          counter(*registry_, "portsentinel_port_owner_changes_total",
                  "Changes of the programs owning the port"),
          histogram(*registry_, "portsentinel_port_poll_duration_seconds",
                    "Wall time of one port watch poll")
              .Add({}, Histogram::BucketBoundaries{0.00005, 0.0001, 0.00025, 0.0005, 0.001,
                                                   0.0025, 0.005, 0.01, 0.025, 0.05, 0.1}),
      }),
      alerting_(new AlertingFamilies{
          counter(*registry_, "portsentinel_alertmanager_send_failures_total",
                  "Failed pushes to an Alertmanager (retried with backoff)"),
          counter(*registry_, "portsentinel_alerts_dropped_total",
                  "Resolved alerts dropped because an Alertmanager stayed unreachable and the "
                  "queue was full"),
      }),
      scheduler_lag_(histogram(*registry_, "portsentinel_scheduler_lag_seconds",
                               "How late probes start against their schedule")
                         .Add({}, kLagBuckets)),
      in_flight_(gauge(*registry_, "portsentinel_probes_in_flight", "Probes running now").Add({})),
      reload_ok_(gauge(*registry_, "portsentinel_config_last_reload_successful",
                       "Whether the last configuration reload attempt was successful")
                     .Add({})),
      reload_time_(gauge(*registry_, "portsentinel_config_last_reload_success_timestamp_seconds",
                         "Timestamp of the last successful configuration reload")
                       .Add({})),
      path_groups_(gauge(*registry_, "portsentinel_path_group_consistent",
                         "1 when every member of the path group succeeded and serves the same "
                         "leaf certificate")) {
  gauge(*registry_, "portsentinel_build_info", "Build information, value 1")
      .Add({{"version", version}, {"revision", revision}, {"openssl", OPENSSL_VERSION_STR}})
      .Set(1);
}

prometheus::Gauge& Metrics::add_path_group(const std::string& group) {
  return path_groups_.Add({{"group", group}});
}

void Metrics::remove_path_group(prometheus::Gauge& gauge) { path_groups_.Remove(&gauge); }

void Metrics::set_reload_result(bool ok, double unix_seconds) {
  reload_ok_.Set(ok ? 1 : 0);
  if (ok) {
    reload_time_.Set(unix_seconds);
  }
}

TargetMetrics::TargetMetrics(Metrics& metrics, const config::Target& target) : m_(metrics) {
  base_.emplace("target", target.name);
  for (const auto& [name, value] : target.labels) {
    base_.emplace(name, value);
  }
}

prometheus::Labels TargetMetrics::labels(
    std::initializer_list<std::pair<const char*, std::string>> extra) const {
  prometheus::Labels out = base_;
  for (const auto& [name, value] : extra) {
    out.emplace(name, value);
  }
  return out;
}

template <typename T>
void TargetMetrics::swap_info(prometheus::Family<T>& family, T*& current,
                              std::string& current_key, const std::string& key,
                              const prometheus::Labels& new_labels) {
  if (current != nullptr && current_key == key) {
    return;
  }
  if (current != nullptr) {
    family.Remove(current);
  }
  current = &family.Add(new_labels);
  current->Set(1);
  current_key = key;
}

void TargetMetrics::record(const probes::ProbeResult& r, double end_unix_seconds) {
  auto& f = m_.targets();
  if (success_ == nullptr) {
    success_ = &f.success.Add(base_);
    last_probe_ = &f.last_probe.Add(base_);
    for (size_t i = 0; i < kPhases.size(); ++i) {
      phases_[i] = &f.duration.Add(labels({{"phase", kPhases[i]}}));
    }
  }
  success_->Set(r.ok() ? 1 : 0);
  last_probe_->Set(end_unix_seconds);
  const std::array<double, 5> phase_values{r.phases.resolve, r.phases.connect, r.phases.tls,
                                           r.phases.http, r.phases.total};
  for (size_t i = 0; i < phases_.size(); ++i) {
    phases_[i]->Set(phase_values[i]);
  }
  // Exactly one probe_reason series per target: replace it when the reason changes.
  if (reason_value_ != r.reason) {
    if (reason_ != nullptr) {
      f.reason.Remove(reason_);
    }
    reason_ = &f.reason.Add(labels({{"reason", std::string(probes::reason_name(r.reason))}}));
    reason_->Set(1);
    reason_value_ = r.reason;
  }
  if (!r.ok()) {
    auto& failures = failures_[static_cast<size_t>(r.reason)];
    if (failures == nullptr) {
      failures = &f.failures.Add(labels({{"reason", std::string(probes::reason_name(r.reason))}}));
    }
    failures->Increment();
  }
  if (r.tls) {
    const auto& tls = *r.tls;
    if (handshake_ == nullptr) {
      handshake_ = &f.handshake.Add(base_, kHandshakeBuckets);
      verified_ = &f.verified.Add(base_);
      cert_changes_ = &f.cert_changes.Add(base_);
    }
    handshake_->Observe(r.phases.tls);
    verified_->Set(tls.verified ? 1 : 0);
    swap_info(f.tls_version, version_, version_key_, tls.version,
              labels({{"version", tls.version}}));
    swap_info(f.tls_cipher, cipher_, cipher_key_, tls.cipher, labels({{"cipher", tls.cipher}}));
    if (tls.leaf) {
      const auto& leaf = *tls.leaf;
      if (cert_info_ != nullptr && fingerprint_ != leaf.fingerprint_sha256) {
        cert_changes_->Increment();
      }
      swap_info(f.cert_info, cert_info_, fingerprint_, leaf.fingerprint_sha256,
                labels({{"fingerprint_sha256", leaf.fingerprint_sha256},
                        {"subject", leaf.subject},
                        {"issuer", leaf.issuer},
                        {"serial", leaf.serial}}));
      if (not_after_ == nullptr) {
        not_after_ = &f.not_after.Add(base_);
        not_before_ = &f.not_before.Add(base_);
        chain_expiry_ = &f.chain_expiry.Add(base_);
      }
      not_after_->Set(static_cast<double>(leaf.not_after));
      not_before_->Set(static_cast<double>(leaf.not_before));
      chain_expiry_->Set(static_cast<double>(leaf.chain_earliest_expiry));
    }
  }
  if (r.http) {
    if (http_status_ == nullptr) {
      http_status_ = &f.http_status.Add(base_);
    }
    http_status_->Set(r.http->status);
  }
}

TargetMetrics::~TargetMetrics() {
  auto& f = m_.targets();
  auto remove = [](auto& family, auto* metric) {
    if (metric != nullptr) {
      family.Remove(metric);
    }
  };
  remove(f.success, success_);
  remove(f.reason, reason_);
  for (auto* c : failures_) {
    remove(f.failures, c);
  }
  for (auto* g : phases_) {
    remove(f.duration, g);
  }
  remove(f.last_probe, last_probe_);
  remove(f.handshake, handshake_);
  remove(f.tls_version, version_);
  remove(f.tls_cipher, cipher_);
  remove(f.cert_info, cert_info_);
  remove(f.not_after, not_after_);
  remove(f.not_before, not_before_);
  remove(f.chain_expiry, chain_expiry_);
  remove(f.verified, verified_);
  remove(f.cert_changes, cert_changes_);
  remove(f.http_status, http_status_);
}

}  // namespace portsentinel::exporters
