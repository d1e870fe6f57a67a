// Real nginx from Debian, one server block per port/protocol mistake, on ports chosen at run
// time in a temporary prefix. Each test asserts the exact reason or path-group state.
#include <signal.h>
#include <unistd.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <gtest/gtest.h>

#include "daemon/path_groups.h"
#include "probes/probe.h"
#include "probes/tls_context.h"
#include "tests/support/nginx.h"
#include "tests/support/servers.h"
#include "tests/support/pki.h"
#include "tests/support/process.h"

namespace portsentinel::testing {
namespace {

using namespace std::chrono_literals;
using probes::Reason;
namespace asio = boost::asio;

class NginxTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (!Nginx::available()) {
      return;
    }
    dir_ = new TempDir();
    pki_ = new TestPki(*dir_);
    origin_cert_ = new TestPki::Leaf(pki_->issue("origin", {}));
    TestPki::LeafOptions cdn;
    cdn.common_name = "cdn edge";
    cdn_cert_ = new TestPki::Leaf(pki_->issue("cdn", cdn));
    const auto ports = free_ports(7);  // distinct: a shared port would merge server blocks
    size_t next = 0;
    for (auto* p : {&https_, &no_ssl_, &ssl_on_plain_, &redirect_, &no_redirect_, &cdn_same_,
                    &cdn_other_}) {
      *p = ports[next++];
    }
    auto ssl = [](const TestPki::Leaf& leaf) {
      return "    ssl_certificate " + leaf.cert_file + ";\n    ssl_certificate_key " +
             leaf.key_file + ";\n";
    };
    const std::string port = std::to_string(https_);
    const std::string servers =
        // The origin, correct.
        "  server {\n    listen 127.0.0.1:" + port + " ssl;\n" + ssl(*origin_cert_) +
        "    return 200 \"origin\\n\";\n  }\n"
        // `listen P;` without ssl, where HTTPS was meant.
        "  server {\n    listen 127.0.0.1:" + std::to_string(no_ssl_) + ";\n" +
        "    return 200 \"plain\\n\";\n  }\n"
        // `listen P ssl;` on what should be the plain port.
        "  server {\n    listen 127.0.0.1:" + std::to_string(ssl_on_plain_) + " ssl;\n" +
        ssl(*origin_cert_) + "    return 200 \"tls\\n\";\n  }\n"
        // A plain port that redirects, and one that does not.
        "  server {\n    listen 127.0.0.1:" + std::to_string(redirect_) + ";\n" +
        "    return 301 https://$host$request_uri;\n  }\n"
        "  server {\n    listen 127.0.0.1:" + std::to_string(no_redirect_) + ";\n" +
        "    return 200 \"no redirect\\n\";\n  }\n"
        // Two "CDN edges" proxying to the origin: one with the origin's certificate, one
        // with its own.
        "  server {\n    listen 127.0.0.1:" + std::to_string(cdn_same_) + " ssl;\n" +
        ssl(*origin_cert_) + "    location / { proxy_pass https://127.0.0.1:" + port +
        "; proxy_ssl_verify off; }\n  }\n"
        "  server {\n    listen 127.0.0.1:" + std::to_string(cdn_other_) + " ssl;\n" +
        ssl(*cdn_cert_) + "    location / { proxy_pass https://127.0.0.1:" + port +
        "; proxy_ssl_verify off; }\n  }\n";
    nginx_ = new Nginx(*dir_, servers,
                       {https_, no_ssl_, ssl_on_plain_, redirect_, no_redirect_, cdn_same_,
                        cdn_other_});
  }
  static void TearDownTestSuite() {
    delete nginx_;
    delete cdn_cert_;
    delete origin_cert_;
    delete pki_;
    delete dir_;
  }
  void SetUp() override {
    if (!Nginx::available()) {
      GTEST_SKIP() << "nginx is not installed (make deps installs Debian's nginx)";
    }
  }

  probes::ProbeResult probe(uint16_t port, config::Expect expect, bool redirect = false) {
    asio::io_context io;
    probes::Resolver resolver(1);
    probes::TlsContextCache contexts;
    probes::ProbeSpec spec;
    spec.address = {"127.0.0.1", port};
    spec.expect = expect;
    spec.server_name = "localhost";
    spec.timeout = 2s;
    spec.http.redirect_to_https = redirect;
    config::TlsOptions tls;
    tls.ca_file = pki_->ca_file();
    spec.tls_context = contexts.get(tls);
    probes::ProbeResult out;
    asio::co_spawn(io, probes::run_probe(spec, resolver),
                   [&](std::exception_ptr, probes::ProbeResult r) { out = std::move(r); });
    io.run();
    return out;
  }

