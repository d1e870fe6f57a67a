// The alert rules on scripted results: hysteresis, baselines, ports, path groups.
#include <gtest/gtest.h>

#include "daemon/alert_rules.h"

namespace portsentinel::daemon {
namespace {

using probes::ProbeResult;
using probes::Reason;

config::Target target() {
  config::Target t;
  t.name = "shop";
  t.address = {"10.0.0.5", 443};
  t.server_name = "shop.example.com";
  t.labels = {{"team", "web"}};
  return t;
}

ProbeResult tls_ok(double handshake, const std::string& fp = "aa", double not_after = 4e9,
                   const std::string& version = "TLSv1.3",
                   const std::string& cipher = "TLS_AES_256_GCM_SHA384") {
  ProbeResult r;
  r.reason = Reason::kOk;
  r.phases.tls = handshake;
  r.tls = probes::TlsFacts{version, cipher, probes::CertFacts{fp, "CN=shop", "CN=CA", "01", 0,
                                                              static_cast<int64_t>(not_after),
                                                              static_cast<int64_t>(not_after)},
                           true};
  return r;
}

ProbeResult failed(Reason r) {
  ProbeResult p;
  p.reason = r;
  p.detail = "detail";
  return p;
}

const std::string& name_of(const Alert& a) { return a.labels.at("alertname"); }

class AlertRulesTest : public ::testing::Test {
 protected:
  AlertRules rules_{config::AlertingConfig{}, "host-1"};
  config::Target t_ = target();
  TargetAlertState s_;
  double now_ = 1.8e9;
};

TEST_F(AlertRulesTest, ProbeFailingNeedsTwoFailuresAndResolvesOnFirstSuccess) {
  EXPECT_TRUE(rules_.on_probe(t_, s_, failed(Reason::kConnectionRefused), now_).fired.empty());
  auto c = rules_.on_probe(t_, s_, failed(Reason::kConnectionRefused), now_);
  ASSERT_EQ(c.fired.size(), 1u);
  const Alert a = c.fired[0];
  EXPECT_EQ(name_of(a), "ProbeFailing");
  EXPECT_EQ(a.labels.at("reason"), "connection_refused");
  EXPECT_EQ(a.labels.at("target"), "shop");
  EXPECT_EQ(a.labels.at("team"), "web");
  EXPECT_EQ(a.labels.at("severity"), "critical");
  EXPECT_EQ(a.labels.at("instance"), "host-1");
  EXPECT_NE(a.annotations.at("remedy").find("sport = :443"), std::string::npos);
  EXPECT_NE(a.annotations.at("summary").find("connection_refused"), std::string::npos);
  EXPECT_TRUE(rules_.on_probe(t_, s_, failed(Reason::kConnectionRefused), now_).fired.empty());
  c = rules_.on_probe(t_, s_, tls_ok(0.01), now_);
  ASSERT_EQ(c.resolved.size(), 1u);
  EXPECT_EQ(c.resolved[0].key(), a.key());
}

TEST_F(AlertRulesTest, AChangedReasonIsANewAlert) {
  rules_.on_probe(t_, s_, failed(Reason::kConnectionRefused), now_);
  rules_.on_probe(t_, s_, failed(Reason::kConnectionRefused), now_);
  const auto c = rules_.on_probe(t_, s_, failed(Reason::kPlaintextHttp), now_);
  ASSERT_EQ(c.resolved.size(), 1u);
  EXPECT_EQ(c.resolved[0].labels.at("reason"), "connection_refused");
  ASSERT_EQ(c.fired.size(), 1u);
  EXPECT_EQ(c.fired[0].labels.at("reason"), "plaintext_http");
}

TEST_F(AlertRulesTest, HandshakeRegressionOverAMedianBaselineForSeveralProbes) {
  // A baseline of ~10 ms with one outlier that the median ignores.
  for (double ms : {10.0, 11.0, 9.0, 250.0, 10.0, 10.5}) {
    EXPECT_TRUE(rules_.on_probe(t_, s_, tls_ok(ms / 1000), now_).fired.empty());
  }
  // Three times slower: fires on the third slow probe in a row, not before.
  EXPECT_TRUE(rules_.on_probe(t_, s_, tls_ok(0.045), now_).fired.empty());
  EXPECT_TRUE(rules_.on_probe(t_, s_, tls_ok(0.045), now_).fired.empty());
  auto c = rules_.on_probe(t_, s_, tls_ok(0.045), now_);
  ASSERT_EQ(c.fired.size(), 1u);
  EXPECT_EQ(name_of(c.fired[0]), "TLSHandshakeRegression");
  EXPECT_NE(c.fired[0].annotations.at("summary").find("baseline of 10 ms"), std::string::npos)
      << c.fired[0].annotations.at("summary");
  // The slow samples did not become the baseline: back to normal resolves it.
  c = rules_.on_probe(t_, s_, tls_ok(0.010), now_);
  ASSERT_EQ(c.resolved.size(), 1u);
  EXPECT_EQ(name_of(c.resolved[0]), "TLSHandshakeRegression");
}

TEST_F(AlertRulesTest, WeakerVersionIsARegressionAtOnce) {
  rules_.on_probe(t_, s_, tls_ok(0.01), now_);
  const auto c = rules_.on_probe(
      t_, s_, tls_ok(0.01, "aa", 4e9, "TLSv1.2", "ECDHE-ECDSA-AES256-GCM-SHA384"), now_);
  ASSERT_EQ(c.fired.size(), 1u);
  EXPECT_NE(c.fired[0].annotations.at("summary").find("TLSv1.2 where it had TLSv1.3"),
            std::string::npos);
}

TEST_F(AlertRulesTest, WeakerCipherIsARegression) {
  rules_.on_probe(t_, s_, tls_ok(0.01, "aa", 4e9, "TLSv1.2", "ECDHE-RSA-AES256-GCM-SHA384"), now_);
  const auto c =
      rules_.on_probe(t_, s_, tls_ok(0.01, "aa", 4e9, "TLSv1.2", "ECDHE-RSA-AES128-SHA"), now_);
  ASSERT_EQ(c.fired.size(), 1u);
  EXPECT_NE(c.fired[0].annotations.at("summary").find("weaker cipher"), std::string::npos);
}

TEST_F(AlertRulesTest, CertificateExpiringSoonAndRenewed) {
  const double in_10_days = now_ + 10 * 86400;
  auto c = rules_.on_probe(t_, s_, tls_ok(0.01, "aa", in_10_days), now_);
  ASSERT_EQ(c.fired.size(), 1u);
  EXPECT_EQ(name_of(c.fired[0]), "TLSCertificateExpiringSoon");
  EXPECT_EQ(c.fired[0].labels.at("severity"), "warning");
  EXPECT_TRUE(rules_.on_probe(t_, s_, tls_ok(0.01, "aa", in_10_days), now_).fired.empty());
  c = rules_.on_probe(t_, s_, tls_ok(0.01, "bb", now_ + 90 * 86400), now_);
  bool resolved_expiry = false;
  for (const auto& a : c.resolved) {
    resolved_expiry |= name_of(a) == "TLSCertificateExpiringSoon";
  }
  EXPECT_TRUE(resolved_expiry);
}

TEST_F(AlertRulesTest, CertificateChangeIsAnInfoAlertForAWhile) {
  rules_.on_probe(t_, s_, tls_ok(0.01, "aa"), now_);
  auto c = rules_.on_probe(t_, s_, tls_ok(0.01, "bb"), now_);
  ASSERT_EQ(c.fired.size(), 1u);
  EXPECT_EQ(name_of(c.fired[0]), "TLSCertificateChanged");
  EXPECT_EQ(c.fired[0].labels.at("severity"), "info");
  EXPECT_TRUE(rules_.on_probe(t_, s_, tls_ok(0.01, "bb"), now_ + 60).resolved.empty());
  c = rules_.on_probe(t_, s_, tls_ok(0.01, "bb"), now_ + AlertRules::kChangedFor);
  ASSERT_EQ(c.resolved.size(), 1u);
  EXPECT_EQ(name_of(c.resolved[0]), "TLSCertificateChanged");
}

TEST_F(AlertRulesTest, PortEventsMapToPortAlerts) {
  auto c = rules_.on_port_event(443, {PortEventKind::kHijacked, "pid 9 evil on 127.0.0.1"}, now_);
  ASSERT_EQ(c.fired.size(), 1u);
  EXPECT_EQ(name_of(c.fired[0]), "PortHijacked");
  EXPECT_EQ(c.fired[0].labels.at("port"), "443");
  EXPECT_NE(c.fired[0].annotations.at("summary").find("pid 9 evil"), std::string::npos);
  EXPECT_FALSE(c.fired[0].annotations.at("remedy").empty());
  const auto cleared = rules_.on_port_event(443, {PortEventKind::kHijackCleared, "ok"}, now_);
  ASSERT_EQ(cleared.resolved.size(), 1u);
  EXPECT_EQ(cleared.resolved[0].key(), c.fired[0].key());
  EXPECT_EQ(name_of(rules_.on_port_event(80, {PortEventKind::kNotListening, "x"}, now_).fired[0]),
            "PortNotListening");
  EXPECT_TRUE(rules_.on_port_event(80, {PortEventKind::kOwnerChanged, "x"}, now_).fired.empty());
}

TEST_F(AlertRulesTest, PathGroupMismatch) {
  GroupVerdict bad{true, false, "cdn serves CN=x"};
  auto c = rules_.on_path_group("shop", bad, now_);
  ASSERT_EQ(c.fired.size(), 1u);
  EXPECT_EQ(name_of(c.fired[0]), "PathCertificateMismatch");
  EXPECT_EQ(c.fired[0].labels.at("group"), "shop");
  GroupVerdict good{true, true, "all 2 members serve CN=shop"};
  EXPECT_EQ(rules_.on_path_group("shop", good, now_).resolved.size(), 1u);
  EXPECT_TRUE(rules_.on_path_group("shop", GroupVerdict{}, now_).fired.empty());
}

TEST_F(AlertRulesTest, RemovedTargetResolvesItsAlerts) {
  rules_.on_probe(t_, s_, failed(Reason::kNotTls), now_);
  rules_.on_probe(t_, s_, failed(Reason::kNotTls), now_);
  EXPECT_EQ(rules_.on_target_removed(s_).resolved.size(), 1u);
}

TEST(AlertHelpers, RanksAndMedian) {
  EXPECT_GT(version_rank("TLSv1.3"), version_rank("TLSv1.2"));
  EXPECT_GT(cipher_rank("TLS_AES_256_GCM_SHA384"), cipher_rank("TLS_AES_128_GCM_SHA256"));
  EXPECT_GT(cipher_rank("ECDHE-RSA-AES128-GCM-SHA256"), cipher_rank("ECDHE-RSA-AES256-SHA"));
  EXPECT_DOUBLE_EQ(median({5, 1, 100, 2, 3}), 3);
}

}  // namespace
}  // namespace portsentinel::daemon
