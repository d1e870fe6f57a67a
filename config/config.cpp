#include "config/config.h"

#include <unistd.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <fstream>
#include <set>
#include <sstream>
#include <string_view>

namespace portsentinel::config {

ConfigError::ConfigError(std::string file, int line, int column, const std::string& message)
    : std::runtime_error(file + ":" + std::to_string(line) + ":" + std::to_string(column) + ": " +
                         message),
      file_(std::move(file)),
      line_(line),
      column_(column),
      message_(message) {}

const char* expect_name(Expect e) {
  switch (e) {
    case Expect::kTcp:
      return "tcp";
    case Expect::kTls:
      return "tls";
    case Expect::kHttp:
      return "http";
    case Expect::kHttps:
      return "https";
  }
  return "?";
}

const char* tls_version_name(TlsVersion v) {
  switch (v) {
    case TlsVersion::k1_0:
      return "1.0";
    case TlsVersion::k1_1:
      return "1.1";
    case TlsVersion::k1_2:
      return "1.2";
    case TlsVersion::k1_3:
      return "1.3";
  }
  return "?";
}

namespace {

size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) {
    row[j] = j;
  }
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diag = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      const size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diag + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diag = up;
    }
  }
  return row[b.size()];
}

bool valid_label_name(std::string_view s) {
  if (s.empty() || (s[0] >= '0' && s[0] <= '9')) {
    return false;
  }
  return std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
  });
}

// Label names the exporter already uses on per-target series.
const std::set<std::string_view> kReservedLabels{
    "target", "reason", "phase", "version", "cipher", "fingerprint_sha256", "subject", "issuer",
    "serial", "le", "instance", "job", "alertname", "severity", "port", "group"};

using Keys = std::initializer_list<std::string_view>;

class Parser {
 public:
  explicit Parser(std::string file) : file_(std::move(file)) {}

  Config parse(const std::string& text) {
    YAML::Node root;
    try {
      root = YAML::Load(text);
    } catch (const YAML::ParserException& e) {
      throw ConfigError(file_, e.mark.line + 1, e.mark.column + 1, e.msg);
    }
    Config cfg;
    cfg.source = file_;
    if (root.IsNull()) {
      return cfg;  // an empty file is a valid config that probes nothing
    }
    const auto top = fields(root, "the top level",
                            {"web", "log", "defaults", "max_concurrent_probes", "targets", "ports",
                             "path_groups", "alerting"});
    if (auto it = top.find("web"); it != top.end()) {
      const auto web = fields(it->second, "web", {"listen_address"});
      if (auto la = web.find("listen_address"); la != web.end()) {
        cfg.listen_address = host_port(la->second, "web.listen_address", true);
      }
    }
    if (auto it = top.find("log"); it != top.end()) {
      const auto log = fields(it->second, "log", {"level", "format"});
      if (auto l = log.find("level"); l != log.end()) {
        cfg.log_level = one_of(l->second, "log.level",
                               {"trace", "debug", "info", "warn", "error", "critical", "off"});
      }
      if (auto f = log.find("format"); f != log.end()) {
        cfg.log_format =
            one_of(f->second, "log.format", {"text", "json"}) == "json" ? LogFormat::kJson
                                                                         : LogFormat::kText;
      }
    }
    if (auto it = top.find("defaults"); it != top.end()) {
      const auto def = fields(it->second, "defaults", {"interval", "timeout"});
      if (auto i = def.find("interval"); i != def.end()) {
        cfg.default_interval = positive_duration(i->second, "defaults.interval");
      }
      if (auto t = def.find("timeout"); t != def.end()) {
        cfg.default_timeout = positive_duration(t->second, "defaults.timeout");
      }
    }
    if (auto it = top.find("max_concurrent_probes"); it != top.end()) {
      cfg.max_concurrent_probes = integer(it->second, "max_concurrent_probes", 1, 1000000);
    }
    if (auto it = top.find("targets"); it != top.end()) {
      parse_targets(it->second, cfg);
    }
    if (auto it = top.find("ports"); it != top.end()) {
      parse_ports(it->second, cfg);
    }
    if (auto it = top.find("path_groups"); it != top.end()) {
      parse_path_groups(it->second, cfg);
    }
    if (auto it = top.find("alerting"); it != top.end()) {
      parse_alerting(it->second, cfg);
    }
    return cfg;
  }

