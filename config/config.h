#pragma once

#include <cstdint>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

#include "config/address.h"
#include "config/duration.h"

namespace portsentinel::config {

// A config problem with its position; what() is "FILE:LINE:COL: message" (1-based).
class ConfigError : public std::runtime_error {
 public:
  ConfigError(std::string file, int line, int column, const std::string& message);
  const std::string& file() const { return file_; }
  int line() const { return line_; }
  int column() const { return column_; }
  const std::string& message() const { return message_; }

 private:
  std::string file_;
  int line_;
  int column_;
  std::string message_;
};

enum class Expect { kTcp, kTls, kHttp, kHttps };
const char* expect_name(Expect e);

enum class LogFormat { kText, kJson };

// Minimum TLS protocol version the client offers.
enum class TlsVersion { k1_0, k1_1, k1_2, k1_3 };
const char* tls_version_name(TlsVersion v);  // "1.2"

struct TlsOptions {
  std::string ca_file;  // empty: the system trust store
  TlsVersion min_version = TlsVersion::k1_2;
  bool insecure_skip_verify = false;
  bool operator==(const TlsOptions&) const = default;
  auto operator<=>(const TlsOptions&) const = default;
};

struct StatusRange {
  int low = 200;
  int high = 399;
  bool operator==(const StatusRange&) const = default;
};

struct HttpOptions {
  std::string path = "/";
  std::vector<StatusRange> expect_status = std::vector<StatusRange>(1, StatusRange{200, 399});
  bool redirect_to_https = false;
  bool operator==(const HttpOptions&) const = default;
};

struct Target {
  std::string name;
  HostPort address;
  Expect expect = Expect::kTcp;
  std::string server_name;  // SNI and verification name; defaults to the host of `address`
  Duration interval{30000};
  Duration timeout{5000};
  TlsOptions tls;
  HttpOptions http;
  std::map<std::string, std::string> labels;
  bool operator==(const Target&) const = default;
};

struct OwnerRule {
  std::string exe;
  std::string unit;
  std::string comm;
  std::string user;
  bool operator==(const OwnerRule&) const = default;
};

struct PortWatch {
  uint16_t port = 0;
  std::vector<OwnerRule> expected_owners;  // empty: learn the owners at start
  bool operator==(const PortWatch&) const = default;
};

struct PortsConfig {
  Duration poll_interval{1000};
  std::vector<PortWatch> watch;
  bool operator==(const PortsConfig&) const = default;
};

struct PathGroup {
  std::string name;
  std::vector<std::string> targets;
  bool operator==(const PathGroup&) const = default;
};

struct AlertingConfig {
  std::vector<std::string> alertmanager_urls;
  Duration cert_expiry_warning{21LL * 24 * 3600 * 1000};
  Duration resend_interval{60000};
  int failures_before_alert = 2;
  double handshake_regression_factor = 3.0;
  bool operator==(const AlertingConfig&) const = default;
};

struct Config {
  std::string source;  // file the config came from, or "<embedded default>"
  HostPort listen_address{"127.0.0.1", 9643};
  std::string log_level = "info";
  LogFormat log_format = LogFormat::kText;
  Duration default_interval{30000};
  Duration default_timeout{5000};
  int max_concurrent_probes = 512;
  std::vector<Target> targets;
  PortsConfig ports;
  std::vector<PathGroup> path_groups;
  AlertingConfig alerting;
};

// Parses and validates a config document. `file` names it in errors. Throws ConfigError.
Config parse_config(const std::string& text, const std::string& file);

// Reads and parses `path`. Throws ConfigError (line 0 when the file cannot be read).
Config load_config(const std::string& path);

}  // namespace portsentinel::config
