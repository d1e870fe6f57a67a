#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <string>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/experimental/channel.hpp>
#include <boost/asio/io_context.hpp>

#include "config/config.h"
#include "daemon/alert_rules.h"
#include "daemon/path_groups.h"
#include "exporters/metrics.h"
#include "probes/resolver.h"
#include "probes/tls_context.h"

namespace portsentinel::daemon {

namespace asio = boost::asio;

// Runs one loop per target on the io_context: first runs spread over the interval, deadlines
// from the schedule (no drift), a per-probe timeout, and a global cap on probes in flight.
// Thread safety: every member function runs on the event-loop thread. Destroy it when the
// io_context is not running (after run() returned): the destructor drains the cancelled loops.
class Scheduler {
 public:
  using Clock = std::chrono::steady_clock;

  Scheduler(asio::io_context& io, exporters::Metrics& metrics, probes::Resolver& resolver,
            probes::TlsContextCache& tls_contexts, int max_concurrent_probes);
  ~Scheduler();
  Scheduler(const Scheduler&) = delete;
  Scheduler& operator=(const Scheduler&) = delete;

  // Makes the running targets those of `cfg`: new ones start, removed ones stop (their series
  // disappear), unchanged ones keep their schedule, counters and state. Throws
  // std::runtime_error (naming the target) when a TLS setting cannot be built; then nothing
  // changes.
  void apply(const config::Config& cfg);

  // Cancels every target loop, including probes in flight.
  void stop();

  // Alerting: each probe result and path-group verdict goes through `rules`, and what it
  // changes to `sink`. Without it, no alerts.
  using AlertSink = std::function<void(const AlertChanges&)>;
  void set_alerting(const AlertRules* rules, AlertSink sink) {
    rules_ = rules;
    alert_sink_ = std::move(sink);
  }

  size_t target_count() const { return targets_.size(); }
  size_t failing_count() const;
  // Target loops still alive (stopped ones finish after their cancelled operation returns).
  size_t running_loops() const { return running_loops_; }

 private:
  struct Target;
  struct Group {
    config::PathGroup config;
    GroupVerdict verdict;
    prometheus::Gauge* gauge = nullptr;
  };
  void update_groups(const std::string& member);
  asio::awaitable<void> run_target(std::shared_ptr<Target> target, Clock::time_point first);
  void start(std::shared_ptr<Target> target);
  void cancel(const std::shared_ptr<Target>& target);

  asio::io_context& io_;
  exporters::Metrics& metrics_;
  probes::Resolver& resolver_;
  probes::TlsContextCache& tls_contexts_;
  // Holds one message per probe in flight: a full channel makes the next probe wait.
  std::unique_ptr<asio::experimental::channel<void(boost::system::error_code)>> slots_;
  int slot_count_;
  int in_flight_ = 0;
  size_t running_loops_ = 0;
  std::map<std::string, std::shared_ptr<Target>> targets_;
  std::vector<Group> groups_;
  const AlertRules* rules_ = nullptr;
  AlertSink alert_sink_;
};

// Builds (into `cache`) the TLS context of every target that needs one. Throws
// std::runtime_error naming the target when one cannot be built (e.g. a broken CA file).
void prepare_tls_contexts(const config::Config& cfg, probes::TlsContextCache& cache);

// Where a target's first probe falls in its interval: a stable fraction from its name, so that
// thousands of targets do not start together and a reload does not move them.
double schedule_phase(const std::string& name);

}  // namespace portsentinel::daemon
