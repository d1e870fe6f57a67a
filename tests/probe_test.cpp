// Each reason a single machine can reproduce, against real servers on 127.0.0.1:0.
#include <openssl/ssl.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <chrono>
#include <ctime>
#include <filesystem>
#include <gtest/gtest.h>

#include "probes/probe.h"
#include "probes/tls_context.h"
#include "tests/support/pki.h"
#include "tests/support/servers.h"

namespace portsentinel::probes {
namespace {

using testing::LoopbackServer;
using testing::Script;
using testing::ServerOptions;
using testing::TestPki;

class ProbeTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new testing::TempDir();
    pki_ = new TestPki(*dir_);
    good_ = new TestPki::Leaf(pki_->issue("good", {}));
  }
  static void TearDownTestSuite() {
    delete good_;
    delete pki_;
    delete dir_;
  }

  ProbeResult probe(const ProbeSpec& spec) {
    std::optional<ProbeResult> out;
    std::exception_ptr error;
    asio::co_spawn(io_, run_probe(spec, resolver_),
                   [&](std::exception_ptr e, ProbeResult r) {
                     error = e;
                     out = std::move(r);
                     io_.stop();
                   });
    io_.restart();
    io_.run();
    if (error) {
      std::rethrow_exception(error);
    }
    return *out;
  }

  ProbeSpec spec(uint16_t port, config::Expect expect, config::TlsOptions tls = {}) {
    ProbeSpec s;
    s.address = {"127.0.0.1", port};
    s.expect = expect;
    s.server_name = "localhost";
    s.timeout = std::chrono::milliseconds(2000);
    if (tls.ca_file.empty()) {
      tls.ca_file = pki_->ca_file();
    }
    s.tls_context = contexts_.get(tls);
    return s;
  }

  ProbeResult probe_tls_server(const TestPki::Leaf& leaf, testing::TlsServerOptions options = {},
                               config::TlsOptions client = {}) {
    LoopbackServer server(io_, {Script::kTls, kOkResponse, testing::make_server_tls(leaf, options)});
    return probe(spec(server.port(), config::Expect::kTls, client));
  }

  static constexpr const char* kOkResponse =
      "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok";

  static testing::TempDir* dir_;
  static TestPki* pki_;
  static TestPki::Leaf* good_;
  asio::io_context io_;
  Resolver resolver_{1};
  TlsContextCache contexts_;
};

testing::TempDir* ProbeTest::dir_ = nullptr;
TestPki* ProbeTest::pki_ = nullptr;
TestPki::Leaf* ProbeTest::good_ = nullptr;

TEST_F(ProbeTest, TcpOk) {
  LoopbackServer server(io_, {Script::kHang});
  const auto r = probe(spec(server.port(), config::Expect::kTcp));
  EXPECT_EQ(r.reason, Reason::kOk) << r.detail;
  EXPECT_EQ(r.peer, server.host_port());
  EXPECT_GT(r.phases.connect, 0.0);
  EXPECT_GE(r.phases.total, r.phases.connect);
}

TEST_F(ProbeTest, ConnectionRefused) {
  const auto r = probe(spec(testing::refused_port(), config::Expect::kTls));
  EXPECT_EQ(r.reason, Reason::kConnectionRefused) << r.detail;
  EXPECT_FALSE(r.tls.has_value());
}

TEST_F(ProbeTest, AcceptAndCloseIsHandshakeEof) {
  LoopbackServer server(io_, {Script::kAcceptClose});
  const auto r = probe(spec(server.port(), config::Expect::kTls));
  EXPECT_EQ(r.reason, Reason::kHandshakeEof) << r.detail;
}

TEST_F(ProbeTest, AcceptAndResetIsHandshakeReset) {
  LoopbackServer server(io_, {Script::kAcceptReset});
  const auto r = probe(spec(server.port(), config::Expect::kTls));
  EXPECT_EQ(r.reason, Reason::kHandshakeReset) << r.detail;
}

