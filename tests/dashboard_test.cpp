// The shipped Grafana dashboard against a real Prometheus (Debian's `prometheus`) that scrapes a
// running portsentinel: every query parses, and each returns data in a scenario that has a
// healthy and a failing target, a path group, a watched port and an unreachable Alertmanager.
#include <signal.h>

#include <fstream>
#include <gtest/gtest.h>
#include <regex>
#include <sstream>

#include "probes/reason.h"
#include "tests/support/nginx.h"
#include "tests/support/pki.h"
#include "tests/support/process.h"
#include "tests/support/servers.h"

namespace portsentinel::testing {
namespace {

using namespace std::chrono_literals;

std::string url_encode(const std::string& s) {
  std::string out;
  static const char* kHex = "0123456789ABCDEF";
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 0xf];
    }
  }
  return out;
}

// Every "expr" in the dashboard, JSON-unescaped, with Grafana's variables filled in.
std::vector<std::pair<std::string, std::string>> dashboard_queries() {
  std::ifstream in(PORTSENTINEL_SOURCE_DIR "/exporters/grafana/portsentinel.json");
  std::stringstream text;
  text << in.rdbuf();
  const std::string json = text.str();
  std::vector<std::pair<std::string, std::string>> out;
  static const std::regex kField(R"re("(title|expr)": "((?:[^"\\]|\\.)*)")re");
  std::string title;
  for (auto it = std::sregex_iterator(json.begin(), json.end(), kField);
       it != std::sregex_iterator(); ++it) {
    std::string value = (*it)[2];
    value = std::regex_replace(value, std::regex(R"(\\")"), "\"");
    value = std::regex_replace(value, std::regex(R"(\\\\)"), "\\");
    if ((*it)[1] == "title") {
      title = value;
      continue;
    }
    value = std::regex_replace(value, std::regex(R"(\$__rate_interval)"), "30s");
    value = std::regex_replace(value, std::regex(R"(\$instance)"), ".*");
    out.emplace_back(title, value);
  }
  return out;
}

TEST(Dashboard, EveryQueryParsesAndReturnsDataFromARealPrometheus) {
  if (find_program("prometheus").empty()) {
    GTEST_SKIP() << "prometheus is not installed (make deps installs Debian's prometheus)";
  }
  const auto queries = dashboard_queries();
  ASSERT_GE(queries.size(), 12u);

  TempDir dir;
  TestPki pki(dir);
  const auto leaf = pki.issue("good", {});
  ServerThread servers;
  std::unique_ptr<LoopbackServer> tls, plain;
  servers.run([&] {
    tls = std::make_unique<LoopbackServer>(
        servers.io(), ServerOptions{Script::kTls, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
                                    make_server_tls(leaf)});
    plain = std::make_unique<LoopbackServer>(servers.io(), ServerOptions{Script::kHttp});
  });
  auto target = [&](const std::string& name, const std::string& address) {
    return "  - {name: " + name + ", address: \"" + address +
           "\", expect: tls, server_name: localhost, tls: {ca_file: " + pki.ca_file() + "}}\n";
  };
  const std::string cfg = dir.write(
      "portsentinel.yaml",
      "defaults: {interval: 500ms, timeout: 400ms}\ntargets:\n" + target("good", tls->host_port()) +
          target("good-again", tls->host_port()) + target("plain", plain->host_port()) +
          "path_groups:\n  - {name: shop, targets: [good, good-again]}\n"
          "ports:\n  poll_interval: 500ms\n  watch: [{port: " + std::to_string(tls->port()) +
          "}]\nalerting:\n  alertmanager_urls: [\"http://127.0.0.1:" +
          std::to_string(refused_port()) + "\"]\n  resend_interval: 1s\n");
  Process daemon({portsentinel_binary(), "run", "--config", cfg, "--web.listen-address",
                  "127.0.0.1:0", "--state-dir", dir.path()},
                 dir.file("daemon.log"));
  ASSERT_TRUE(eventually([&] { return listen_port_from_log(daemon.log()).has_value(); }));
  const uint16_t daemon_port = *listen_port_from_log(daemon.log());

  const uint16_t prom_port = free_port();
  dir.write("prometheus.yml", "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
                              "scrape_configs:\n  - job_name: portsentinel\n"
                              "    static_configs: [{targets: ['127.0.0.1:" +
                                  std::to_string(daemon_port) + "']}]\n");
  Process prometheus({find_program("prometheus"), "--config.file=" + dir.file("prometheus.yml"),
                      "--storage.tsdb.path=" + dir.path() + "/tsdb",
                      "--web.listen-address=127.0.0.1:" + std::to_string(prom_port)},
                     dir.file("prometheus.log"));
  const auto query = [&](const std::string& expr) {
    auto r = http_request(prom_port, "GET", "/api/v1/query?query=" + url_encode(expr));
    return r ? r->body : std::string();
  };
  ASSERT_TRUE(eventually([&] {
    return query("portsentinel_build_info").find("\"result\":[{") != std::string::npos;
  }, 20s)) << prometheus.log();

  for (const auto& [title, expr] : queries) {
    std::string body;
    const bool has_data = eventually([&] {
      body = query(expr);
      return body.find("\"status\":\"success\"") != std::string::npos &&
             body.find("\"result\":[]") == std::string::npos;
    }, 20s);
    EXPECT_NE(body.find("\"status\":\"success\""), std::string::npos)
        << title << ": " << expr << "\n" << body;
    EXPECT_TRUE(has_data) << title << " has no data: " << expr << "\n" << body;
  }
  EXPECT_EQ(daemon.stop(SIGTERM, 3s), std::optional<int>(0));
  servers.run([&] {
    tls.reset();
    plain.reset();
  });
}

// The Prometheus rules' ProbeFailing remedies are the daemon's (made from probes/reason.cpp).
TEST(PrometheusRules, RemediesMatchTheDaemons) {
  std::ifstream in(PORTSENTINEL_SOURCE_DIR "/exporters/prometheus/portsentinel.rules.yml");
  std::stringstream text;
  text << in.rdbuf();
  const std::string rules = text.str();
  for (size_t i = 1; i < probes::kReasonCount; ++i) {  // 0 is ok
    const auto r = static_cast<probes::Reason>(i);
    const std::string name(probes::reason_name(r));
    const auto at = rules.find("          reason: " + name + "\n");
    ASSERT_NE(at, std::string::npos) << "no ProbeFailing rule for " << name;
    const auto start = rules.find("remedy: '", at) + 9;
    const auto end = rules.find("'\n", start);
    const std::string remedy =
        std::regex_replace(rules.substr(start, end - start), std::regex("''"), "'");
    EXPECT_EQ(remedy, probes::reason_remedy(r)) << name;
  }
}

}  // namespace
}  // namespace portsentinel::testing
