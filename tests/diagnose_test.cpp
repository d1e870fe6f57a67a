// `portsentinel diagnose` as a person runs it: each failure reason in the JSON with the right
// exit code, against loopback servers; addresses that disagree, through a hosts file in a mount
// namespace; the nginx config audit on planted mistakes, with their lines; a DNS failure inside
// a namespace whose resolver is unreachable.
#include <fcntl.h>
#include <openssl/ssl.h>
#include <sched.h>
#include <unistd.h>

#include <gtest/gtest.h>
#include <thread>

#include "daemon/diagnose.h"
#include "daemon/nginx_audit.h"
#include "tests/support/pki.h"
#include "tests/support/process.h"
#include "tests/support/servers.h"

namespace portsentinel::testing {
namespace {

using namespace std::chrono_literals;

class DiagnoseTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir();
    pki_ = new TestPki(*dir_);
  }
  static void TearDownTestSuite() {
    delete pki_;
    delete dir_;
  }
  void TearDown() override {
    servers_.run([&] { held_.clear(); });
  }

  uint16_t serve(ServerOptions options) {
    uint16_t port = 0;
    servers_.run([&] {
      held_.push_back(std::make_unique<LoopbackServer>(servers_.io(), std::move(options)));
      port = held_.back()->port();
    });
    return port;
  }
  uint16_t serve_tls(const TestPki::Leaf& leaf) {
    return serve({Script::kTls, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
                  make_server_tls(leaf)});
  }

  // Runs diagnose --json on 127.0.0.1:port; returns the exit code, fills the JSON.
  int diagnose(uint16_t port, std::string* json, uint16_t http_port = 0,
               const std::string& nginx_config = "") {
    const std::string empty = dir_->write("empty.conf", "");
    return run_command({portsentinel_binary(), "diagnose", "127.0.0.1:" + std::to_string(port),
                        "--json", "--ca-file", pki_->ca_file(), "--server-name", "localhost",
                        "--timeout", "500ms", "--http-port",
                        std::to_string(http_port != 0 ? http_port : refused_port()),
                        "--nginx-config", nginx_config.empty() ? empty : nginx_config},
                       json);
  }

  static TempDir* dir_;
  static TestPki* pki_;
  ServerThread servers_;
  std::vector<std::unique_ptr<LoopbackServer>> held_;
};
TempDir* DiagnoseTest::dir_ = nullptr;
TestPki* DiagnoseTest::pki_ = nullptr;

// The JSON object of the first check `name` with `reason`; "" when there is none.
std::string check_json(const std::string& json, const std::string& name,
                       const std::string& reason) {
  size_t at = 0;
  while ((at = json.find("{\"name\":\"" + name + "\"", at)) != std::string::npos) {
    const std::string object = json.substr(at, json.find('}', at) - at);
    if (object.find("\"reason\":\"" + reason + "\"") != std::string::npos) {
      return object;
    }
    ++at;
  }
  return "";
}

bool has_check(const std::string& json, const std::string& name, const std::string& reason) {
  return !check_json(json, name, reason).empty();
}

TEST_F(DiagnoseTest, HealthyHttpsExitsZero) {
  std::string json;
  const uint16_t https = serve_tls(pki_->issue("good", {}));
  const uint16_t redirect =
      serve({Script::kHttp, "HTTP/1.1 301 Moved Permanently\r\nLocation: https://localhost/\r\n"
                            "Content-Length: 0\r\n\r\n"});
  EXPECT_EQ(diagnose(https, &json, redirect), 0) << json;
  for (const char* name : {"dns", "tcp_connect", "tls_handshake", "certificate", "http",
                           "http_redirect", "local_listener", "nginx_config"}) {
    EXPECT_TRUE(has_check(json, name, "ok")) << name << "\n" << json;
  }
  EXPECT_NE(json.find("\"ok\":true"), std::string::npos);
  EXPECT_NE(json.find("TLSv1.3"), std::string::npos);
  // The owner is this test process, which serves the port; not diagnose itself.
  const std::string owner = check_json(json, "local_listener", "ok");
  EXPECT_NE(owner.find("diagnose_tests (pid " + std::to_string(getpid())), std::string::npos)
      << owner;
  EXPECT_EQ(owner.find("portsentinel (pid"), std::string::npos) << owner;
}