 private:
  [[noreturn]] void fail(const YAML::Node& at, const std::string& message) const {
    const auto mark = at.Mark();
    throw ConfigError(file_, mark.line >= 0 ? mark.line + 1 : 0,
                      mark.column >= 0 ? mark.column + 1 : 0, message);
  }

  // The entries of a mapping, rejecting duplicate and unknown keys (typos must not pass).
  std::map<std::string, YAML::Node> fields(const YAML::Node& node, const std::string& what,
                                           Keys allowed) {
    if (!node.IsMap()) {
      fail(node, what + ": expected a mapping");
    }
    std::map<std::string, YAML::Node> out;
    for (auto it = node.begin(); it != node.end(); ++it) {
      if (!it->first.IsScalar()) {
        fail(it->first, what + ": keys must be plain strings");
      }
      const std::string key = it->first.Scalar();
      if (std::find(allowed.begin(), allowed.end(), key) == allowed.end()) {
        std::string msg = "unknown key \"" + key + "\" in " + what;
        std::string_view best;
        size_t best_distance = 3;
        for (auto candidate : allowed) {
          if (const size_t d = edit_distance(key, candidate); d < best_distance) {
            best_distance = d;
            best = candidate;
          }
        }
        if (!best.empty()) {
          msg += " (did you mean \"" + std::string(best) + "\"?)";
        } else {
          msg += " (expected one of:";
          for (auto candidate : allowed) {
            msg += " " + std::string(candidate);
          }
          msg += ")";
        }
        fail(it->first, msg);
      }
      if (!out.emplace(key, it->second).second) {
        fail(it->first, "duplicate key \"" + key + "\" in " + what);
      }
    }
    return out;
  }

  std::string scalar(const YAML::Node& node, const std::string& what) {
    if (!node.IsScalar()) {
      fail(node, what + ": expected a single value");
    }
    return node.Scalar();
  }

  std::string non_empty(const YAML::Node& node, const std::string& what) {
    std::string s = scalar(node, what);
    if (s.empty()) {
      fail(node, what + ": must not be empty");
    }
    return s;
  }

  std::string one_of(const YAML::Node& node, const std::string& what, Keys choices) {
    const std::string s = scalar(node, what);
    if (std::find(choices.begin(), choices.end(), s) == choices.end()) {
      std::string msg = what + ": expected one of";
      for (auto c : choices) {
        msg += " " + std::string(c);
      }
      fail(node, msg + ", got \"" + s + "\"");
    }
    return s;
  }

  bool boolean(const YAML::Node& node, const std::string& what) {
    const std::string s = scalar(node, what);
    if (s == "true") {
      return true;
    }
    if (s == "false") {
      return false;
    }
    fail(node, what + ": expected true or false, got \"" + s + "\"");
  }

