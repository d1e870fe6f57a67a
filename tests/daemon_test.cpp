// The built binary as a user runs it: check-config, run with /metrics scraped and checked by
// promtool, exactly one probe_reason series per target, signals and reload.
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <poll.h>
#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <filesystem>
#include <gtest/gtest.h>
#include <regex>

#include "tests/support/pki.h"
#include "tests/support/process.h"
#include "tests/support/servers.h"

namespace portsentinel::testing {
namespace {

namespace asio = boost::asio;

using namespace std::chrono_literals;

std::string check_config(const std::string& file, int* rc) {
  std::string out;
  *rc = run_command({portsentinel_binary(), "check-config", file}, &out);
  return out;
}

int count_lines_starting(const std::string& text, const std::string& prefix) {
  int n = 0;
  size_t pos = 0;
  while ((pos = text.find("\n" + prefix, pos)) != std::string::npos) {
    ++n;
    ++pos;
  }
  return n;
}

TEST(CheckConfig, ValidFileExitsZero) {
  TempDir dir;
  const auto file = dir.write("ok.yaml",
                              "targets:\n  - {name: a, address: \"example.com:443\", expect: https}\n");
  int rc = -1;
  const auto out = check_config(file, &rc);
  EXPECT_EQ(rc, 0) << out;
  EXPECT_NE(out.find("OK (1 targets"), std::string::npos) << out;
}

TEST(CheckConfig, ErrorsAreFileLineColumn) {
  TempDir dir;
  const auto file = dir.write("bad.yaml",
                              "defaults: {interval: 30s}\n"
                              "targets:\n"
                              "  - name: shop\n"
                              "    address: shop.example.com:443\n"
                              "    expect: htps\n");
  int rc = -1;
  const auto out = check_config(file, &rc);
  EXPECT_EQ(rc, 1);
  EXPECT_EQ(out, file + ":5:13: target \"shop\" expect: expected one of tcp tls http https, got "
                        "\"htps\"\n");
}

TEST(CheckConfig, MissingFileAndBrokenCaFile) {
  int rc = -1;
  auto out = check_config("/nonexistent/x.yaml", &rc);
  EXPECT_EQ(rc, 1);
  EXPECT_NE(out.find("/nonexistent/x.yaml:0:0: cannot read config file"), std::string::npos)
      << out;
  TempDir dir;
  const auto ca = dir.write("ca.pem", "this is not PEM\n");
  const auto file = dir.write("ca.yaml", "targets:\n  - {name: a, address: \"a:443\", expect: tls, "
                                         "tls: {ca_file: " + ca + "}}\n");
  out = check_config(file, &rc);
  EXPECT_EQ(rc, 1);
  EXPECT_NE(out.find("cannot load CA file"), std::string::npos) << out;
}

TEST(Cli, UsageErrorsExitTwo) {
  std::string out;
  EXPECT_EQ(run_command({portsentinel_binary()}, &out), 2);
  EXPECT_EQ(run_command({portsentinel_binary(), "frobnicate"}, &out), 2);
  EXPECT_NE(out.find("unknown command"), std::string::npos);
  EXPECT_EQ(run_command({portsentinel_binary(), "run", "--bogus"}, &out), 2);
  EXPECT_EQ(run_command({portsentinel_binary(), "diagnose"}, &out), 2);
  EXPECT_EQ(run_command({portsentinel_binary(), "check-config"}, &out), 2);
  EXPECT_EQ(run_command({portsentinel_binary(), "version"}, &out), 0);
  EXPECT_EQ(out.rfind("portsentinel 0.", 0), 0u) << out;
}

// The revision is taken at build time: a build directory configured at an older commit and
// rebuilt after a new one must not report the old commit (in `version` and build_info).
TEST(Cli, VersionNamesTheCommitItWasBuiltFrom) {
  std::string head;
  if (run_command({"git", "-C", PORTSENTINEL_SOURCE_DIR, "rev-parse", "--short=12", "HEAD"},
                  &head) != 0) {
    GTEST_SKIP() << "the source tree is not a git checkout: the revision is \"unknown\"";
  }
  head.erase(head.find_last_not_of("\r\n") + 1);
  std::string out;
  ASSERT_EQ(run_command({portsentinel_binary(), "version"}, &out), 0);
  EXPECT_NE(out.find("(revision " + head + ","), std::string::npos)
      << "HEAD is " << head << ", the binary says: " << out;
}

TEST(Run, BadConfigExitsOneWithPositionAndStartsNothing) {
  TempDir dir;
  const auto file = dir.write("bad.yaml", "targets:\n  - {name: a, address: \"a:1\", expect: tcp, "
                                          "colour: blue}\n");
  Process daemon({portsentinel_binary(), "run", "--config", file, "--web.listen-address",
                  "127.0.0.1:0"},
                 dir.file("log"));
  ASSERT_TRUE(eventually([&] { return !daemon.running(); }, 5s));
  EXPECT_NE(daemon.log().find(file + ":2:44: unknown key \"colour\" in target"),
            std::string::npos)
      << daemon.log();
  EXPECT_FALSE(listen_port_from_log(daemon.log()).has_value());
}

TEST(Run, ListenAddressInUseExitsOneWithTheReason) {
  TempDir dir;
  // A port this test holds: the daemon cannot have it.
  asio::io_context io;
  asio::ip::tcp::acceptor taken(io, {asio::ip::make_address("127.0.0.1"), 0});
  const std::string address = "127.0.0.1:" + std::to_string(taken.local_endpoint().port());
  const auto file = dir.write("c.yaml", "targets:\n  - {name: a, address: \"127.0.0.1:" +
                                            std::to_string(refused_port()) +
                                            "\", expect: tls}\n");
  std::string out;
  const int rc = run_command({portsentinel_binary(), "run", "--config", file,
                              "--web.listen-address", address, "--state-dir", dir.path()},
                             &out);
  EXPECT_EQ(rc, 1) << out;  // not a crash on the way out
  EXPECT_NE(out.find("cannot listen on " + address), std::string::npos) << out;
}

// A daemon over a set of loopback servers, one per failure.
class RunningDaemon : public ::testing::Test {
 protected:
  void SetUp() override {
    pki_ = std::make_unique<TestPki>(dir_);
    good_ = pki_->issue("good", {});
    TestPki::LeafOptions expired;
    expired.not_before = -48h;
    expired.not_after = -24h;
    expired_ = pki_->issue("expired", expired);
    servers_.run([&] {
      tls_ = std::make_unique<LoopbackServer>(
          servers_.io(), ServerOptions{Script::kTls, kOk, make_server_tls(good_)});
      plain_ = std::make_unique<LoopbackServer>(servers_.io(), ServerOptions{Script::kHttp});
      ssh_ = std::make_unique<LoopbackServer>(servers_.io(), ServerOptions{Script::kSshBanner});
      hang_ = std::make_unique<LoopbackServer>(servers_.io(), ServerOptions{Script::kHang});
      old_ = std::make_unique<LoopbackServer>(
          servers_.io(), ServerOptions{Script::kTls, kOk, make_server_tls(expired_)});
    });
    refused_ = refused_port();
  }
  void TearDown() override {
    servers_.run([&] {
      tls_.reset();
      plain_.reset();
      ssh_.reset();
      hang_.reset();
      old_.reset();
    });
  }