  static daemon::GroupMember member(const std::string& name, const probes::ProbeResult& r) {
    daemon::GroupMember m;
    m.name = name;
    m.probed = true;
    m.reason = r.reason;
    if (r.tls && r.tls->leaf) {
      m.fingerprint = r.tls->leaf->fingerprint_sha256;
      m.issuer = r.tls->leaf->issuer;
      m.subject = r.tls->leaf->subject;
    }
    return m;
  }

  static TempDir* dir_;
  static TestPki* pki_;
  static TestPki::Leaf* origin_cert_;
  static TestPki::Leaf* cdn_cert_;
  static Nginx* nginx_;
  static uint16_t https_, no_ssl_, ssl_on_plain_, redirect_, no_redirect_, cdn_same_, cdn_other_;
};

TempDir* NginxTest::dir_ = nullptr;
TestPki* NginxTest::pki_ = nullptr;
TestPki::Leaf* NginxTest::origin_cert_ = nullptr;
TestPki::Leaf* NginxTest::cdn_cert_ = nullptr;
Nginx* NginxTest::nginx_ = nullptr;
uint16_t NginxTest::https_, NginxTest::no_ssl_, NginxTest::ssl_on_plain_, NginxTest::redirect_,
    NginxTest::no_redirect_, NginxTest::cdn_same_, NginxTest::cdn_other_;

TEST_F(NginxTest, CorrectHttpsIsOk) {
  const auto r = probe(https_, config::Expect::kHttps);
  EXPECT_EQ(r.reason, Reason::kOk) << r.detail;
  ASSERT_TRUE(r.http);
  EXPECT_EQ(r.http->status, 200);
  EXPECT_EQ(r.tls->leaf->fingerprint_sha256, origin_cert_->fingerprint_sha256);
}

TEST_F(NginxTest, ListenWithoutSslProbedAsHttpsIsPlaintextHttp) {
  const auto r = probe(no_ssl_, config::Expect::kHttps);
  EXPECT_EQ(r.reason, Reason::kPlaintextHttp) << r.detail;
  EXPECT_NE(r.detail.find("HTTP/1.1 400 Bad Request"), std::string::npos) << r.detail;
}

TEST_F(NginxTest, ListenSslProbedAsHttpIsTlsOnPlainPort) {
  const auto r = probe(ssl_on_plain_, config::Expect::kHttp);
  EXPECT_EQ(r.reason, Reason::kTlsOnPlainPort) << r.detail;
  EXPECT_NE(r.detail.find("The plain HTTP request was sent to HTTPS port"), std::string::npos)
      << r.detail;
}

TEST_F(NginxTest, PlainPortThatRedirectsIsOk) {
  const auto r = probe(redirect_, config::Expect::kHttp, true);
  EXPECT_EQ(r.reason, Reason::kOk) << r.detail;
  EXPECT_EQ(r.http->status, 301);
  EXPECT_EQ(r.http->location, "https://localhost/");
}

TEST_F(NginxTest, PlainPortWithoutRedirectIsNoHttpsRedirect) {
  const auto r = probe(no_redirect_, config::Expect::kHttp, true);
  EXPECT_EQ(r.reason, Reason::kNoHttpsRedirect) << r.detail;
  EXPECT_EQ(r.http->status, 200);
}

TEST_F(NginxTest, CdnWithTheOriginsCertificateIsConsistent) {
  const auto origin = probe(https_, config::Expect::kHttps);
  const auto cdn = probe(cdn_same_, config::Expect::kHttps);
  ASSERT_EQ(cdn.reason, Reason::kOk) << cdn.detail;
  const auto v = daemon::evaluate_path_group({member("origin", origin), member("cdn", cdn)});
  EXPECT_TRUE(v.known);
  EXPECT_TRUE(v.consistent) << v.explanation;
}

