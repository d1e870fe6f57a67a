#pragma once

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.h"
#include "probes/probe_result.h"

namespace portsentinel::exporters {

class Metrics;
struct TargetSeries;

// The series of one target. Created when the target starts; its destructor removes every
// series it added, so a removed target disappears from /metrics.
// The values live in one compact record per target, not in prometheus-cpp families: at
// 10,000 targets that is a fraction of the memory, no label lookups on the probe path, and a
// scrape that formats straight from the records (Metrics::write_text).
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
  Metrics& m_;
  std::shared_ptr<TargetSeries> series_;
};

// Every portsentinel_ metric family: the per-target ones in TargetSeries records, the others
// (few series each) in a prometheus-cpp registry. The web server serves write_text().
// Thread safety: updates and scrapes may run concurrently.
class Metrics {
 public:
  Metrics(const std::string& version, const std::string& revision);

  void observe_scheduler_lag(double seconds) { scheduler_lag_.Observe(seconds); }
  void set_probes_in_flight(double n) { in_flight_.Set(n); }
  void set_reload_result(bool ok, double unix_seconds);

  // path_group_consistent{group}: added when a group's verdict is first known, removed with it.
  prometheus::Gauge& add_path_group(const std::string& group);
  void remove_path_group(prometheus::Gauge& gauge);

  // The text exposition format (version 0.0.4) of every series, handed to `out` in pieces of
  // about 64 KiB, so a scrape of 10,000 targets never holds the whole text. Per-target
  // records are locked one at a time: a scrape never stalls the event loop for long.
  void write_text(const std::function<void(std::string_view)>& out) const;
  std::string text() const;  // the same, as one string (tests, benches)

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
  friend class TargetMetrics;
  void add_target(const std::shared_ptr<TargetSeries>& series);
  void remove_target(const std::shared_ptr<TargetSeries>& series);

  std::shared_ptr<prometheus::Registry> registry_;
  mutable std::mutex targets_mutex_;
  std::vector<std::shared_ptr<TargetSeries>> targets_;  // each knows its index here
  std::unique_ptr<PortFamilies> ports_;
  std::unique_ptr<AlertingFamilies> alerting_;
  prometheus::Histogram& scheduler_lag_;
  prometheus::Gauge& in_flight_;
  prometheus::Gauge& reload_ok_;
  prometheus::Gauge& reload_time_;
  prometheus::Family<prometheus::Gauge>& path_groups_;
};

}  // namespace portsentinel::exporters