  int64_t integer(const YAML::Node& node, const std::string& what, int64_t low, int64_t high) {
    const std::string s = scalar(node, what);
    int64_t v = 0;
    const auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec != std::errc{} || p != s.data() + s.size() || v < low || v > high) {
      fail(node, what + ": expected a whole number from " + std::to_string(low) + " to " +
                     std::to_string(high) + ", got \"" + s + "\"");
    }
    return v;
  }

  double number(const YAML::Node& node, const std::string& what, double low) {
    const std::string s = scalar(node, what);
    double v = 0;
    const auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec != std::errc{} || p != s.data() + s.size() || !(v >= low)) {
      fail(node, what + ": expected a number of at least " + std::to_string(low) + ", got \"" + s +
                     "\"");
    }
    return v;
  }

  Duration positive_duration(const YAML::Node& node, const std::string& what) {
    const std::string s = scalar(node, what);
    const auto d = parse_duration(s);
    if (!d) {
      fail(node, what + ": expected a duration like 500ms, 30s, 5m or 21d, got \"" + s + "\"");
    }
    if (d->count() <= 0) {
      fail(node, what + ": must be greater than 0");
    }
    return *d;
  }

  HostPort host_port(const YAML::Node& node, const std::string& what, bool allow_port_zero) {
    const std::string s = scalar(node, what);
    std::string error;
    auto hp = parse_host_port(s, &error, allow_port_zero);
    if (!hp) {
      fail(node, what + ": " + error);
    }
    return *hp;
  }

  const YAML::Node& sequence(const YAML::Node& node, const std::string& what) {
    if (!node.IsSequence()) {
      fail(node, what + ": expected a list");
    }
    return node;
  }

  void parse_targets(const YAML::Node& list, Config& cfg) {
    std::map<std::string, YAML::Mark> seen;
    for (const auto& item : sequence(list, "targets")) {
      const auto f = fields(item, "target",
                            {"name", "address", "expect", "server_name", "interval", "timeout",
                             "tls", "http", "labels"});
      Target t;
      auto required = [&](const char* key) -> const YAML::Node& {
        auto it = f.find(key);
        if (it == f.end()) {
          fail(item, std::string("target: missing required key \"") + key + "\"");
        }
        return it->second;
      };
      t.name = non_empty(required("name"), "target name");
      const std::string where = "target \"" + t.name + "\"";
      if (auto [it, fresh] = seen.emplace(t.name, f.at("name").Mark()); !fresh) {
        fail(f.at("name"), "duplicate target name \"" + t.name + "\" (first defined at line " +
                               std::to_string(it->second.line + 1) + ")");
      }
      t.address = host_port(required("address"), where + " address", false);
      const std::string expect =
          one_of(required("expect"), where + " expect", {"tcp", "tls", "http", "https"});
      t.expect = expect == "tcp"    ? Expect::kTcp
                 : expect == "tls"  ? Expect::kTls
                 : expect == "http" ? Expect::kHttp
                                    : Expect::kHttps;
      t.server_name = t.address.host;
      if (auto it = f.find("server_name"); it != f.end()) {
        t.server_name = non_empty(it->second, where + " server_name");
      }
      t.interval = cfg.default_interval;
      t.timeout = cfg.default_timeout;
      if (auto it = f.find("interval"); it != f.end()) {
        t.interval = positive_duration(it->second, where + " interval");
      }
      if (auto it = f.find("timeout"); it != f.end()) {
        t.timeout = positive_duration(it->second, where + " timeout");
      }
      if (t.timeout > t.interval) {
        fail(f.count("timeout") ? f.at("timeout") : item,
             where + ": timeout " + format_duration(t.timeout) + " is longer than interval " +
                 format_duration(t.interval));
      }
      if (auto it = f.find("tls"); it != f.end()) {
        parse_tls(it->second, where, t.tls);
      }
      if (auto it = f.find("http"); it != f.end()) {
        parse_http(it->second, where, t.http);
      }
      if (auto it = f.find("labels"); it != f.end()) {
        if (!it->second.IsMap()) {
          fail(it->second, where + " labels: expected a mapping of name: value");
        }
        for (auto l = it->second.begin(); l != it->second.end(); ++l) {
          const std::string name = scalar(l->first, where + " label name");
          if (!valid_label_name(name) || name.rfind("__", 0) == 0) {
            fail(l->first, where + ": \"" + name +
                               "\" is not a valid label name ([a-zA-Z_][a-zA-Z0-9_]*)");
          }
          if (kReservedLabels.count(name)) {
            fail(l->first, where + ": label \"" + name + "\" is reserved by portsentinel");
          }
          if (!t.labels.emplace(name, scalar(l->second, where + " label value")).second) {
            fail(l->first, where + ": duplicate label \"" + name + "\"");
          }
        }
      }
      cfg.targets.push_back(std::move(t));
    }
  }

  void parse_tls(const YAML::Node& node, const std::string& where, TlsOptions& tls) {
    const auto f = fields(node, where + " tls", {"ca_file", "min_version", "insecure_skip_verify"});
    if (auto it = f.find("ca_file"); it != f.end()) {
      tls.ca_file = non_empty(it->second, where + " tls.ca_file");
      if (access(tls.ca_file.c_str(), R_OK) != 0) {
        fail(it->second, where + " tls.ca_file: cannot read \"" + tls.ca_file +
                             "\": " + std::strerror(errno));
      }
    }
    if (auto it = f.find("min_version"); it != f.end()) {
      const std::string v =
          one_of(it->second, where + " tls.min_version", {"1.0", "1.1", "1.2", "1.3"});
      tls.min_version = v == "1.0"   ? TlsVersion::k1_0
                        : v == "1.1" ? TlsVersion::k1_1
                        : v == "1.2" ? TlsVersion::k1_2
                                     : TlsVersion::k1_3;
    }
    if (auto it = f.find("insecure_skip_verify"); it != f.end()) {
      tls.insecure_skip_verify = boolean(it->second, where + " tls.insecure_skip_verify");
    }
  }

  void parse_http(const YAML::Node& node, const std::string& where, HttpOptions& http) {
    const auto f = fields(node, where + " http", {"path", "expect_status", "redirect_to_https"});
    if (auto it = f.find("path"); it != f.end()) {
      http.path = non_empty(it->second, where + " http.path");
      if (http.path[0] != '/' ||
          http.path.find_first_of(" \r\n\t") != std::string::npos) {
        fail(it->second, where + " http.path: expected an absolute path without spaces, like /health");
      }
    }
    if (auto it = f.find("expect_status"); it != f.end()) {
      http.expect_status.clear();
      for (const auto& s : sequence(it->second, where + " http.expect_status")) {
        http.expect_status.push_back(status_range(s, where + " http.expect_status"));
      }
      if (http.expect_status.empty()) {
        fail(it->second, where + " http.expect_status: must list at least one code or range");
      }
    }
    if (auto it = f.find("redirect_to_https"); it != f.end()) {
      http.redirect_to_https = boolean(it->second, where + " http.redirect_to_https");
    }
  }

  StatusRange status_range(const YAML::Node& node, const std::string& what) {
    const std::string s = scalar(node, what);
    auto code = [&](std::string_view v) {
      int c = 0;
      const auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), c);
      if (ec != std::errc{} || p != v.data() + v.size() || c < 100 || c > 599) {
        fail(node, what + ": expected a status code 100-599 or a range like \"200-399\", got \"" +
                       s + "\"");
      }
      return c;
    };
    const auto dash = s.find('-');
    if (dash == std::string::npos) {
      const int c = code(s);
      return {c, c};
    }
    const StatusRange r{code(std::string_view(s).substr(0, dash)),
                        code(std::string_view(s).substr(dash + 1))};
    if (r.low > r.high) {
      fail(node, what + ": range \"" + s + "\" runs backwards");
    }
    return r;
  }

  void parse_ports(const YAML::Node& node, Config& cfg) {
    const auto f = fields(node, "ports", {"poll_interval", "watch"});
    if (auto it = f.find("poll_interval"); it != f.end()) {
      cfg.ports.poll_interval = positive_duration(it->second, "ports.poll_interval");
    }
    if (auto it = f.find("watch"); it != f.end()) {
      std::set<int64_t> seen;
      for (const auto& item : sequence(it->second, "ports.watch")) {
        const auto w = fields(item, "ports.watch entry", {"port", "expected_owners"});
        auto p = w.find("port");
        if (p == w.end()) {
          fail(item, "ports.watch entry: missing required key \"port\"");
        }
        PortWatch watch;
        watch.port = static_cast<uint16_t>(integer(p->second, "ports.watch port", 1, 65535));
        if (!seen.insert(watch.port).second) {
          fail(p->second, "ports.watch: port " + std::to_string(watch.port) + " is listed twice");
        }
        if (auto o = w.find("expected_owners"); o != w.end()) {
          for (const auto& rule : sequence(o->second, "expected_owners")) {
            const auto r = fields(rule, "expected_owners entry", {"exe", "unit", "comm", "user"});
            if (r.empty()) {
              fail(rule, "expected_owners entry: give at least one of exe, unit, comm, user");
            }
            OwnerRule owner;
            for (const auto& [key, value] : r) {
              const std::string v = non_empty(value, "expected_owners " + key);
              (key == "exe"    ? owner.exe
               : key == "unit" ? owner.unit
               : key == "comm" ? owner.comm
                               : owner.user) = v;
            }
            watch.expected_owners.push_back(std::move(owner));
          }
        }
        cfg.ports.watch.push_back(std::move(watch));
      }
    }
  }

  void parse_path_groups(const YAML::Node& node, Config& cfg) {
    std::set<std::string> names;
    for (const auto& item : sequence(node, "path_groups")) {
      const auto f = fields(item, "path group", {"name", "targets"});
      auto n = f.find("name");
      auto t = f.find("targets");
      if (n == f.end() || t == f.end()) {
        fail(item, "path group: needs both \"name\" and \"targets\"");
      }
      PathGroup group;
      group.name = non_empty(n->second, "path group name");
      if (!names.insert(group.name).second) {
        fail(n->second, "duplicate path group \"" + group.name + "\"");
      }
      for (const auto& member : sequence(t->second, "path group targets")) {
        const std::string name = non_empty(member, "path group target");
        const bool known = std::any_of(cfg.targets.begin(), cfg.targets.end(),
                                       [&](const Target& target) { return target.name == name; });
        if (!known) {
          fail(member, "path group \"" + group.name + "\": no target named \"" + name + "\"");
        }
        group.targets.push_back(name);
      }
      if (group.targets.size() < 2) {
        fail(t->second, "path group \"" + group.name + "\": needs at least two targets to compare");
      }
      cfg.path_groups.push_back(std::move(group));
    }
  }

  void parse_alerting(const YAML::Node& node, Config& cfg) {
    const auto f = fields(node, "alerting",
                          {"alertmanager_urls", "cert_expiry_warning", "resend_interval",
                           "failures_before_alert", "handshake_regression_factor"});
    auto& a = cfg.alerting;
    if (auto it = f.find("alertmanager_urls"); it != f.end()) {
      for (const auto& url : sequence(it->second, "alerting.alertmanager_urls")) {
        const std::string u = non_empty(url, "alertmanager url");
        if (u.rfind("http://", 0) != 0 || u.size() <= 7) {
          fail(url, "alerting.alertmanager_urls: expected http://host:port (https is not "
                    "supported), got \"" + u + "\"");
        }
        a.alertmanager_urls.push_back(u);
      }
    }
    if (auto it = f.find("cert_expiry_warning"); it != f.end()) {
      a.cert_expiry_warning = positive_duration(it->second, "alerting.cert_expiry_warning");
    }
    if (auto it = f.find("resend_interval"); it != f.end()) {
      a.resend_interval = positive_duration(it->second, "alerting.resend_interval");
    }
    if (auto it = f.find("failures_before_alert"); it != f.end()) {
      a.failures_before_alert =
          static_cast<int>(integer(it->second, "alerting.failures_before_alert", 1, 1000));
    }
    if (auto it = f.find("handshake_regression_factor"); it != f.end()) {
      a.handshake_regression_factor =
          number(it->second, "alerting.handshake_regression_factor", 1.0);
    }
  }

  std::string file_;
};

}  // namespace

Config parse_config(const std::string& text, const std::string& file) {
  return Parser(file).parse(text);
}

Config load_config(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    throw ConfigError(path, 0, 0, std::string("cannot read config file: ") + std::strerror(errno));
  }
  std::ostringstream text;
  text << in.rdbuf();
  return parse_config(text.str(), path);
}

}  // namespace portsentinel::config