// A remedy names the port its check is about: the plain HTTP port, a config's listen port.
TEST_F(DiagnoseTest, RemediesNameThePortTheyAreAbout) {
  const uint16_t https = serve_tls(pki_->issue("remedy-ports", {}));
  const uint16_t plain = refused_port();
  // Only audited, never started: nothing binds 8443. It is a port the audit holds to TLS, and
  // not the one diagnosed, so the finding's remedy must name it.
  const std::string conf = dir_->write(
      "ports.conf", "events {}\nhttp {\n  server {\n    listen 127.0.0.1:8443;\n  }\n}\n");
  std::string json;
  diagnose(https, &json, plain, conf);
  const std::string redirect = check_json(json, "http_redirect", "connection_refused");
  EXPECT_NE(redirect.find("sport = :" + std::to_string(plain) + "'"), std::string::npos)
      << redirect;
  EXPECT_EQ(redirect.find(":" + std::to_string(https)), std::string::npos) << redirect;
  const std::string audit = check_json(json, "nginx_config", "plaintext_http");
  EXPECT_NE(audit.find("ports.conf:4"), std::string::npos) << json;
  EXPECT_NE(audit.find("curl -v http://127.0.0.1:8443/"), std::string::npos) << audit;
}

TEST_F(DiagnoseTest, EachFailureReasonWithExitOne) {
  TestPki::LeafOptions expired;
  expired.not_before = -48h;
  expired.not_after = -24h;
  TestPki::LeafOptions wrong_name;
  wrong_name.dns_names = {"other.example"};
  wrong_name.ip_addresses = {};
  TestPki::LeafOptions future;
  future.not_before = 24h;
  future.not_after = 48h;
  TestPki::LeafOptions self_signed;
  self_signed.self_signed = true;
  const auto good = pki_->issue("alerting", {});
  const auto alerting = [&](int alert) {
    return serve({Script::kTls, "", make_server_tls(good, {.fatal_alert = alert})});
  };
  const std::vector<std::tuple<uint16_t, std::string, std::string>> cases{
      {refused_port(), "tcp_connect", "connection_refused"},
      {serve({Script::kHttp}), "tls_handshake", "plaintext_http"},
      {serve({Script::kSshBanner}), "tls_handshake", "not_tls"},
      {serve({Script::kHang}), "tls_handshake", "handshake_timeout"},
      {serve({Script::kAcceptClose}), "tls_handshake", "handshake_eof"},
      {serve({Script::kAcceptReset}), "tls_handshake", "handshake_reset"},
      {alerting(SSL_AD_UNRECOGNIZED_NAME), "tls_handshake", "tls_unrecognized_name"},
      {alerting(SSL_AD_HANDSHAKE_FAILURE), "tls_handshake", "tls_handshake_failure"},
      {alerting(SSL_AD_ACCESS_DENIED), "tls_handshake", "tls_alert"},
      {serve_tls(pki_->issue("expired", expired)), "certificate", "cert_expired"},
      {serve_tls(pki_->issue("future", future)), "certificate", "cert_not_yet_valid"},
      {serve_tls(pki_->issue("selfsigned", self_signed)), "certificate", "cert_untrusted"},
      {serve_tls(pki_->issue("wrong", wrong_name)), "certificate", "cert_hostname_mismatch"},
      {serve({Script::kTls, "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n",
              make_server_tls(good)}),
       "http", "http_status"},
  };
  for (const auto& [port, name, reason] : cases) {
    std::string json;
    EXPECT_EQ(diagnose(port, &json), 1) << reason << "\n" << json;
    EXPECT_TRUE(has_check(json, name, reason)) << reason << "\n" << json;
    EXPECT_NE(json.find("\"problem\":true"), std::string::npos);
    EXPECT_NE(json.find("\"remedy\":\"" + std::string(probes::reason_remedy_for(
                                             *probes::reason_from_name(reason), "127.0.0.1",
                                             port, "localhost"))
                                             .substr(0, 20)),
              std::string::npos)
        << reason << "\n" << json;
  }
}

