#pragma once

#include <chrono>
#include <deque>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include "exporters/metrics.h"
#include "probes/resolver.h"

namespace portsentinel::exporters {

namespace asio = boost::asio;

// One alert as Alertmanager's v2 API takes it. `labels` include alertname and severity.
struct Alert {
  std::map<std::string, std::string> labels;
  std::map<std::string, std::string> annotations;  // summary, remedy
  double starts_at = 0;                            // unix seconds
  std::string key() const;                         // identity: the label set
};

// Pushes alerts to every Alertmanager (as Prometheus does: all URLs, for an HA pair) with
// POST /api/v2/alerts, on the event loop. Firing alerts are sent at once and re-sent every
// resend interval with endsAt a few intervals ahead, so an Alertmanager that restarts gets
// them all back; a resolved alert is sent with endsAt = its resolution time until delivered,
// in a bounded queue per Alertmanager (the oldest dropped first, counted). A failing
// Alertmanager is retried with exponential backoff; nothing here ever waits on the probes'
// path. Thread safety: every member function on the event-loop thread.
class AlertmanagerClient {
 public:
  static constexpr size_t kMaxPendingResolved = 10000;

  AlertmanagerClient(asio::io_context& io, Metrics& metrics, probes::Resolver& resolver);
  ~AlertmanagerClient();

  // (Re)starts one sender per URL ("http://host:port[/prefix]"). Firing state is kept.
  void configure(const std::vector<std::string>& urls, std::chrono::milliseconds resend,
                 std::string generator_url);
  void fire(const Alert& alert);
  void resolve(const Alert& alert, double at_unix_seconds);
  void stop();

  size_t firing() const { return firing_.size(); }

 private:
  struct Sender;
  asio::awaitable<void> run(std::shared_ptr<Sender> sender);
  std::string body(const Sender& sender, double now) const;
  void wake_all();

  asio::io_context& io_;
  Metrics& metrics_;
  probes::Resolver& resolver_;
  std::chrono::milliseconds resend_{60000};
  std::string generator_url_;
  std::map<std::string, Alert> firing_;
  std::vector<std::shared_ptr<Sender>> senders_;
};

}  // namespace portsentinel::exporters