TEST_F(ProbeTest, SilenceIsHandshakeTimeoutWithinTheDeadline) {
  LoopbackServer server(io_, {Script::kHang});
  auto s = spec(server.port(), config::Expect::kTls);
  s.timeout = std::chrono::milliseconds(300);
  const auto start = std::chrono::steady_clock::now();
  const auto r = probe(s);
  const auto took = std::chrono::steady_clock::now() - start;
  EXPECT_EQ(r.reason, Reason::kHandshakeTimeout) << r.detail;
  EXPECT_LT(took, std::chrono::milliseconds(1000));
  EXPECT_GE(took, std::chrono::milliseconds(290));
}

TEST_F(ProbeTest, HttpAnswerToClientHelloIsPlaintextHttp) {
  LoopbackServer server(io_, {Script::kHttp});
  const auto r = probe(spec(server.port(), config::Expect::kTls));
  EXPECT_EQ(r.reason, Reason::kPlaintextHttp) << r.detail;
  EXPECT_NE(r.detail.find("HTTP/1.1 400 Bad Request"), std::string::npos) << r.detail;
}

TEST_F(ProbeTest, SshBannerIsNotTls) {
  LoopbackServer server(io_, {Script::kSshBanner});
  const auto r = probe(spec(server.port(), config::Expect::kHttps));
  EXPECT_EQ(r.reason, Reason::kNotTls) << r.detail;
  EXPECT_NE(r.detail.find("SSH-2.0"), std::string::npos) << r.detail;
}

TEST_F(ProbeTest, EndlessGarbageIsNotTlsAndEndsQuickly) {
  LoopbackServer server(io_, {Script::kGarbageForever});
  const auto r = probe(spec(server.port(), config::Expect::kTls));
  EXPECT_EQ(r.reason, Reason::kNotTls) << r.detail;
  EXPECT_LT(r.phases.total, 1.0);
}

TEST_F(ProbeTest, HttpProbeOfEndlessBytesStopsAtItsBound) {
  // A peer that never stops sending (and never ends a header) costs a bounded read, not the
  // timeout and not memory.
  LoopbackServer server(io_, {Script::kGarbageForever});
  const auto r = probe(spec(server.port(), config::Expect::kHttp));
  EXPECT_EQ(r.reason, Reason::kHttpNoResponse) << r.detail;
  EXPECT_NE(r.detail.find("not an HTTP response"), std::string::npos) << r.detail;
  EXPECT_LT(r.phases.total, 1.0);
}

// Whatever key exchange group the server picks, in either TLS version, the probe completes
// the handshake and verifies the ECDSA chain and the handshake signature.
TEST_F(ProbeTest, EveryKeyExchangeGroupInBothVersionsVerifies) {
  for (const std::string groups : {"X25519", "P-256", "P-384"}) {
    for (const int version : {TLS1_2_VERSION, TLS1_3_VERSION}) {
      const std::string name = version == TLS1_2_VERSION ? "TLSv1.2" : "TLSv1.3";
      const auto r = probe_tls_server(*good_, {.max_version = version, .groups = groups});
      const auto what = groups + " " + name;
      ASSERT_EQ(r.reason, Reason::kOk) << what << ": " << r.detail;
      ASSERT_TRUE(r.tls) << what;
      EXPECT_EQ(r.tls->version, name) << what;
      EXPECT_TRUE(r.tls->verified) << what;
      ASSERT_TRUE(r.tls->leaf) << what;
      EXPECT_EQ(r.tls->leaf->fingerprint_sha256, good_->fingerprint_sha256) << what;
    }
  }
}

TEST_F(ProbeTest, ValidCertificateIsOkWithAllFacts) {
  const auto r = probe_tls_server(*good_);
  ASSERT_EQ(r.reason, Reason::kOk) << r.detail;
  ASSERT_TRUE(r.tls);
  EXPECT_EQ(r.tls->version, "TLSv1.3");
  EXPECT_FALSE(r.tls->cipher.empty());
  EXPECT_TRUE(r.tls->verified);
  ASSERT_TRUE(r.tls->leaf);
  EXPECT_EQ(r.tls->leaf->fingerprint_sha256, good_->fingerprint_sha256);
  EXPECT_EQ(r.tls->leaf->subject, "CN=portsentinel test,O=portsentinel tests");
  EXPECT_EQ(r.tls->leaf->issuer, "CN=portsentinel test CA,O=portsentinel tests");
  EXPECT_FALSE(r.tls->leaf->serial.empty());
  const auto now = std::time(nullptr);
  EXPECT_NEAR(static_cast<double>(r.tls->leaf->not_after), now + 30.0 * 86400, 120);
  EXPECT_NEAR(static_cast<double>(r.tls->leaf->not_before), now - 3600.0, 120);
  EXPECT_EQ(r.tls->leaf->chain_earliest_expiry, r.tls->leaf->not_after);
  EXPECT_GT(r.phases.tls, 0.0);
}

