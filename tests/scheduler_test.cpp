// The scheduler in-process against loopback servers: intervals, the concurrency cap,
// cancellation on stop, and apply() keeping unchanged targets.

#include <boost/asio/io_context.hpp>
#include <gtest/gtest.h>
#include <regex>

#include "daemon/scheduler.h"
#include "tests/support/servers.h"

namespace portsentinel::daemon {
namespace {

using testing::LoopbackServer;
using testing::Script;

config::Target target(const std::string& name, uint16_t port, std::chrono::milliseconds interval,
                      std::chrono::milliseconds timeout, config::Expect expect) {
  config::Target t;
  t.name = name;
  t.address = {"127.0.0.1", port};
  t.server_name = "localhost";
  t.expect = expect;
  t.interval = interval;
  t.timeout = timeout;
  t.tls.insecure_skip_verify = true;
  return t;
}

class SchedulerTest : public ::testing::Test {
 protected:
  std::string metrics_text() {
    return metrics_.text();
  }
  // The value of the first series line that starts with `prefix`, or -1.
  double value(const std::string& prefix) {
    const std::string text = metrics_text();
    const auto at = text.find("\n" + prefix);
    if (at == std::string::npos) {
      return -1;
    }
    const auto line_end = text.find('\n', at + 1);
    const std::string line = text.substr(at + 1, line_end - at - 1);
    return std::stod(line.substr(line.rfind(' ') + 1));
  }

  asio::io_context io_;
  exporters::Metrics metrics_{"test", "test"};
  probes::Resolver resolver_{1};
  probes::TlsContextCache contexts_;
};

TEST_F(SchedulerTest, EachTargetRunsOnItsInterval) {
  LoopbackServer fast(io_, {Script::kHang});
  LoopbackServer slow(io_, {Script::kHang});
  config::Config cfg;
  cfg.targets = {target("fast", fast.port(), std::chrono::milliseconds(100),
                        std::chrono::milliseconds(50), config::Expect::kTcp),
                 target("slow", slow.port(), std::chrono::milliseconds(500),
                        std::chrono::milliseconds(50), config::Expect::kTcp)};
  Scheduler scheduler(io_, metrics_, resolver_, contexts_, 512);
  scheduler.apply(cfg);
  io_.run_for(std::chrono::milliseconds(1500));
  // First runs fall somewhere in the first interval, then one per interval.
  EXPECT_GE(fast.connections(), 13);
  EXPECT_LE(fast.connections(), 16);
  EXPECT_GE(slow.connections(), 2);
  EXPECT_LE(slow.connections(), 3);
  // Every probe started on time: the lag histogram has no sample above 50 ms.
  EXPECT_EQ(value("portsentinel_scheduler_lag_seconds_bucket{le=\"0.05\"}"),
            value("portsentinel_scheduler_lag_seconds_count"));
  scheduler.stop();
}

TEST_F(SchedulerTest, GlobalCapOnProbesInFlight) {
  LoopbackServer hang(io_, {Script::kHang});
  config::Config cfg;
  for (int i = 0; i < 50; ++i) {
    cfg.targets.push_back(target("t" + std::to_string(i), hang.port(), std::chrono::seconds(1),
                                 std::chrono::milliseconds(800), config::Expect::kTls));
  }
  Scheduler scheduler(io_, metrics_, resolver_, contexts_, 2);
  scheduler.apply(cfg);
  io_.run_for(std::chrono::milliseconds(500));
  // About half the targets are due by now, but only two handshakes may hang at once.
  EXPECT_EQ(hang.connections(), 2);
  EXPECT_EQ(hang.max_concurrent(), 2);
  EXPECT_EQ(value("portsentinel_probes_in_flight"), 2);
  scheduler.stop();
}

TEST_F(SchedulerTest, StopCancelsProbesInFlight) {
  LoopbackServer hang(io_, {Script::kHang});
  config::Config cfg;
  cfg.targets = {target("hang", hang.port(), std::chrono::milliseconds(100),
                        std::chrono::seconds(30), config::Expect::kTls)};
  Scheduler scheduler(io_, metrics_, resolver_, contexts_, 512);
  scheduler.apply(cfg);
  io_.run_for(std::chrono::milliseconds(300));
  ASSERT_EQ(hang.connections(), 1);
  ASSERT_EQ(scheduler.running_loops(), 1u);
  scheduler.stop();
  const auto start = std::chrono::steady_clock::now();
  while (scheduler.running_loops() > 0 &&
         std::chrono::steady_clock::now() - start < std::chrono::seconds(2)) {
    io_.run_one_for(std::chrono::milliseconds(50));
  }
  EXPECT_EQ(scheduler.running_loops(), 0u);
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(200));
  EXPECT_EQ(value("portsentinel_probes_in_flight"), 0);
}

TEST_F(SchedulerTest, ApplyKeepsUnchangedTargetsAndDropsRemovedSeries) {
  const uint16_t refused = testing::refused_port();
  LoopbackServer hang(io_, {Script::kHang});
  config::Config a;
  a.targets = {target("kept", refused, std::chrono::milliseconds(100),
                      std::chrono::milliseconds(50), config::Expect::kTcp),
               target("removed", hang.port(), std::chrono::milliseconds(100),
                      std::chrono::milliseconds(50), config::Expect::kTcp)};
  Scheduler scheduler(io_, metrics_, resolver_, contexts_, 512);
  scheduler.apply(a);
  io_.run_for(std::chrono::milliseconds(550));
  const double failures_before = value(
      "portsentinel_probe_failures_total{reason=\"connection_refused\",target=\"kept\"}");
  ASSERT_GE(failures_before, 4);
  ASSERT_NE(metrics_text().find("target=\"removed\""), std::string::npos);

  config::Config b;
  b.targets = {a.targets[0], target("added", hang.port(), std::chrono::milliseconds(100),
                                    std::chrono::milliseconds(50), config::Expect::kTcp)};
  scheduler.apply(b);
  io_.run_for(std::chrono::milliseconds(300));
  const std::string text = metrics_text();
  EXPECT_EQ(text.find("target=\"removed\""), std::string::npos);
  EXPECT_NE(text.find("portsentinel_probe_success{target=\"added\"} 1"), std::string::npos);
  // The unchanged target's counter went on from where it was.
  EXPECT_GE(value("portsentinel_probe_failures_total{reason=\"connection_refused\",target=\"kept\"}"),
            failures_before + 2);
  EXPECT_EQ(scheduler.target_count(), 2u);
  scheduler.stop();
}

}  // namespace
}  // namespace portsentinel::daemon