TEST_F(DiagnoseTest, PlainPortWithoutRedirectIsAProblem) {
  std::string json;
  const uint16_t https = serve_tls(pki_->issue("good2", {}));
  const uint16_t plain =
      serve({Script::kHttp, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"});
  EXPECT_EQ(diagnose(https, &json, plain), 1) << json;
  EXPECT_TRUE(has_check(json, "http_redirect", "no_https_redirect")) << json;
}

TEST_F(DiagnoseTest, UsageErrorsExitTwo) {
  std::string out;
  EXPECT_EQ(run_command({portsentinel_binary(), "diagnose"}, &out), 2);
  EXPECT_EQ(run_command({portsentinel_binary(), "diagnose", "a", "b"}, &out), 2);
  EXPECT_EQ(run_command({portsentinel_binary(), "diagnose", "x:1", "--timeout", "soon"}, &out), 2);
  EXPECT_EQ(run_command({portsentinel_binary(), "diagnose", "x:99999"}, &out), 2);
}

TEST_F(DiagnoseTest, HumanReportHasMarksAndFixes) {
  std::string out;
  const std::string empty = dir_->write("empty.conf", "");
  EXPECT_EQ(run_command({portsentinel_binary(), "diagnose",
                         "127.0.0.1:" + std::to_string(serve({Script::kHttp})), "--timeout",
                         "500ms", "--http-port", std::to_string(refused_port()),
                         "--nginx-config", empty},
                        &out),
            1);
  EXPECT_NE(out.find("✘ tls_handshake"), std::string::npos) << out;
  EXPECT_NE(out.find("plaintext_http:"), std::string::npos) << out;
  EXPECT_NE(out.find("fix: The port answers plain HTTP"), std::string::npos) << out;
  EXPECT_EQ(out.find("\033["), std::string::npos) << "colour without a terminal";
  EXPECT_NE(out.find("Problems found."), std::string::npos);
}

TEST(AddressesDisagree, ADifferentCertificateOrAFailureOnOneAddress) {
  probes::ProbeResult a;
  a.reason = probes::Reason::kOk;
  probes::CertFacts leaf;
  leaf.fingerprint_sha256 = "aaaa";
  a.tls = probes::TlsFacts{"TLSv1.3", "x", leaf, true};
  probes::ProbeResult b = a;
  EXPECT_FALSE(daemon::addresses_disagree({{"10.0.0.1:443", a}, {"10.0.0.2:443", b}}));
  b.tls->leaf->fingerprint_sha256 = "bbbb";
  const auto d = daemon::addresses_disagree({{"10.0.0.1:443", a}, {"10.0.0.2:443", b}});
  ASSERT_TRUE(d);
  EXPECT_EQ(*d, "10.0.0.1:443: ok sha256 aaaa…; 10.0.0.2:443: ok sha256 bbbb…");
  probes::ProbeResult refused;
  refused.reason = probes::Reason::kConnectionRefused;
  EXPECT_TRUE(daemon::addresses_disagree({{"10.0.0.1:443", a}, {"[::1]:443", refused}}));
}

TEST_F(DiagnoseTest, NginxConfigAuditFindsEachPlantedMistakeWithItsLine) {
  const auto good = pki_->issue("cfg-good", {});
  const auto other = pki_->issue("cfg-other", {});
  TestPki::LeafOptions old;
  old.not_before = -48h;
  old.not_after = -24h;
  const auto expired = pki_->issue("cfg-expired", old);
  dir_->write("extra.conf", "server {\n    listen 80 ssl;\n    ssl_certificate " +
                                good.cert_file + ";\n    ssl_certificate_key " + good.key_file +
                                ";\n}\n");
  const std::string conf = dir_->write(
      "nginx.conf",
      "events {}\n"                                                          // 1
      "http {\n"                                                             // 2
      "  server {\n"                                                         // 3
      "    listen 443;\n"                                                    // 4
      "    server_name a.example;\n"                                         // 5
      "  }\n"                                                                // 6
      "  server {\n"                                                         // 7
      "    listen 8443 ssl;\n"                                               // 8
      "    ssl_certificate /nonexistent/cert.pem;\n"                         // 9
      "    ssl_certificate_key /nonexistent/key.pem;\n"                      // 10
      "  }\n"                                                                // 11
      "  server {\n"                                                         // 12
      "    listen [::]:443 ssl;\n"                                           // 13
      "    server_name localhost other.example;\n"                           // 14
      "    ssl_certificate " + good.cert_file + ";\n"                        // 15
      "    ssl_certificate_key " + other.key_file + ";\n"                    // 16
      "    location / { return 200; }\n"                                     // 17
      "  }\n"                                                                // 18
      "  server {\n"                                                         // 19
      "    listen 9443 ssl;\n"                                               // 20
      "    ssl_certificate " + expired.cert_file + ";\n"                     // 21
      "    ssl_certificate_key " + expired.key_file + ";\n"                  // 22
      "  }\n"                                                                // 23
      "  include extra.conf;\n"                                              // 24
      "}\n");
  const auto findings = daemon::audit_nginx_file(conf);
  auto found = [&](probes::Reason r, const std::string& file, int line) {
    return std::any_of(findings.begin(), findings.end(), [&](const daemon::AuditFinding& f) {
      return f.reason == r && f.file == file && f.line == line;
    });
  };
  const std::string extra = dir_->path() + "/extra.conf";
  EXPECT_TRUE(found(probes::Reason::kPlaintextHttp, conf, 4));
  EXPECT_TRUE(found(probes::Reason::kConfigError, conf, 9));   // missing certificate
  EXPECT_TRUE(found(probes::Reason::kConfigError, conf, 16));  // key does not match
  EXPECT_TRUE(found(probes::Reason::kCertHostnameMismatch, conf, 14));  // other.example
  EXPECT_TRUE(found(probes::Reason::kCertExpired, conf, 21));
  EXPECT_TRUE(found(probes::Reason::kTlsOnPlainPort, extra, 2));  // through include
  EXPECT_EQ(findings.size(), 6u);
  for (const auto& f : findings) {
    EXPECT_FALSE(f.detail.empty());
  }

  // The same through the CLI: each finding as a problem with FILE:LINE, exit 1.
  std::string json;
  const uint16_t https = serve_tls(good);
  EXPECT_EQ(diagnose(https, &json, 0, conf), 1) << json;
  EXPECT_TRUE(has_check(json, "nginx_config", "plaintext_http")) << json;
  EXPECT_NE(json.find(conf + ":4: listen 443 without ssl"), std::string::npos) << json;
  EXPECT_NE(json.find(extra + ":2: listen 80 ssl"), std::string::npos) << json;
}

TEST(NginxAudit, TheDiagnosedPortMustSpeakTls) {
  TempDir dir;
  const auto conf = dir.write("c.conf", "http {\n  server {\n    listen 29301;\n  }\n}\n");
  EXPECT_TRUE(daemon::audit_nginx_file(conf).empty());
  const auto findings = daemon::audit_nginx_file(conf, {443, 8443, 29301});
  ASSERT_EQ(findings.size(), 1u);
  EXPECT_EQ(findings[0].line, 3);
  EXPECT_EQ(findings[0].reason, probes::Reason::kPlaintextHttp);
}

TEST_F(DiagnoseTest, ApacheConfigAuditFindsEachPlantedMistakeWithItsLine) {
  const auto good = pki_->issue("ap-good", {});
  const auto other = pki_->issue("ap-other", {});
  dir_->write("ports.conf", "Listen 80\nListen 443\n");
  const std::string conf = dir_->write(
      "apache2.conf",
      "Include ports.conf\n"                                   // 1
      "<VirtualHost *:443>\n"                                  // 2: no SSLEngine on
      "    ServerName a.example\n"                             // 3
      "</VirtualHost>\n"                                       // 4
      "<VirtualHost *:80>\n"                                   // 5: SSLEngine on, port 80
      "    SSLEngine on\n"                                     // 6
      "    SSLCertificateFile " + good.cert_file + "\n"        // 7
      "    SSLCertificateKeyFile " + good.key_file + "\n"      // 8
      "</VirtualHost>\n"                                       // 9
      "<VirtualHost _default_:8443>\n"                         // 10
      "    SSLEngine on\n"                                     // 11
      "    ServerName localhost\n"                             // 12
      "    ServerAlias shop.example\n"                         // 13: not covered
      "    SSLCertificateFile " + good.cert_file + "\n"        // 14
      "    SSLCertificateKeyFile " + other.key_file + "\n"     // 15: wrong key
      "</VirtualHost>\n");
  const auto findings = daemon::audit_apache_file(conf);
  auto found = [&](probes::Reason r, int line) {
    return std::any_of(findings.begin(), findings.end(), [&](const daemon::AuditFinding& f) {
      return f.reason == r && f.file == conf && f.line == line;
    });
  };
  EXPECT_TRUE(found(probes::Reason::kPlaintextHttp, 2));
  EXPECT_TRUE(found(probes::Reason::kTlsOnPlainPort, 5));
  EXPECT_TRUE(found(probes::Reason::kCertHostnameMismatch, 13));
  EXPECT_TRUE(found(probes::Reason::kConfigError, 15));
  EXPECT_EQ(findings.size(), 4u);

  std::string json;
  const std::string empty = dir_->write("empty.conf", "");
  EXPECT_EQ(run_command({portsentinel_binary(), "diagnose",
                         "127.0.0.1:" + std::to_string(serve_tls(good)), "--json", "--ca-file",
                         pki_->ca_file(), "--server-name", "localhost", "--timeout", "500ms",
                         "--http-port", std::to_string(refused_port()), "--nginx-config", empty,
                         "--apache-config", conf},
                        &json),
            1);
  EXPECT_TRUE(has_check(json, "apache_config", "tls_on_plain_port")) << json;
  EXPECT_NE(json.find(conf + ":2: <VirtualHost *:443> without SSLEngine on"), std::string::npos)
      << json;
}

TEST(NginxDump, MarkersGiveFilesAndLines) {
  const std::string dump =
      "nginx: the configuration file /etc/nginx/nginx.conf syntax is ok\n"
      "# configuration file /etc/nginx/nginx.conf:\n"
      "events {}\n"
      "http {\n"
      "  include /etc/nginx/sites-enabled/*;\n"
      "}\n"
      "\n"
      "# configuration file /etc/nginx/sites-enabled/shop:\n"
      "server {\n"
      "  listen 80;\n"
      "  listen 443;\n"
      "}\n";
  const auto findings = daemon::audit_nginx_dump(dump);
  ASSERT_EQ(findings.size(), 1u);
  EXPECT_EQ(findings[0].file, "/etc/nginx/sites-enabled/shop");
  EXPECT_EQ(findings[0].line, 3);
  EXPECT_EQ(findings[0].reason, probes::Reason::kPlaintextHttp);
}

// One name, two addresses serving different certificates (a load balancer member or a DNS
// record left on a stale host): path_mismatch. The name lives in a hosts file that diagnose
// sees in a mount namespace made here, so no resolver is asked.
TEST_F(DiagnoseTest, AddressesServingDifferentCertificatesArePathMismatch) {
  if (geteuid() != 0) {
    GTEST_SKIP() << "needs root for a mount namespace with its own /etc/hosts (CI runs as root)";
  }
  const uint16_t port = serve_tls(pki_->issue("member-a", {}));
  ServerOptions second{Script::kTls, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
                       make_server_tls(pki_->issue("member-b", {})), "127.0.0.2"};
  second.port = port;
  serve(second);
  const std::string hosts =
      dir_->write("hosts", "127.0.0.1 shop.portsentinel.test\n127.0.0.2 shop.portsentinel.test\n");
  const std::string empty = dir_->write("empty.conf", "");
  std::string json;
  const int rc = run_command(
      {"unshare", "--mount", "--propagation", "private", "sh", "-c",
       "mount --bind \"$0\" /etc/hosts && exec \"$@\"", hosts, portsentinel_binary(),
       "diagnose", "shop.portsentinel.test:" + std::to_string(port), "--json", "--ca-file",
       pki_->ca_file(), "--server-name", "localhost", "--timeout", "500ms", "--http-port",
       std::to_string(refused_port()), "--nginx-config", empty},
      &json);
  EXPECT_EQ(rc, 1) << json;
  EXPECT_TRUE(has_check(json, "dns", "ok")) << json;
  EXPECT_TRUE(has_check(json, "addresses_agree", "path_mismatch")) << json;
  EXPECT_NE(json.find("127.0.0.2:" + std::to_string(port)), std::string::npos) << json;
}

// DNS: inside a namespace made here, whose resolver is unreachable; nothing leaves it.
TEST(DiagnoseNetns, UnresolvableNameIsDnsError) {
  if (geteuid() != 0) {
    GTEST_SKIP() << "needs root for a network namespace (CI runs as root)";
  }
  const std::string ns = "psdiag-" + std::to_string(getpid());
  ASSERT_EQ(run_command({"ip", "netns", "add", ns}), 0);
  run_command({"ip", "-n", ns, "link", "set", "lo", "up"});
  std::string json;
  int rc = -1;
  std::thread inside([&] {
    const int fd = open(("/run/netns/" + ns).c_str(), O_RDONLY | O_CLOEXEC);
    if (fd >= 0 && setns(fd, CLONE_NEWNET) == 0) {
      rc = run_command({portsentinel_binary(), "diagnose", "portsentinel-test.invalid", "--json",
                        "--timeout", "2s"},
                       &json);
    }
    close(fd);
  });
  inside.join();
  run_command({"ip", "netns", "del", ns});
  EXPECT_EQ(rc, 1) << json;
  EXPECT_TRUE(has_check(json, "dns", "dns_error")) << json;
}

}  // namespace
}  // namespace portsentinel::testing