  std::string target_line(const std::string& name, const std::string& address,
                          const std::string& expect) {
    return "  - {name: " + name + ", address: \"" + address + "\", expect: " + expect +
           ", server_name: localhost, tls: {ca_file: " + pki_->ca_file() + "}}\n";
  }

  std::string config(const std::string& extra_targets = "", const std::string& head = "") {
    return head +
           "defaults: {interval: 300ms, timeout: 250ms}\n"
           "targets:\n" +
           target_line("good", tls_->host_port(), "https") +
           target_line("plain", plain_->host_port(), "tls") +
           target_line("ssh", ssh_->host_port(), "tls") +
           target_line("refused", "127.0.0.1:" + std::to_string(refused_), "tls") +
           target_line("silent", hang_->host_port(), "tls") +
           target_line("expired", old_->host_port(), "tls") + extra_targets;
  }

  std::unique_ptr<Process> start(const std::string& config_text) {
    config_file_ = dir_.write("portsentinel.yaml", config_text);
    auto p = std::make_unique<Process>(
        std::vector<std::string>{portsentinel_binary(), "run", "--config", config_file_,
                                 "--web.listen-address", "127.0.0.1:0", "--state-dir",
                                 dir_.path()},
        dir_.file("daemon.log"));
    EXPECT_TRUE(eventually([&] { return listen_port_from_log(p->log()).has_value(); }))
        << p->log();
    port_ = listen_port_from_log(p->log()).value_or(0);
    return p;
  }