TEST_F(ProbeTest, HttpsOkReadsTheStatus) {
  LoopbackServer server(io_, {Script::kTls, kOkResponse, testing::make_server_tls(*good_)});
  const auto r = probe(spec(server.port(), config::Expect::kHttps));
  ASSERT_EQ(r.reason, Reason::kOk) << r.detail;
  ASSERT_TRUE(r.http);
  EXPECT_EQ(r.http->status, 200);
  EXPECT_GT(r.phases.http, 0.0);
}

TEST_F(ProbeTest, HttpsUnexpectedStatusIsHttpStatus) {
  LoopbackServer server(io_, {Script::kTls,
                              "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n",
                              testing::make_server_tls(*good_)});
  const auto r = probe(spec(server.port(), config::Expect::kHttps));
  EXPECT_EQ(r.reason, Reason::kHttpStatus) << r.detail;
  EXPECT_EQ(r.http->status, 503);
}

TEST_F(ProbeTest, ExpiredCertificateIsNamedAndStillCaptured) {
  TestPki::LeafOptions o;
  o.not_before = std::chrono::hours(-48);
  o.not_after = std::chrono::hours(-24);
  const auto leaf = pki_->issue("expired", o);
  const auto r = probe_tls_server(leaf);
  EXPECT_EQ(r.reason, Reason::kCertExpired) << r.detail;
  ASSERT_TRUE(r.tls && r.tls->leaf);
  EXPECT_EQ(r.tls->leaf->fingerprint_sha256, leaf.fingerprint_sha256);
  EXPECT_FALSE(r.tls->verified);
}

TEST_F(ProbeTest, NotYetValidCertificate) {
  TestPki::LeafOptions o;
  o.not_before = std::chrono::hours(24);
  o.not_after = std::chrono::hours(48);
  const auto r = probe_tls_server(pki_->issue("future", o));
  EXPECT_EQ(r.reason, Reason::kCertNotYetValid) << r.detail;
}

TEST_F(ProbeTest, WrongNameIsHostnameMismatch) {
  TestPki::LeafOptions o;
  o.dns_names = {"other.example"};
  o.ip_addresses = {};
  const auto leaf = pki_->issue("wrongname", o);
  const auto r = probe_tls_server(leaf);
  EXPECT_EQ(r.reason, Reason::kCertHostnameMismatch) << r.detail;
  EXPECT_NE(r.detail.find("localhost"), std::string::npos) << r.detail;
  ASSERT_TRUE(r.tls && r.tls->leaf);
  EXPECT_EQ(r.tls->leaf->fingerprint_sha256, leaf.fingerprint_sha256);
}

TEST_F(ProbeTest, IpServerNameIsVerifiedAgainstIpSans) {
  LoopbackServer server(io_, {Script::kTls, kOkResponse, testing::make_server_tls(*good_)});
  auto s = spec(server.port(), config::Expect::kTls);
  s.server_name = "127.0.0.1";
  EXPECT_EQ(probe(s).reason, Reason::kOk);
  s.server_name = "127.0.0.2";
  EXPECT_EQ(probe(s).reason, Reason::kCertHostnameMismatch);
}

TEST_F(ProbeTest, SelfSignedIsUntrusted) {
  TestPki::LeafOptions o;
  o.self_signed = true;
  const auto r = probe_tls_server(pki_->issue("selfsigned", o));
  EXPECT_EQ(r.reason, Reason::kCertUntrusted) << r.detail;
}

TEST_F(ProbeTest, SystemStoreDoesNotTrustOurCa) {
  LoopbackServer server(io_, {Script::kTls, kOkResponse, testing::make_server_tls(*good_)});
  auto s = spec(server.port(), config::Expect::kTls);
  s.tls_context = contexts_.get(config::TlsOptions{});  // no ca_file: the system store
  EXPECT_EQ(probe(s).reason, Reason::kCertUntrusted);
}

