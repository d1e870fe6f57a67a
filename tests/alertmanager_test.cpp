// Alerts into a real Alertmanager (Debian's prometheus-alertmanager, clustering off, on a
// loopback port chosen at run time): a port hijack pages within 2 s of the bind and resolves
// when the rogue leaves; a refused target fires ProbeFailing{reason="connection_refused"};
// an Alertmanager restarted with empty storage gets the firing alerts back.
#include <signal.h>
#include <sys/stat.h>

#include <filesystem>
#include <gtest/gtest.h>

#include "tests/support/nginx.h"
#include "tests/support/pki.h"
#include "tests/support/process.h"
#include "tests/support/servers.h"

namespace portsentinel::testing {
namespace {

using namespace std::chrono_literals;

class AlertmanagerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (find_program("prometheus-alertmanager").empty()) {
      GTEST_SKIP() << "prometheus-alertmanager is not installed (make deps installs it)";
    }
    am_port_ = free_port();
    dir_.write("am.yml",
               "route: {receiver: 'null', group_wait: 1s, group_interval: 1s}\n"
               "receivers: [{name: 'null'}]\n");
    start_alertmanager();
  }

  void start_alertmanager() {
    const std::string storage = dir_.path() + "/am-data-" + std::to_string(++am_runs_);
    std::filesystem::create_directories(storage);
    am_ = std::make_unique<Process>(
        std::vector<std::string>{find_program("prometheus-alertmanager"),
                                 "--config.file=" + dir_.file("am.yml"),
                                 "--storage.path=" + storage,
                                 "--web.listen-address=127.0.0.1:" + std::to_string(am_port_),
                                 "--cluster.listen-address="},
        dir_.file("am-" + std::to_string(am_runs_) + ".log"));
    ASSERT_TRUE(eventually([&] {
      auto r = http_request(am_port_, "GET", "/api/v2/status");
      return r && r->status == 200;
    })) << am_->log();
  }

  std::string alerts() {
    auto r = http_request(am_port_, "GET", "/api/v2/alerts");
    return r ? r->body : "";
  }

  std::unique_ptr<Process> start_daemon(const std::string& body) {
    const std::string cfg = dir_.write(
        "portsentinel.yaml",
        body + "alerting:\n  alertmanager_urls: [\"http://127.0.0.1:" + std::to_string(am_port_) +
            "\"]\n  resend_interval: 1s\n");
    auto d = std::make_unique<Process>(
        std::vector<std::string>{portsentinel_binary(), "run", "--config", cfg,
                                 "--web.listen-address", "127.0.0.1:0", "--state-dir",
                                 dir_.path() + "/state"},
        dir_.file("daemon.log"));
    EXPECT_TRUE(eventually([&] { return listen_port_from_log(d->log()).has_value(); }))
        << d->log();
    daemon_port_ = listen_port_from_log(d->log()).value_or(0);
    return d;
  }

  std::unique_ptr<Process> listen(const std::string& exe, uint16_t port,
                                  const std::string& address) {
    auto p = std::make_unique<Process>(
        std::vector<std::string>{exe, address, std::to_string(port), "--reuseport"},
        dir_.file("listener-" + std::to_string(++listeners_) + ".log"));
    EXPECT_TRUE(eventually([&] { return p->log().find("ready") != std::string::npos; }));
    return p;
  }

  TempDir dir_;
  uint16_t am_port_ = 0;
  int am_runs_ = 0;
  int listeners_ = 0;
  uint16_t daemon_port_ = 0;
  std::unique_ptr<Process> am_;
};

TEST_F(AlertmanagerTest, PortHijackPagesWithinTwoSecondsAndResolves) {
  const uint16_t port = free_port();
  auto owner = listen(LISTENER_HELPER, port, "0.0.0.0");
  auto daemon = start_daemon("ports:\n  poll_interval: 200ms\n  watch:\n    - port: " +
                             std::to_string(port) + "\n      expected_owners: [{exe: " +
                             LISTENER_HELPER + "}]\n");
  ASSERT_TRUE(eventually([&] {
    auto r = http_request(daemon_port_, "GET", "/metrics");
    return r && r->body.find("portsentinel_port_listeners{port=\"" + std::to_string(port) +
                             "\"} 1") != std::string::npos;
  })) << daemon->log();

  const std::string rogue_exe = dir_.path() + "/rogue-listener";
  std::filesystem::copy_file(LISTENER_HELPER, rogue_exe);
  chmod(rogue_exe.c_str(), 0755);
  auto rogue = listen(rogue_exe, port, "127.0.0.1");
  const auto bound = std::chrono::steady_clock::now();
  ASSERT_TRUE(eventually([&] { return alerts().find("\"alertname\":\"PortHijacked\"") !=
                                      std::string::npos; },
                         5s))
      << alerts() << daemon->log();
  EXPECT_LT(std::chrono::steady_clock::now() - bound, 2s);
  const std::string body = alerts();
  EXPECT_NE(body.find("\"port\":\"" + std::to_string(port) + "\""), std::string::npos) << body;
  EXPECT_NE(body.find("\"remedy\":\"Another program listens on port"), std::string::npos) << body;
  EXPECT_NE(body.find("rogue-listener"), std::string::npos) << body;  // the evidence
  EXPECT_NE(body.find("\"severity\":\"critical\""), std::string::npos) << body;

  rogue.reset();
  EXPECT_TRUE(eventually([&] {
    return alerts().find("\"alertname\":\"PortHijacked\"") == std::string::npos;
  })) << alerts();
  EXPECT_EQ(daemon->stop(SIGTERM, 3s), std::optional<int>(0));
}

TEST_F(AlertmanagerTest, RefusedTargetFiresAndSurvivesAnAlertmanagerRestart) {
  const uint16_t refused = refused_port();
  auto daemon = start_daemon("defaults: {interval: 200ms, timeout: 150ms}\ntargets:\n"
                             "  - {name: api, address: \"127.0.0.1:" + std::to_string(refused) +
                             "\", expect: tls, labels: {team: payments}}\n");
  const auto fired = [&] {
    const std::string a = alerts();
    return a.find("\"alertname\":\"ProbeFailing\"") != std::string::npos &&
           a.find("\"reason\":\"connection_refused\"") != std::string::npos;
  };
  ASSERT_TRUE(eventually(fired, 5s)) << alerts() << daemon->log();
  const std::string body = alerts();
  EXPECT_NE(body.find("\"target\":\"api\""), std::string::npos) << body;
  EXPECT_NE(body.find("\"team\":\"payments\""), std::string::npos) << body;
  EXPECT_NE(body.find("\"remedy\":\"Nothing listens on the port"), std::string::npos) << body;

  // Alertmanager goes away (and comes back with empty storage): the alert comes back too.
  ASSERT_EQ(am_->stop(SIGTERM, 5s), std::optional<int>(0));
  ASSERT_TRUE(eventually([&] {
    auto r = http_request(daemon_port_, "GET", "/metrics");
    return r && r->body.find("portsentinel_alertmanager_send_failures_total{url=") !=
                    std::string::npos &&
           r->body.find("portsentinel_alertmanager_send_failures_total{url=\"http://127.0.0.1:" +
                        std::to_string(am_port_) + "\"} 0") == std::string::npos;
  })) << daemon->log();
  start_alertmanager();
  EXPECT_TRUE(eventually(fired, 10s)) << alerts();
  EXPECT_EQ(daemon->stop(SIGTERM, 3s), std::optional<int>(0));
}

}  // namespace
}  // namespace portsentinel::testing
