#include <gtest/gtest.h>

#include "config/config.h"
#include "tests/support/pki.h"

namespace portsentinel::config {
namespace {

Config parse(const std::string& text) { return parse_config(text, "test.yaml"); }

// The full error text for `text`, or "" when it parses.
std::string error_of(const std::string& text) {
  try {
    parse(text);
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "";
}

TEST(Duration, ParsesPrometheusForms) {
  EXPECT_EQ(parse_duration("500ms"), Duration(500));
  EXPECT_EQ(parse_duration("30s"), Duration(30000));
  EXPECT_EQ(parse_duration("5m"), Duration(300000));
  EXPECT_EQ(parse_duration("1h30m"), Duration(5400000));
  EXPECT_EQ(parse_duration("21d"), Duration(21LL * 86400 * 1000));
  EXPECT_EQ(parse_duration("1w"), Duration(7LL * 86400 * 1000));
  EXPECT_EQ(parse_duration("1m500ms"), Duration(60500));
  EXPECT_EQ(parse_duration("0"), Duration(0));
}

TEST(Duration, RejectsMalformed) {
  for (const char* bad : {"", "30", "s", "1.5s", "30 s", "5x", "1s1m", "1m1m", "-1s", "ms"}) {
    EXPECT_FALSE(parse_duration(bad).has_value()) << bad;
  }
}

TEST(Duration, Formats) {
  EXPECT_EQ(format_duration(Duration(90000)), "1m30s");
  EXPECT_EQ(format_duration(Duration(500)), "500ms");
  EXPECT_EQ(format_duration(Duration(0)), "0s");
}

TEST(Address, ParsesHostPortForms) {
  std::string err;
  EXPECT_EQ(parse_host_port("shop.example.com:443", &err), (HostPort{"shop.example.com", 443}));
  EXPECT_EQ(parse_host_port("10.1.2.3:8443", &err), (HostPort{"10.1.2.3", 8443}));
  EXPECT_EQ(parse_host_port("[::1]:443", &err), (HostPort{"::1", 443}));
  EXPECT_EQ(parse_host_port("127.0.0.1:0", &err, true), (HostPort{"127.0.0.1", 0}));
  EXPECT_EQ(format_host_port({"::1", 443}), "[::1]:443");
}

TEST(Address, RejectsBadForms) {
  std::string err;
  for (const char* bad : {"example.com", "example.com:", "example.com:70000", "::1:443",
                          "[::1]443", "[nothost]:443", "exa mple.com:443", "host:0", "host:https"}) {
    EXPECT_FALSE(parse_host_port(bad, &err).has_value()) << bad;
    EXPECT_FALSE(err.empty());
  }
}

TEST(Config, FullExampleParses) {
  testing::TempDir dir;
  const std::string ca = dir.write("ca.pem", "not checked here, only readable");
  const Config cfg = parse(R"(
web:
  listen_address: 127.0.0.1:9643
log: {level: info, format: json}
defaults: {interval: 30s, timeout: 5s}
max_concurrent_probes: 64
targets:
  - name: shop-https
    address: shop.example.com:443
    expect: https
    server_name: www.example.com
    interval: 15s
    timeout: 3s
    tls: {ca_file: )" + ca + R"(, min_version: "1.3", insecure_skip_verify: false}
    http: {path: /health, expect_status: ["200-299", 301], redirect_to_https: false}
    labels: {team: web}
  - name: shop-origin
    address: "[::1]:8443"
    expect: tls
ports:
  poll_interval: 2s
  watch:
    - port: 443
      expected_owners:
        - {exe: /usr/sbin/nginx}
        - {comm: nginx, user: www-data}
path_groups:
  - name: shop
    targets: [shop-https, shop-origin]
alerting:
  alertmanager_urls: [http://127.0.0.1:9093]
  cert_expiry_warning: 14d
)");
  EXPECT_EQ(cfg.log_format, LogFormat::kJson);
  EXPECT_EQ(cfg.max_concurrent_probes, 64);
  ASSERT_EQ(cfg.targets.size(), 2u);
  const Target& t = cfg.targets[0];
  EXPECT_EQ(t.name, "shop-https");
  EXPECT_EQ(t.address, (HostPort{"shop.example.com", 443}));
  EXPECT_EQ(t.expect, Expect::kHttps);
  EXPECT_EQ(t.server_name, "www.example.com");
  EXPECT_EQ(t.interval, Duration(15000));
  EXPECT_EQ(t.timeout, Duration(3000));
  EXPECT_EQ(t.tls.ca_file, ca);
  EXPECT_EQ(t.tls.min_version, TlsVersion::k1_3);
  EXPECT_EQ(t.http.path, "/health");
  ASSERT_EQ(t.http.expect_status.size(), 2u);
  EXPECT_EQ(t.http.expect_status[0], (StatusRange{200, 299}));
  EXPECT_EQ(t.http.expect_status[1], (StatusRange{301, 301}));
  EXPECT_EQ(t.labels.at("team"), "web");
  // Defaults flow into targets that do not set their own.
  EXPECT_EQ(cfg.targets[1].interval, Duration(30000));
  EXPECT_EQ(cfg.targets[1].server_name, "::1");
  EXPECT_EQ(cfg.ports.poll_interval, Duration(2000));
  ASSERT_EQ(cfg.ports.watch.size(), 1u);
  EXPECT_EQ(cfg.ports.watch[0].expected_owners.size(), 2u);
  EXPECT_EQ(cfg.ports.watch[0].expected_owners[1].user, "www-data");
  EXPECT_EQ(cfg.path_groups[0].targets.size(), 2u);
  EXPECT_EQ(cfg.alerting.cert_expiry_warning, Duration(14LL * 86400 * 1000));
}

TEST(Config, EmptyFileIsValidAndProbesNothing) {
  EXPECT_TRUE(parse("").targets.empty());
  EXPECT_EQ(parse("").listen_address, (HostPort{"127.0.0.1", 9643}));
}

TEST(Config, UnknownKeyIsAnErrorWithPositionAndSuggestion) {
  EXPECT_EQ(error_of("targets:\n  - name: a\n    address: a:1\n    expect: tcp\n    intervall: 5s\n"),
            "test.yaml:5:5: unknown key \"intervall\" in target (did you mean \"interval\"?)");
  EXPECT_EQ(error_of("webb: {}\n"), "test.yaml:1:1: unknown key \"webb\" in the top level (did you mean \"web\"?)");
}

TEST(Config, DuplicateKeyIsAnError) {
  EXPECT_EQ(error_of("defaults:\n  interval: 5s\n  interval: 6s\n"),
            "test.yaml:3:3: duplicate key \"interval\" in defaults");
}

TEST(Config, DuplicateTargetNameIsAnError) {
  EXPECT_EQ(error_of("targets:\n  - {name: a, address: \"a:1\", expect: tcp}\n"
                     "  - {name: a, address: \"b:1\", expect: tcp}\n"),
            "test.yaml:3:12: duplicate target name \"a\" (first defined at line 2)");
}

TEST(Config, BadDurationIsAnError) {
  EXPECT_EQ(error_of("defaults: {interval: 30}\n"),
            "test.yaml:1:22: defaults.interval: expected a duration like 500ms, 30s, 5m or 21d, "
            "got \"30\"");
}

TEST(Config, BadAddressIsAnError) {
  EXPECT_EQ(error_of("targets:\n  - {name: a, address: \"example.com\", expect: tcp}\n"),
            "test.yaml:2:24: target \"a\" address: expected host:port, got \"example.com\" (no "
            "port)");
}

TEST(Config, UnknownExpectIsAnError) {
  EXPECT_EQ(error_of("targets:\n  - {name: a, address: \"a:1\", expect: smtp}\n"),
            "test.yaml:2:39: target \"a\" expect: expected one of tcp tls http https, got \"smtp\"");
}

TEST(Config, MissingRequiredKeyIsAnError) {
  EXPECT_EQ(error_of("targets:\n  - {name: a, expect: tcp}\n"),
            "test.yaml:2:5: target: missing required key \"address\"");
}

TEST(Config, TimeoutLongerThanIntervalIsAnError) {
  EXPECT_NE(error_of("targets:\n  - {name: a, address: \"a:1\", expect: tcp, interval: 1s, "
                     "timeout: 2s}\n")
                .find("timeout 2s is longer than interval 1s"),
            std::string::npos);
}

TEST(Config, SyntaxErrorHasPosition) {
  const std::string e = error_of("targets:\n  - {name: a\n");
  EXPECT_EQ(e.rfind("test.yaml:", 0), 0u) << e;
}

TEST(Config, OtherBadValues) {
  EXPECT_NE(error_of("log: {format: xml}\n").find("log.format: expected one of text json"),
            std::string::npos);
  EXPECT_NE(error_of("targets:\n  - {name: a, address: \"a:1\", expect: tls, tls: "
                     "{ca_file: /nonexistent/ca.pem}}\n")
                .find("cannot read \"/nonexistent/ca.pem\""),
            std::string::npos);
  EXPECT_NE(error_of("targets:\n  - {name: a, address: \"a:1\", expect: http, http: "
                     "{expect_status: [\"399-200\"]}}\n")
                .find("runs backwards"),
            std::string::npos);
  EXPECT_NE(error_of("targets:\n  - {name: a, address: \"a:1\", expect: tcp, labels: "
                     "{reason: x}}\n")
                .find("reserved"),
            std::string::npos);
  EXPECT_NE(error_of("path_groups:\n  - {name: g, targets: [x, y]}\n")
                .find("no target named \"x\""),
            std::string::npos);
  EXPECT_NE(error_of("web: {listen_address: \"localhost\"}\n").find("web.listen_address"),
            std::string::npos);
  EXPECT_NE(error_of("targets:\n  - {name: a, address: \"a:1\", expect: tls, tls: "
                     "{insecure_skip_verify: maybe}}\n")
                .find("expected true or false"),
            std::string::npos);
}

TEST(Config, MissingFileIsAnError) {
  try {
    load_config("/nonexistent/portsentinel.yaml");
    FAIL() << "no error";
  } catch (const ConfigError& e) {
    EXPECT_EQ(std::string(e.what()).rfind("/nonexistent/portsentinel.yaml:0:0: cannot read", 0),
              0u)
        << e.what();
  }
}

}  // namespace
}  // namespace portsentinel::config
