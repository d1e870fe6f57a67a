#pragma once

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include <array>
#include <memory>
#include <string>

#include "config/config.h"
#include "probes/probe_result.h"

namespace portsentinel::exporters {

class Metrics;

// The series of one target. Created when the target starts; its destructor removes every
// series it added, so a removed target disappears from /metrics.
// Thread safety: record() from one thread (the event loop); scrapes may run concurrently.
class TargetMetrics {
 public:
  TargetMetrics(Metrics& metrics, const config::Target& target);
  ~TargetMetrics();
  TargetMetrics(const TargetMetrics&) = delete;
  TargetMetrics& operator=(const TargetMetrics&) = delete;

  // Updates every series from one probe result that ended at `end_unix_seconds`.
  void record(const probes::ProbeResult& result, double end_unix_seconds);

 private:
  prometheus::Labels labels(std::initializer_list<std::pair<const char*, std::string>> extra) const;
  template <typename T>
  void swap_info(prometheus::Family<T>& family, T*& current, std::string& current_key,
                 const std::string& key, const prometheus::Labels& labels);

  Metrics& m_;
  prometheus::Labels base_;  // target and the target's own labels
  prometheus::Gauge* success_ = nullptr;
  prometheus::Gauge* reason_ = nullptr;
  probes::Reason reason_value_ = probes::Reason::kCount;
  std::array<prometheus::Counter*, probes::kReasonCount> failures_{};
  std::array<prometheus::Gauge*, 5> phases_{};
  prometheus::Gauge* last_probe_ = nullptr;
  prometheus::Histogram* handshake_ = nullptr;
  prometheus::Gauge* version_ = nullptr;
  std::string version_key_;
  prometheus::Gauge* cipher_ = nullptr;
  std::string cipher_key_;
  prometheus::Gauge* cert_info_ = nullptr;
  std::string fingerprint_;
  prometheus::Gauge* not_after_ = nullptr;
  prometheus::Gauge* not_before_ = nullptr;
  prometheus::Gauge* chain_expiry_ = nullptr;
  prometheus::Gauge* verified_ = nullptr;
  prometheus::Counter* cert_changes_ = nullptr;
  prometheus::Gauge* http_status_ = nullptr;
};

// Every portsentinel_ metric family, in one registry that the web server exposes.
// Thread safety: as prometheus-cpp's: updates and scrapes may run concurrently.
class Metrics {
 public:
  Metrics(const std::string& version, const std::string& revision);

  std::shared_ptr<prometheus::Registry> registry() const { return registry_; }
  void observe_scheduler_lag(double seconds) { scheduler_lag_.Observe(seconds); }
  void set_probes_in_flight(double n) { in_flight_.Set(n); }
  void set_reload_result(bool ok, double unix_seconds);

  // path_group_consistent{group}: added when a group's verdict is first known, removed with it.
  prometheus::Gauge& add_path_group(const std::string& group);
  void remove_path_group(prometheus::Gauge& gauge);

  // The per-target families; TargetMetrics adds and removes their series.
  struct TargetFamilies {
    prometheus::Family<prometheus::Gauge>& success;
    prometheus::Family<prometheus::Gauge>& reason;
    prometheus::Family<prometheus::Counter>& failures;
    prometheus::Family<prometheus::Gauge>& duration;
    prometheus::Family<prometheus::Histogram>& handshake;
    prometheus::Family<prometheus::Gauge>& last_probe;
    prometheus::Family<prometheus::Gauge>& tls_version;
    prometheus::Family<prometheus::Gauge>& tls_cipher;
    prometheus::Family<prometheus::Gauge>& cert_info;
    prometheus::Family<prometheus::Gauge>& not_after;
    prometheus::Family<prometheus::Gauge>& not_before;
    prometheus::Family<prometheus::Gauge>& chain_expiry;
    prometheus::Family<prometheus::Gauge>& verified;
    prometheus::Family<prometheus::Counter>& cert_changes;
    prometheus::Family<prometheus::Gauge>& http_status;
  };
  TargetFamilies& targets() { return *targets_; }

  // The port watch's families (series added by the port watcher).
  struct PortFamilies {
    prometheus::Family<prometheus::Gauge>& listeners;
    prometheus::Family<prometheus::Gauge>& owner_info;
    prometheus::Family<prometheus::Gauge>& hijacked;
    prometheus::Family<prometheus::Counter>& owner_changes;
    prometheus::Histogram& poll_duration;
  };
  PortFamilies& ports() { return *ports_; }

  struct AlertingFamilies {
    prometheus::Family<prometheus::Counter>& send_failures;  // by url
    prometheus::Family<prometheus::Counter>& dropped;        // by url
  };
  AlertingFamilies& alerting() { return *alerting_; }

 private:
  std::shared_ptr<prometheus::Registry> registry_;
  std::unique_ptr<TargetFamilies> targets_;
  std::unique_ptr<PortFamilies> ports_;
  std::unique_ptr<AlertingFamilies> alerting_;
  prometheus::Histogram& scheduler_lag_;
  prometheus::Gauge& in_flight_;
  prometheus::Gauge& reload_ok_;
  prometheus::Gauge& reload_time_;
  prometheus::Family<prometheus::Gauge>& path_groups_;
};

}  // namespace portsentinel::exporters
