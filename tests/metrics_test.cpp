// The per-target series as Metrics::write_text formats them: names, label order and escaping,
// counters and the histogram, the one-series rules, removal, and scrapes racing updates.
#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "exporters/metrics.h"
#include "tests/support/process.h"

namespace portsentinel::exporters {
namespace {

config::Target target(const std::string& name, std::map<std::string, std::string> labels = {}) {
  config::Target t;
  t.name = name;
  t.labels = std::move(labels);
  return t;
}

probes::ProbeResult tls_result(probes::Reason reason, double handshake_seconds,
                               const std::string& fingerprint = "aa") {
  probes::ProbeResult r;
  r.reason = reason;
  r.phases = {0.001, 0.002, handshake_seconds, 0, 0.01};
  probes::TlsFacts tls;
  tls.version = "TLSv1.3";
  tls.cipher = "TLS_AES_256_GCM_SHA384";
  tls.verified = reason == probes::Reason::kOk;
  probes::CertFacts leaf;
  leaf.fingerprint_sha256 = fingerprint;
  leaf.subject = "CN=example.org";
  leaf.issuer = "CN=Test CA,O=\"Quoted\" Inc";
  leaf.serial = "01";
  leaf.not_before = 1700000000;
  leaf.not_after = 1800000000;
  leaf.chain_earliest_expiry = 1750000000;
  tls.leaf = leaf;
  r.tls = tls;
  return r;
}

bool has_line(const std::string& text, const std::string& line) {
  return ("\n" + text).find("\n" + line + "\n") != std::string::npos;
}

TEST(Metrics, TargetSeriesWithSortedAndEscapedLabels) {
  Metrics metrics("test", "test");
  TargetMetrics t(metrics, target("web", {{"team", "a\"b\\c\nd"}, {"env", "prod"}}));
  // Nothing until the first probe: no half-filled series.
  EXPECT_EQ(metrics.text().find("{env=\"prod\""), std::string::npos);

  t.record(tls_result(probes::Reason::kOk, 0.003), 1700000123.5);
  const std::string text = metrics.text();
  const std::string labels = "env=\"prod\",target=\"web\",team=\"a\\\"b\\\\c\\nd\"";
  EXPECT_TRUE(has_line(text, "portsentinel_probe_success{" + labels + "} 1")) << text;
  EXPECT_TRUE(has_line(text, "portsentinel_probe_reason{env=\"prod\",reason=\"ok\",target=\"web\","
                             "team=\"a\\\"b\\\\c\\nd\"} 1"))
      << text;
  EXPECT_TRUE(has_line(text, "portsentinel_last_probe_timestamp_seconds{" + labels +
                                 "} 1700000123.5"))
      << text;
  EXPECT_TRUE(has_line(text, "portsentinel_probe_duration_seconds{env=\"prod\",phase=\"tls\","
                             "target=\"web\",team=\"a\\\"b\\\\c\\nd\"} 0.003"))
      << text;
  EXPECT_TRUE(has_line(text, "portsentinel_tls_cert_info{env=\"prod\",fingerprint_sha256=\"aa\","
                             "issuer=\"CN=Test CA,O=\\\"Quoted\\\" Inc\",serial=\"01\","
                             "subject=\"CN=example.org\",target=\"web\","
                             "team=\"a\\\"b\\\\c\\nd\"} 1"))
      << text;
  EXPECT_TRUE(has_line(text, "portsentinel_tls_cert_not_after_timestamp_seconds{" + labels +
                                 "} 1800000000"))
      << text;
  EXPECT_TRUE(has_line(text, "portsentinel_tls_chain_earliest_expiry_timestamp_seconds{" +
                                 labels + "} 1750000000"))
      << text;
  EXPECT_TRUE(has_line(text, "portsentinel_tls_cert_verified{" + labels + "} 1")) << text;
  // No failure yet: the failure counter has no series.
  EXPECT_EQ(text.find("portsentinel_probe_failures_total{"), std::string::npos) << text;
  EXPECT_NE(text.find("# TYPE portsentinel_probe_failures_total counter\n"), std::string::npos);
  EXPECT_NE(text.find("# TYPE portsentinel_tls_handshake_duration_seconds histogram\n"),
            std::string::npos);

  if (!testing::have_program("promtool")) {
    GTEST_SKIP() << "promtool not installed (make deps installs Debian's prometheus package)";
  }
  std::string out;
  EXPECT_EQ(testing::run_command({"promtool", "check", "metrics"}, &out, text), 0) << out << text;
}

TEST(Metrics, OneReasonSeriesCountersAndHistogram) {
  Metrics metrics("test", "test");
  TargetMetrics t(metrics, target("db"));
  t.record(tls_result(probes::Reason::kCertExpired, 0.0004), 1);
  t.record(tls_result(probes::Reason::kCertExpired, 0.02), 2);
  t.record(tls_result(probes::Reason::kOk, 7, "bb"), 3);
  const std::string text = metrics.text();
  // Only the last reason has a series; the counter keeps the failures by reason.
  EXPECT_TRUE(has_line(text, "portsentinel_probe_reason{reason=\"ok\",target=\"db\"} 1")) << text;
  EXPECT_EQ(text.find("portsentinel_probe_reason{reason=\"cert_expired\""), std::string::npos);
  EXPECT_TRUE(has_line(
      text, "portsentinel_probe_failures_total{reason=\"cert_expired\",target=\"db\"} 2"))
      << text;
  // Buckets are cumulative, le last; 7 s lands only in +Inf.
  const std::string h = "portsentinel_tls_handshake_duration_seconds";
  EXPECT_TRUE(has_line(text, h + "_bucket{target=\"db\",le=\"0.001\"} 1")) << text;
  EXPECT_TRUE(has_line(text, h + "_bucket{target=\"db\",le=\"0.0025\"} 1")) << text;
  EXPECT_TRUE(has_line(text, h + "_bucket{target=\"db\",le=\"0.025\"} 2")) << text;
  EXPECT_TRUE(has_line(text, h + "_bucket{target=\"db\",le=\"5\"} 2")) << text;
  EXPECT_TRUE(has_line(text, h + "_bucket{target=\"db\",le=\"+Inf\"} 3")) << text;
  EXPECT_TRUE(has_line(text, h + "_count{target=\"db\"} 3")) << text;
  EXPECT_TRUE(has_line(text, h + "_sum{target=\"db\"} 7.0204")) << text;
  // The leaf changed once (aa -> bb); the info series follows the new one only.
  EXPECT_TRUE(has_line(text, "portsentinel_tls_cert_changes_total{target=\"db\"} 1")) << text;
  EXPECT_EQ(text.find("fingerprint_sha256=\"aa\""), std::string::npos) << text;
  EXPECT_NE(text.find("fingerprint_sha256=\"bb\""), std::string::npos) << text;
}

TEST(Metrics, HttpStatusAndRemovedTargetDisappears) {
  Metrics metrics("test", "test");
  auto a = std::make_unique<TargetMetrics>(metrics, target("a"));
  TargetMetrics b(metrics, target("b"));
  TargetMetrics c(metrics, target("c"));
  probes::ProbeResult r;
  r.reason = probes::Reason::kHttpStatus;
  r.http = probes::HttpFacts{503, "HTTP/1.1 503 Service Unavailable", ""};
  for (auto* t : {a.get(), &b, &c}) {
    t->record(r, 1);
  }
  EXPECT_TRUE(has_line(metrics.text(), "portsentinel_http_status_code{target=\"a\"} 503"));
  a.reset();
  const std::string text = metrics.text();
  EXPECT_EQ(text.find("target=\"a\""), std::string::npos) << text;
  EXPECT_TRUE(has_line(text, "portsentinel_http_status_code{target=\"b\"} 503")) << text;
  EXPECT_TRUE(has_line(text, "portsentinel_http_status_code{target=\"c\"} 503")) << text;
  // No TLS ever: no TLS series.
  EXPECT_EQ(text.find("portsentinel_tls_handshake_duration_seconds_count{"), std::string::npos);
}

TEST(Metrics, PiecesAreBoundedAndJoinToTheWholeText) {
  Metrics metrics("test", "test");
  std::vector<std::unique_ptr<TargetMetrics>> targets;
  for (int i = 0; i < 2000; ++i) {
    targets.push_back(std::make_unique<TargetMetrics>(metrics, target("t" + std::to_string(i))));
    targets.back()->record(tls_result(probes::Reason::kOk, 0.002), 1);
  }
  std::string joined;
  size_t pieces = 0;
  size_t largest = 0;
  metrics.write_text([&](std::string_view piece) {
    ++pieces;
    largest = std::max(largest, piece.size());
    joined.append(piece);
  });
  EXPECT_EQ(joined, metrics.text());
  EXPECT_GT(joined.size(), 2'000'000u);   // ~1.3 KB per target
  EXPECT_GT(pieces, 20u);                 // streamed, not one string
  EXPECT_LT(largest, 80u * 1024);         // 64 KiB plus at most one target's lines
}

// Targets come and go (reloads) while scrapes run on other threads: under ASan this catches a
// scrape reading a removed target's record.
TEST(Metrics, ScrapesRaceUpdatesAndRemovals) {
  Metrics metrics("test", "test");
  std::atomic<bool> done{false};
  std::atomic<int> scrapes{0};
  std::vector<std::thread> scrapers;
  for (int i = 0; i < 2; ++i) {
    scrapers.emplace_back([&] {
      while (!done) {
        const std::string text = metrics.text();
        EXPECT_NE(text.find("# TYPE portsentinel_probe_success gauge"), std::string::npos);
        ++scrapes;
      }
    });
  }
  for (int round = 0; round < 200 || scrapes < 20; ++round) {
    std::vector<std::unique_ptr<TargetMetrics>> targets;
    for (int i = 0; i < 50; ++i) {
      targets.push_back(std::make_unique<TargetMetrics>(metrics, target("t" + std::to_string(i))));
      targets.back()->record(tls_result(probes::Reason::kOk, 0.002, std::to_string(round)), 1);
    }
  }
  done = true;
  for (auto& t : scrapers) {
    t.join();
  }
  EXPECT_EQ(metrics.text().find("target=\""), std::string::npos);
}

}  // namespace
}  // namespace portsentinel::exporters