TEST_F(ProbeTest, InsecureSkipVerifyAcceptsButReportsUnverified) {
  TestPki::LeafOptions o;
  o.self_signed = true;
  LoopbackServer server(io_, {Script::kTls, kOkResponse,
                              testing::make_server_tls(pki_->issue("insecure", o))});
  auto s = spec(server.port(), config::Expect::kTls);
  s.insecure_skip_verify = true;
  const auto r = probe(s);
  EXPECT_EQ(r.reason, Reason::kOk) << r.detail;
  ASSERT_TRUE(r.tls);
  EXPECT_FALSE(r.tls->verified);
}

TEST_F(ProbeTest, Tls12ServerAgainstMinVersion13) {
  config::TlsOptions client;
  client.min_version = config::TlsVersion::k1_3;
  const auto r = probe_tls_server(*good_, {.max_version = TLS1_2_VERSION}, client);
  EXPECT_EQ(r.reason, Reason::kTlsProtocolVersion) << r.detail;
}

TEST_F(ProbeTest, Tls12ServerIsFineByDefault) {
  const auto r = probe_tls_server(*good_, {.max_version = TLS1_2_VERSION});
  EXPECT_EQ(r.reason, Reason::kOk) << r.detail;
  EXPECT_EQ(r.tls->version, "TLSv1.2");
}

TEST_F(ProbeTest, UnrecognizedNameAlert) {
  const auto r = probe_tls_server(*good_, {.fatal_alert = SSL_AD_UNRECOGNIZED_NAME});
  EXPECT_EQ(r.reason, Reason::kTlsUnrecognizedName) << r.detail;
}

TEST_F(ProbeTest, HandshakeFailureAlert) {
  const auto r = probe_tls_server(*good_, {.fatal_alert = SSL_AD_HANDSHAKE_FAILURE});
  EXPECT_EQ(r.reason, Reason::kTlsHandshakeFailure) << r.detail;
}

TEST_F(ProbeTest, OtherAlertIsTlsAlert) {
  const auto r = probe_tls_server(*good_, {.fatal_alert = SSL_AD_ACCESS_DENIED});
  EXPECT_EQ(r.reason, Reason::kTlsAlert) << r.detail;
  EXPECT_NE(r.detail.find("access denied"), std::string::npos) << r.detail;
}

TEST_F(ProbeTest, HugeCertificateChainIsRefusedWithinBounds) {
  TestPki::LeafOptions o;
  o.extra_chain_certs = 400;  // about 200 KB, above OpenSSL's 100 KB max_cert_list
  const auto r = probe_tls_server(pki_->issue("huge", o));
  EXPECT_EQ(r.reason, Reason::kTlsHandshakeFailure) << r.detail;
  EXPECT_LT(r.phases.total, 2.0);
}

TEST_F(ProbeTest, PlainHttpOkAndStatus) {
  LoopbackServer ok(io_, {Script::kHttp, kOkResponse});
  auto r = probe(spec(ok.port(), config::Expect::kHttp));
  EXPECT_EQ(r.reason, Reason::kOk) << r.detail;
  EXPECT_EQ(r.http->status, 200);
  LoopbackServer bad(io_, {Script::kHttp, "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"});
  r = probe(spec(bad.port(), config::Expect::kHttp));
  EXPECT_EQ(r.reason, Reason::kHttpStatus) << r.detail;
  EXPECT_EQ(r.http->status, 404);
}

TEST_F(ProbeTest, PlainHttpProbeOfTlsPortIsTlsOnPlainPort) {
  LoopbackServer server(io_, {Script::kTls, kOkResponse, testing::make_server_tls(*good_)});
  const auto r = probe(spec(server.port(), config::Expect::kHttp));
  EXPECT_EQ(r.reason, Reason::kTlsOnPlainPort) << r.detail;
}

TEST_F(ProbeTest, HttpProbeOfSilentPortIsHttpNoResponse) {
  LoopbackServer server(io_, {Script::kHang});
  auto s = spec(server.port(), config::Expect::kHttp);
  s.timeout = std::chrono::milliseconds(300);
  EXPECT_EQ(probe(s).reason, Reason::kHttpNoResponse);
}