  std::string scrape() {
    auto reply = http_request(port_, "GET", "/metrics");
    return reply && reply->status == 200 ? "\n" + reply->body : "";
  }

  bool has(const std::string& line) { return scrape().find("\n" + line + "\n") != std::string::npos; }

  static constexpr const char* kOk = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
  TempDir dir_;
  std::unique_ptr<TestPki> pki_;
  TestPki::Leaf good_;
  TestPki::Leaf expired_;
  ServerThread servers_;
  std::unique_ptr<LoopbackServer> tls_, plain_, ssh_, hang_, old_;
  uint16_t refused_ = 0;
  std::string config_file_;
  uint16_t port_ = 0;
};

TEST_F(RunningDaemon, MetricsNameEachReasonAndPassPromtool) {
  auto daemon = start(config());
  const std::map<std::string, std::string> expected{
      {"good", "ok"},           {"plain", "plaintext_http"},        {"ssh", "not_tls"},
      {"refused", "connection_refused"}, {"silent", "handshake_timeout"}, {"expired", "cert_expired"}};
  for (const auto& [target, reason] : expected) {
    EXPECT_TRUE(eventually([&] {
      return has("portsentinel_probe_reason{reason=\"" + reason + "\",target=\"" + target + "\"} 1");
    })) << target << " never showed " << reason << "\n" << scrape() << daemon->log();
  }
  const std::string text = scrape();
  // Exactly one probe_reason series per target.
  EXPECT_EQ(count_lines_starting(text, "portsentinel_probe_reason{"), 6);
  EXPECT_NE(text.find("\nportsentinel_probe_success{target=\"good\"} 1\n"), std::string::npos);
  EXPECT_NE(text.find("\nportsentinel_probe_success{target=\"plain\"} 0\n"), std::string::npos);
  EXPECT_NE(text.find("\nportsentinel_http_status_code{target=\"good\"} 200\n"), std::string::npos);
  EXPECT_NE(text.find("portsentinel_tls_cert_info{fingerprint_sha256=\"" + good_.fingerprint_sha256 +
                      "\",issuer=\"CN=portsentinel test CA,O=portsentinel tests\""),
            std::string::npos);
  // The expired certificate is exported even though it failed verification.
  EXPECT_NE(text.find("fingerprint_sha256=\"" + expired_.fingerprint_sha256 + "\""),
            std::string::npos);
  EXPECT_NE(text.find("\nportsentinel_tls_cert_verified{target=\"expired\"} 0\n"),
            std::string::npos);
  EXPECT_NE(text.find("\nportsentinel_tls_cert_verified{target=\"good\"} 1\n"), std::string::npos);
  EXPECT_NE(text.find("portsentinel_tls_version_info{target=\"good\",version=\"TLSv1.3\"} 1"),
            std::string::npos);
  EXPECT_NE(text.find("portsentinel_probe_failures_total{reason=\"not_tls\",target=\"ssh\"}"),
            std::string::npos);
  EXPECT_NE(text.find("portsentinel_build_info{openssl=\"3."), std::string::npos);
  EXPECT_NE(text.find("portsentinel_scheduler_lag_seconds_count"), std::string::npos);
  EXPECT_NE(text.find("portsentinel_tls_handshake_duration_seconds_bucket{target=\"good\",le=\"0.005\"}"),
            std::string::npos);

  if (!have_program("promtool")) {
    GTEST_SKIP() << "promtool not installed (make deps installs Debian's prometheus package)";
  }
  std::string out;
  const int rc = run_command({"promtool", "check", "metrics"}, &out, text.substr(1));
  EXPECT_EQ(rc, 0) << out;

  // One log line per state change, with the remedy; not one per probe.
  const std::string log = daemon->log();
  EXPECT_NE(log.find("target failing target=plain from=none reason=plaintext_http"),
            std::string::npos)
      << log;
  EXPECT_NE(log.find("remedy=\"The port answers plain HTTP"), std::string::npos) << log;
  const std::regex plain_lines("target=plain ");
  EXPECT_EQ(std::distance(std::sregex_iterator(log.begin(), log.end(), plain_lines),
                          std::sregex_iterator()),
            1)
      << log;
}

// Prometheus asks for gzip over HTTP/1.1: the body is chunked and compressed. curl decodes
// both; the plain HTTP/1.0 scrape above gets the same series, unchunked.
TEST_F(RunningDaemon, MetricsGzipAndChunkedForHttp11Clients) {
  if (!have_program("curl")) {
    GTEST_SKIP() << "curl not installed (make deps installs it)";
  }
  auto daemon = start(config());
  // Every target has its reason before the scrapes are compared.
  ASSERT_TRUE(eventually([&] {
    return count_lines_starting(scrape(), "portsentinel_probe_reason{") == 6 &&
           has("portsentinel_probe_reason{reason=\"ok\",target=\"good\"} 1");
  })) << daemon->log();
  const std::string url = "http://127.0.0.1:" + std::to_string(port_) + "/metrics";
  std::string headers;
  ASSERT_EQ(run_command({"curl", "-sS", "-o", dir_.file("raw.gz"), "-D", "-", "-H",
                         "Accept-Encoding: gzip", url},
                        &headers),
            0)
      << headers;
  EXPECT_NE(headers.find("Content-Encoding: gzip"), std::string::npos) << headers;
  EXPECT_NE(headers.find("Transfer-Encoding: chunked"), std::string::npos) << headers;
  std::string decoded;
  ASSERT_EQ(run_command({"sh", "-c", "gzip -dc < " + dir_.file("raw.gz")}, &decoded), 0);
  std::string via_curl;
  ASSERT_EQ(run_command({"curl", "-sS", "--compressed", url}, &via_curl), 0);
  const std::string plain = scrape();
  for (const std::string& text : {decoded, via_curl}) {
    EXPECT_NE(text.find("\nportsentinel_probe_reason{reason=\"ok\",target=\"good\"} 1\n"),
              std::string::npos)
        << text;
    EXPECT_EQ(count_lines_starting("\n" + text, "portsentinel_probe_reason{"), 6) << text;
    EXPECT_NE(text.find("\nportsentinel_build_info{"), std::string::npos);
  }
  std::string size;
  ASSERT_EQ(run_command({"stat", "-c", "%s", dir_.file("raw.gz")}, &size), 0);
  EXPECT_LT(std::stoul(size) * 3, plain.size()) << "gzip should shrink the text";
  auto head = http_request(port_, "HEAD", "/metrics");
  ASSERT_TRUE(head);
  EXPECT_EQ(head->status, 200);
  EXPECT_EQ(head->body, "");
  auto post = http_request(port_, "POST", "/metrics");
  ASSERT_TRUE(post);
  EXPECT_EQ(post->status, 405);
}

TEST_F(RunningDaemon, HealthzAndIndexAndUnknownPath) {
  auto daemon = start(config());
  auto health = http_request(port_, "GET", "/healthz");
  ASSERT_TRUE(health);
  EXPECT_EQ(health->status, 200);
  EXPECT_EQ(health->body, "ok\n");
  auto index = http_request(port_, "GET", "/");
  ASSERT_TRUE(index);
  EXPECT_NE(index->body.find("/metrics"), std::string::npos);
  auto missing = http_request(port_, "GET", "/nope");
  ASSERT_TRUE(missing);
  EXPECT_EQ(missing->status, 404);
}

TEST_F(RunningDaemon, ReasonChangeReplacesTheSeries) {
  auto daemon = start(config());
  ASSERT_TRUE(eventually([&] {
    return has("portsentinel_probe_reason{reason=\"plaintext_http\",target=\"plain\"} 1");
  }));
  // The port gets its `ssl` back: the same server now speaks TLS.
  servers_.run([&] {
    plain_->set_tls(make_server_tls(good_));
    plain_->set_script(Script::kTls);
  });
  ASSERT_TRUE(eventually([&] {
    return has("portsentinel_probe_reason{reason=\"ok\",target=\"plain\"} 1");
  })) << scrape();
  const std::string text = scrape();
  EXPECT_EQ(text.find("portsentinel_probe_reason{reason=\"plaintext_http\",target=\"plain\"}"),
            std::string::npos);
  // The failure counter stays: it is history.
  EXPECT_NE(text.find("portsentinel_probe_failures_total{reason=\"plaintext_http\",target=\"plain\"}"),
            std::string::npos);
  EXPECT_NE(daemon->log().find("target recovered target=plain from=plaintext_http reason=ok"),
            std::string::npos)
      << daemon->log();
}

TEST_F(RunningDaemon, SigtermExitsZeroWithinTwoSeconds) {
  auto daemon = start(config());
  ASSERT_TRUE(eventually([&] {
    return has("portsentinel_probe_reason{reason=\"ok\",target=\"good\"} 1");
  }));
  const auto begin = std::chrono::steady_clock::now();
  const auto rc = daemon->stop(SIGTERM, 3s);
  const auto took = std::chrono::steady_clock::now() - begin;
  ASSERT_TRUE(rc.has_value()) << daemon->log();
  EXPECT_EQ(*rc, 0);
  EXPECT_LT(took, 2s) << daemon->log();
  EXPECT_NE(daemon->log().find("stopped"), std::string::npos);
}

TEST_F(RunningDaemon, SigintAlsoStops) {
  auto daemon = start(config());
  const auto rc = daemon->stop(SIGINT, 3s);
  ASSERT_TRUE(rc.has_value());
  EXPECT_EQ(*rc, 0);
}

TEST_F(RunningDaemon, ReloadKeepsRunningConfigOnBadFileAndAppliesGoodOne) {
  auto daemon = start(config());
  const std::string refused_counter =
      "portsentinel_probe_failures_total{reason=\"connection_refused\",target=\"refused\"} ";
  ASSERT_TRUE(eventually([&] { return scrape().find(refused_counter) != std::string::npos; }));

  dir_.write("portsentinel.yaml", "targets: [oops\n");
  kill(daemon->pid(), SIGHUP);
  ASSERT_TRUE(eventually([&] { return has("portsentinel_config_last_reload_successful 0"); }));
  EXPECT_NE(daemon->log().find("reload failed, keeping the running configuration"),
            std::string::npos);
  EXPECT_NE(daemon->log().find(config_file_ + ":"), std::string::npos) << daemon->log();
  // The old targets are still probed.
  const auto count = [&] {
    const std::string text = scrape();
    const auto at = text.find(refused_counter);
    return at == std::string::npos ? -1.0 : std::stod(text.substr(at + refused_counter.size()));
  };
  const double before = count();
  ASSERT_TRUE(eventually([&] { return count() > before; }));

  // A good file over HTTP: a new target appears, the unchanged one keeps its counter.
  dir_.write("portsentinel.yaml",
             config(target_line("extra", tls_->host_port(), "tls")));
  const double before_reload = count();
  auto reply = http_request(port_, "POST", "/-/reload");
  ASSERT_TRUE(reply);
  EXPECT_EQ(reply->status, 200) << reply->body;
  EXPECT_TRUE(has("portsentinel_config_last_reload_successful 1"));
  ASSERT_TRUE(eventually([&] {
    return has("portsentinel_probe_reason{reason=\"ok\",target=\"extra\"} 1");
  }));
  EXPECT_GE(count(), before_reload);

  // GET is not a reload.
  reply = http_request(port_, "GET", "/-/reload");
  ASSERT_TRUE(reply);
  EXPECT_EQ(reply->status, 405);
}

// An operator fixes a target's CA bundle and reloads: the new bundle is used at once, and the
// target keeps its series. A broken bundle fails the reload and keeps the running one.
TEST_F(RunningDaemon, ReloadPicksUpAChangedCaFile) {
  TempDir other_dir;
  TestPki other(other_dir);  // a CA that did not issue the served certificate
  const std::string bundle = dir_.file("bundle.pem");
  const auto install = [&](const std::string& from) {
    std::filesystem::copy_file(from, bundle + ".new",
                               std::filesystem::copy_options::overwrite_existing);
    std::filesystem::rename(bundle + ".new", bundle);
  };
  install(other.ca_file());
  auto daemon = start("defaults: {interval: 200ms, timeout: 150ms}\ntargets:\n"
                      "  - {name: rotated, address: \"" + tls_->host_port() +
                      "\", expect: tls, server_name: localhost, tls: {ca_file: " + bundle +
                      "}}\n");
  ASSERT_TRUE(eventually([&] {
    return has("portsentinel_probe_reason{reason=\"cert_untrusted\",target=\"rotated\"} 1");
  })) << scrape() << daemon->log();

  install(pki_->ca_file());
  kill(daemon->pid(), SIGHUP);
  ASSERT_TRUE(eventually([&] {
    return has("portsentinel_probe_reason{reason=\"ok\",target=\"rotated\"} 1");
  })) << scrape() << daemon->log();
  EXPECT_TRUE(has("portsentinel_config_last_reload_successful 1"));
  // The same target, not a new one: its failure counter from before the reload is still there.
  EXPECT_NE(scrape().find("portsentinel_probe_failures_total{reason=\"cert_untrusted\","
                          "target=\"rotated\"}"),
            std::string::npos)
      << scrape();

  dir_.write("broken.pem", "-----BEGIN CERTIFICATE-----\nnot base64\n");
  install(dir_.file("broken.pem"));
  kill(daemon->pid(), SIGHUP);
  ASSERT_TRUE(eventually([&] { return has("portsentinel_config_last_reload_successful 0"); }))
      << daemon->log();
  EXPECT_NE(daemon->log().find("target \"rotated\": cannot load CA file"), std::string::npos)
      << daemon->log();
  EXPECT_TRUE(has("portsentinel_probe_reason{reason=\"ok\",target=\"rotated\"} 1"));
}

// sd_notify against a real AF_UNIX datagram socket, as systemd's Type=notify sees it.
TEST_F(RunningDaemon, NotifiesReadyStatusAndWatchdogPings) {
  const std::string path = dir_.file("notify.sock");
  const int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(fd, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::snprintf(addr.sun_path, sizeof addr.sun_path, "%s", path.c_str());
  ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  config_file_ = dir_.write("portsentinel.yaml", config());
  Process daemon({portsentinel_binary(), "run", "--config", config_file_, "--web.listen-address",
                  "127.0.0.1:0", "--state-dir", dir_.path()},
                 dir_.file("daemon.log"), -1,
                 {"NOTIFY_SOCKET=" + path, "WATCHDOG_USEC=400000"});
  // Read datagrams for 1.5 s.
  std::vector<std::string> messages;
  const auto until = std::chrono::steady_clock::now() + 1500ms;
  while (std::chrono::steady_clock::now() < until) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 50) == 1) {
      char buf[4096];
      const ssize_t n = recv(fd, buf, sizeof buf, 0);
      if (n > 0) {
        messages.emplace_back(buf, static_cast<size_t>(n));
      }
    }
  }
  close(fd);
  ASSERT_FALSE(messages.empty()) << daemon.log();
  // READY=1 comes once the listen socket is bound, with a one-line status.
  const auto ready = std::find_if(messages.begin(), messages.end(), [](const std::string& m) {
    return m.find("READY=1") != std::string::npos;
  });
  ASSERT_NE(ready, messages.end());
  EXPECT_NE(ready->find("STATUS=6 targets, "), std::string::npos) << *ready;
  EXPECT_NE(ready->find("watched ports"), std::string::npos) << *ready;
  EXPECT_TRUE(listen_port_from_log(daemon.log()).has_value());
  // WATCHDOG_USEC=400ms: pings every 100 ms from the event loop.
  const auto pings = std::count(messages.begin(), messages.end(), std::string("WATCHDOG=1"));
  EXPECT_GE(pings, 8) << pings;
  EXPECT_LE(pings, 20) << pings;
  // The status follows the targets: failing ones show up once probed.
  EXPECT_TRUE(std::any_of(messages.begin(), messages.end(), [](const std::string& m) {
    return m.rfind("STATUS=6 targets, 5 failing", 0) == 0;
  })) << "statuses seen: " << [&] {
    std::string all;
    for (const auto& m : messages) {
      if (m.rfind("STATUS", 0) == 0 || m.find("READY") != std::string::npos) {
        all += m + " | ";
      }
    }
    return all;
  }();
  EXPECT_EQ(daemon.stop(SIGTERM, 3s), std::optional<int>(0));
}