TEST_F(NginxTest, CdnWithItsOwnCertificateIsAPathMismatch) {
  const auto origin = probe(https_, config::Expect::kHttps);
  const auto cdn = probe(cdn_other_, config::Expect::kHttps);
  ASSERT_EQ(cdn.reason, Reason::kOk) << cdn.detail;
  const auto v = daemon::evaluate_path_group(
      {member("origin", origin), member("cdn", cdn), member("origin-again", origin)});
  EXPECT_TRUE(v.known);
  EXPECT_FALSE(v.consistent);
  EXPECT_NE(v.explanation.find("cdn serves CN=cdn edge"), std::string::npos) << v.explanation;
  // Only the CDN differs: the two origin members agree and are not listed.
  EXPECT_EQ(v.explanation.find("; "), std::string::npos) << v.explanation;
  EXPECT_EQ(v.explanation.find("origin-again serves"), std::string::npos) << v.explanation;
}

TEST_F(NginxTest, PathWithoutTlsIsAPathMismatch) {
  const auto origin = probe(https_, config::Expect::kHttps);
  const auto plain = probe(no_ssl_, config::Expect::kHttps);
  const auto v = daemon::evaluate_path_group({member("origin", origin), member("lb", plain)});
  EXPECT_FALSE(v.consistent);
  EXPECT_NE(v.explanation.find("lb fails with plaintext_http"), std::string::npos)
      << v.explanation;
}

// The daemon over the same nginx: reasons and path groups in /metrics, one log line per change.
TEST_F(NginxTest, DaemonReportsReasonsAndPathGroups) {
  auto target = [&](const std::string& name, uint16_t port, const std::string& expect,
                    const std::string& extra = "") {
    return "  - {name: " + name + ", address: \"127.0.0.1:" + std::to_string(port) +
           "\", expect: " + expect + ", server_name: localhost, tls: {ca_file: " +
           pki_->ca_file() + "}" + extra + "}\n";
  };
  const std::string cfg = dir_->write(
      "daemon.yaml",
      "defaults: {interval: 300ms, timeout: 250ms}\ntargets:\n" +
          target("origin", https_, "https") + target("no-ssl", no_ssl_, "https") +
          target("ssl-on-80", ssl_on_plain_, "http") +
          target("redirect", redirect_, "http", ", http: {redirect_to_https: true}") +
          target("no-redirect", no_redirect_, "http", ", http: {redirect_to_https: true}") +
          target("cdn-same", cdn_same_, "https") + target("cdn-other", cdn_other_, "https") +
          "path_groups:\n"
          "  - {name: same, targets: [origin, cdn-same]}\n"
          "  - {name: mismatch, targets: [origin, cdn-other]}\n");
  Process daemon({portsentinel_binary(), "run", "--config", cfg, "--web.listen-address",
                  "127.0.0.1:0", "--state-dir", dir_->path()},
                 dir_->file("daemon.log"));
  std::optional<uint16_t> port;
  ASSERT_TRUE(eventually([&] { return (port = listen_port_from_log(daemon.log())).has_value(); }));
  const auto scrape = [&] {
    auto reply = http_request(*port, "GET", "/metrics");
    return reply ? reply->body : std::string();
  };
  const std::vector<std::string> lines{
      "portsentinel_probe_reason{reason=\"ok\",target=\"origin\"} 1",
      "portsentinel_probe_reason{reason=\"plaintext_http\",target=\"no-ssl\"} 1",
      "portsentinel_probe_reason{reason=\"tls_on_plain_port\",target=\"ssl-on-80\"} 1",
      "portsentinel_probe_reason{reason=\"ok\",target=\"redirect\"} 1",
      "portsentinel_probe_reason{reason=\"no_https_redirect\",target=\"no-redirect\"} 1",
      "portsentinel_http_status_code{target=\"redirect\"} 301",
      "portsentinel_path_group_consistent{group=\"same\"} 1",
      "portsentinel_path_group_consistent{group=\"mismatch\"} 0",
  };
  for (const auto& line : lines) {
    EXPECT_TRUE(eventually([&] { return scrape().find(line) != std::string::npos; }))
        << line << "\n" << scrape() << daemon.log();
  }
  EXPECT_NE(daemon.log().find("path group inconsistent group=mismatch"), std::string::npos)
      << daemon.log();
  EXPECT_NE(daemon.log().find("cdn-other serves CN=cdn edge"), std::string::npos) << daemon.log();
  // The status line of a plaintext answer is in the log.
  EXPECT_NE(daemon.log().find("HTTP/1.1 400 Bad Request"), std::string::npos);
  EXPECT_EQ(daemon.stop(SIGTERM, 3s), std::optional<int>(0));
}

}  // namespace
}  // namespace portsentinel::testing