TEST_F(ProbeTest, LocalhostNameResolves) {
  LoopbackServer server(io_, {Script::kHang});
  auto s = spec(server.port(), config::Expect::kTcp);
  s.address.host = "localhost";
  const auto r = probe(s);
  EXPECT_EQ(r.reason, Reason::kOk) << r.detail;
  EXPECT_GT(r.phases.resolve, 0.0);
}

TEST_F(ProbeTest, Ipv6Loopback) {
  LoopbackServer server(io_, {Script::kTls, kOkResponse, testing::make_server_tls(*good_), "::1"});
  auto s = spec(server.port(), config::Expect::kTls);
  s.address.host = "::1";
  const auto r = probe(s);
  EXPECT_EQ(r.reason, Reason::kOk) << r.detail;
  EXPECT_EQ(r.peer, server.host_port());
}

TEST_F(ProbeTest, OneContextPerSettingIsReused) {
  config::TlsOptions a;
  a.ca_file = pki_->ca_file();
  config::TlsOptions b = a;
  b.min_version = config::TlsVersion::k1_3;
  EXPECT_EQ(contexts_.get(a), contexts_.get(a));
  EXPECT_NE(contexts_.get(a), contexts_.get(b));
}

// A reload after a CA bundle was rotated (written anew and renamed into place, as
// update-ca-certificates does) builds its context anew; an unchanged file keeps its context.
TEST_F(ProbeTest, RefreshRebuildsAContextWhoseCaFileChanged) {
  testing::TempDir other_dir;
  TestPki other(other_dir);  // a CA that did not issue the served certificate
  const std::string bundle = dir_->file("rotating-ca.pem");
  const auto install = [&](const std::string& from) {
    std::filesystem::copy_file(from, bundle + ".new",
                               std::filesystem::copy_options::overwrite_existing);
    std::filesystem::rename(bundle + ".new", bundle);
  };
  install(other.ca_file());
  config::TlsOptions o;
  o.ca_file = bundle;
  contexts_.refresh({o});
  const auto before = contexts_.get(o);
  contexts_.refresh({o});
  EXPECT_EQ(contexts_.get(o), before);

  LoopbackServer server(io_, {Script::kTls, kOkResponse, testing::make_server_tls(*good_)});
  auto s = spec(server.port(), config::Expect::kTls, o);
  EXPECT_EQ(probe(s).reason, Reason::kCertUntrusted);
  install(pki_->ca_file());
  contexts_.refresh({o});
  const auto after = contexts_.get(o);
  EXPECT_NE(after, before);
  s.tls_context = after;
  EXPECT_EQ(probe(s).reason, Reason::kOk);

  // A broken bundle: the refresh fails and the working context stays.
  dir_->write("broken.pem", "-----BEGIN CERTIFICATE-----\nnot base64\n");
  install(dir_->file("broken.pem"));
  EXPECT_THROW(contexts_.refresh({o}), TlsContextError);
  EXPECT_EQ(contexts_.get(o), after);
}

TEST_F(ProbeTest, EveryHandshakeIsFull) {
  // Two probes in a row through one context: the server sees two full handshakes (no ticket,
  // no cache), so a certificate change would be seen at once.
  LoopbackServer server(io_, {Script::kTls, kOkResponse, testing::make_server_tls(*good_)});
  auto s = spec(server.port(), config::Expect::kTls);
  ASSERT_EQ(probe(s).reason, Reason::kOk);
  TestPki::LeafOptions o;
  o.common_name = "rotated";
  const auto rotated = pki_->issue("rotated", o);
  server.set_tls(testing::make_server_tls(rotated));
  const auto r = probe(s);
  ASSERT_EQ(r.reason, Reason::kOk) << r.detail;
  EXPECT_EQ(r.tls->leaf->fingerprint_sha256, rotated.fingerprint_sha256);
}