TEST_F(RunningDaemon, UnderTheJournalLinesCarryNoTimestamp) {
  config_file_ = dir_.write("portsentinel.yaml", config());
  Process daemon({portsentinel_binary(), "run", "--config", config_file_, "--web.listen-address",
                  "127.0.0.1:0", "--state-dir", dir_.path()},
                 dir_.file("daemon.log"), -1, {"JOURNAL_STREAM=8:12345"});
  ASSERT_TRUE(eventually([&] { return listen_port_from_log(daemon.log()).has_value(); }));
  const std::string log = daemon.log();
  // The journal stamps every line itself: ours start with the level.
  EXPECT_EQ(log.rfind("info portsentinel started", 0), 0u) << log;
}

TEST_F(RunningDaemon, JsonLogs) {
  auto daemon = start(config("", "log: {format: json}\n"));
  ASSERT_TRUE(eventually([&] { return daemon->log().find("plaintext_http") != std::string::npos; }));
  std::istringstream lines(daemon->log());
  std::string line;
  int n = 0;
  while (std::getline(lines, line)) {
    EXPECT_EQ(line.front(), '{') << line;
    EXPECT_EQ(line.back(), '}') << line;
    EXPECT_NE(line.find("\"level\":"), std::string::npos) << line;
    ++n;
  }
  EXPECT_GE(n, 3);
  EXPECT_NE(daemon->log().find("\"target\":\"plain\",\"from\":\"none\",\"reason\":\"plaintext_http\""),
            std::string::npos)
      << daemon->log();
}

}  // namespace
}  // namespace portsentinel::testing