// The verification memo: a target served the same chain again is not verified again (a sixth
// of a handshake's CPU), and every reason and fact stays what a full verification gives.
TEST_F(ProbeTest, RepeatedChainIsVerifiedOnceAndStillReported) {
  LoopbackServer server(io_, {Script::kTls, kOkResponse, testing::make_server_tls(*good_)});
  auto s = spec(server.port(), config::Expect::kTls);
  s.verify_memo = std::make_shared<VerifyMemo>();
  for (int i = 0; i < 3; ++i) {
    const auto r = probe(s);
    ASSERT_EQ(r.reason, Reason::kOk) << "probe " << i << ": " << r.detail;
    ASSERT_TRUE(r.tls && r.tls->leaf);
    EXPECT_TRUE(r.tls->verified) << "probe " << i;
    EXPECT_EQ(r.tls->leaf->fingerprint_sha256, good_->fingerprint_sha256);
  }
  EXPECT_EQ(server.connections(), 3);  // three full handshakes
  EXPECT_EQ(s.verify_memo->full_verifications, 1u);
}

TEST_F(ProbeTest, RepeatedBadChainKeepsItsReasonAndDetail) {
  TestPki::LeafOptions o;
  o.not_before = std::chrono::hours(-48);
  o.not_after = std::chrono::hours(-24);
  LoopbackServer server(io_, {Script::kTls, kOkResponse,
                              testing::make_server_tls(pki_->issue("expired-memo", o))});
  auto s = spec(server.port(), config::Expect::kTls);
  s.verify_memo = std::make_shared<VerifyMemo>();
  const auto first = probe(s);
  const auto second = probe(s);
  EXPECT_EQ(first.reason, Reason::kCertExpired) << first.detail;
  EXPECT_EQ(second.reason, Reason::kCertExpired) << second.detail;
  EXPECT_EQ(second.detail, first.detail);
  ASSERT_TRUE(second.tls);
  EXPECT_FALSE(second.tls->verified);
  EXPECT_EQ(s.verify_memo->full_verifications, 1u);
}

TEST_F(ProbeTest, ChangedCertificateIsVerifiedAgain) {
  LoopbackServer server(io_, {Script::kTls, kOkResponse, testing::make_server_tls(*good_)});
  auto s = spec(server.port(), config::Expect::kTls);
  s.verify_memo = std::make_shared<VerifyMemo>();
  ASSERT_EQ(probe(s).reason, Reason::kOk);
  TestPki::LeafOptions o;
  o.dns_names = {"other.example"};
  o.ip_addresses = {};
  server.set_tls(testing::make_server_tls(pki_->issue("swapped", o)));
  const auto r = probe(s);
  EXPECT_EQ(r.reason, Reason::kCertHostnameMismatch) << r.detail;
  EXPECT_EQ(s.verify_memo->full_verifications, 2u);
  server.set_tls(testing::make_server_tls(*good_));
  EXPECT_EQ(probe(s).reason, Reason::kOk);
  EXPECT_EQ(s.verify_memo->full_verifications, 3u);  // the memo holds the last chain only
}

TEST_F(ProbeTest, MemoEndsAtTheNextValidityDateInTheChain) {
  // Not valid for ten more minutes: the outcome changes then, so the memo must end then.
  TestPki::LeafOptions o;
  o.not_before = std::chrono::minutes(10);
  LoopbackServer server(io_, {Script::kTls, kOkResponse,
                              testing::make_server_tls(pki_->issue("soon", o))});
  auto s = spec(server.port(), config::Expect::kTls);
  s.verify_memo = std::make_shared<VerifyMemo>();
  const auto now = static_cast<int64_t>(std::time(nullptr));
  EXPECT_EQ(probe(s).reason, Reason::kCertNotYetValid);
  EXPECT_NEAR(static_cast<double>(s.verify_memo->valid_until), static_cast<double>(now + 600), 5);

  // A valid chain is kept an hour at most, then verified in full again.
  server.set_tls(testing::make_server_tls(*good_));
  EXPECT_EQ(probe(s).reason, Reason::kOk);
  EXPECT_NEAR(static_cast<double>(s.verify_memo->valid_until), static_cast<double>(now + 3600),
              5);
  s.verify_memo->valid_until = now;  // as if that hour had passed
  EXPECT_EQ(probe(s).reason, Reason::kOk);
  EXPECT_EQ(s.verify_memo->full_verifications, 3u);
}

}  // namespace
}  // namespace portsentinel::probes
