#include "daemon/diagnose.h"

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <unistd.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <cstdio>
#include <ctime>
#include <iostream>
#include <set>

#include "config/config.h"
#include "daemon/logging.h"
#include "daemon/nginx_audit.h"
#include "probes/listeners.h"
#include "probes/owners.h"
#include "probes/probe.h"
#include "probes/tls_context.h"

namespace portsentinel::daemon {
namespace {

namespace asio = boost::asio;
using probes::Reason;

// One line of the report.
struct Check {
  std::string name;
  std::string address;  // the address checked, when the check is per address
  Reason reason = Reason::kOk;
  std::string detail;
  bool problem = false;  // counts for the exit code; info lines (e.g. no port 80) do not
  uint16_t port = 0;     // the port its remedy names; 0: the port diagnosed
};

struct Options {
  std::string input;
  config::HostPort target;
  std::string server_name;
  std::chrono::milliseconds timeout{5000};
  std::string ca_file;
  uint16_t http_port = 80;
  std::string nginx_config;
  std::string apache_config;
  bool json = false;
};

int usage(const std::string& message) {
  std::cerr << "portsentinel diagnose: " << message
            << "\nusage: portsentinel diagnose HOST[:PORT] [--json] [--timeout DUR] "
               "[--ca-file FILE] [--server-name NAME] [--http-port PORT] "
               "[--nginx-config FILE] [--apache-config FILE]\n";
  return 2;
}

// Progress for a person waiting at a terminal: on stderr, overwritten in place.
void progress(const Options& o, const std::string& what) {
  if (!o.json && isatty(STDERR_FILENO)) {
    std::fprintf(stderr, "\r\033[K… %s", what.c_str());
    std::fflush(stderr);
  }
}

void end_progress(const Options& o) {
  if (!o.json && isatty(STDERR_FILENO)) {
    std::fprintf(stderr, "\r\033[K");
  }
}

template <typename T>
T run_on(asio::io_context& io, asio::awaitable<T> op) {
  T out{};
  asio::co_spawn(io, std::move(op), [&](std::exception_ptr e, T r) {
    if (!e) {
      out = std::move(r);
    }
  });
  io.restart();
  io.run();
  return out;
}

bool is_local_address(const std::string& address) {
  const auto a = asio::ip::make_address(address);
  if (a.is_loopback()) {
    return true;
  }
  ifaddrs* list = nullptr;
  if (getifaddrs(&list) != 0) {
    return false;
  }
  bool local = false;
  for (ifaddrs* i = list; i != nullptr && !local; i = i->ifa_next) {
    if (i->ifa_addr == nullptr) {
      continue;
    }
    char text[INET6_ADDRSTRLEN] = {};
    if (i->ifa_addr->sa_family == AF_INET) {
      inet_ntop(AF_INET, &reinterpret_cast<sockaddr_in*>(i->ifa_addr)->sin_addr, text, sizeof text);
    } else if (i->ifa_addr->sa_family == AF_INET6) {
      inet_ntop(AF_INET6, &reinterpret_cast<sockaddr_in6*>(i->ifa_addr)->sin6_addr, text,
                sizeof text);
    }
    local = address == text;
  }
  freeifaddrs(list);
  return local;
}

// The per-address checks an HTTPS probe answers, in the order a person checks them.
void add_probe_checks(const probes::ProbeResult& r, const std::string& address,
                      std::vector<Check>& out) {
  auto stage = [](Reason reason) {
    switch (reason) {
      case Reason::kConnectionRefused:
      case Reason::kConnectTimeout:
      case Reason::kHostUnreachable:
      case Reason::kProbeError:
        return 0;
      case Reason::kCertExpired:
      case Reason::kCertNotYetValid:
      case Reason::kCertHostnameMismatch:
      case Reason::kCertUntrusted:
        return 2;
      case Reason::kHttpStatus:
      case Reason::kHttpNoResponse:
        return 3;
      default:
        return 1;
    }
  };
  const int failed_at = r.ok() ? 4 : stage(r.reason);
  const char* names[] = {"tcp_connect", "tls_handshake", "certificate", "http"};
  for (int i = 0; i < 4; ++i) {
    Check c{names[i], address, Reason::kOk, "", false};
    if (i == failed_at) {
      c.reason = r.reason;
      c.detail = r.detail;
      c.problem = true;
      out.push_back(std::move(c));
      return;
    }
    char ms[32];
    if (i == 0) {
      std::snprintf(ms, sizeof ms, "%.1f ms", r.phases.connect * 1000);
      c.detail = "connected in " + std::string(ms);
    } else if (i == 1 && r.tls) {
      std::snprintf(ms, sizeof ms, "%.1f ms", r.phases.tls * 1000);
      c.detail = r.tls->version + ", " + r.tls->cipher + ", " + ms;
    } else if (i == 2 && r.tls && r.tls->leaf) {
      const auto& leaf = *r.tls->leaf;
      c.detail = leaf.subject + ", issued by " + leaf.issuer + ", " +
                 std::to_string((leaf.not_after - std::time(nullptr)) / 86400) +
                 " days left, sha256 " + leaf.fingerprint_sha256.substr(0, 16) + "…";
    } else if (i == 3 && r.http) {
      c.detail = r.http->status_line;
    }
    out.push_back(std::move(c));
  }
}

std::string owners_text(uint16_t port, std::string* bound, bool* only_loopback, bool* any) {
  probes::ListenerLister lister;
  probes::OwnerFinder finder;
  std::set<uint16_t> ports{port};
  const auto listeners = lister.list(&ports);
  *any = !listeners.empty();
  *only_loopback = *any;
  std::set<uint64_t> inodes;
  for (const auto& l : listeners) {
    inodes.insert(l.inode);
    const auto a = asio::ip::make_address(l.address);
    *only_loopback = *only_loopback && a.is_loopback();
    *bound += (bound->empty() ? "" : ", ") + l.address;
  }
  const auto owners = finder.find(inodes);
  std::set<std::string> described;
  for (const auto& [inode, processes] : owners) {
    for (const auto& p : processes) {
      described.insert(p.comm + " (pid " + std::to_string(p.pid) + ", " + p.exe + ", user " +
                       p.user + (p.unit.empty() ? "" : ", unit " + p.unit) + ")");
    }
  }
  std::string text;
  for (const auto& d : described) {
    text += (text.empty() ? "" : "; ") + d;
  }
  return text.empty() ? "owner unknown (run as root to see it)" : text;
}

std::vector<Check> run_checks(const Options& o) {
  std::vector<Check> checks;
  asio::io_context io(1);
  probes::Resolver resolver(2);
  probes::TlsContextCache contexts;
  config::TlsOptions tls;
  tls.ca_file = o.ca_file;
  const auto context = contexts.get(tls);

  // 1. DNS: every address, each probed.
  progress(o, "resolving " + o.target.host);
  auto [dns_ec, endpoints] = run_on(io, resolver.resolve(o.target.host, o.target.port));
  if (dns_ec) {
    checks.push_back({"dns", "", Reason::kDnsError,
                      "cannot resolve \"" + o.target.host + "\": " + dns_ec.message(), true});
  } else {
    std::string list;
    for (const auto& e : endpoints) {
      list += (list.empty() ? "" : ", ") + e.address().to_string();
    }
    checks.push_back({"dns", "", Reason::kOk,
                      config::is_ip_literal(o.target.host) ? o.target.host + " (an address)"
                                                           : o.target.host + " → " + list,
                      false});
  }

  // 2. TCP, TLS, certificate, HTTP on every address.
  std::vector<std::pair<std::string, probes::ProbeResult>> per_address;
  for (const auto& e : endpoints) {
    const std::string address = e.address().to_string();
    const std::string where = config::format_host_port({address, o.target.port});
    progress(o, "probing " + where);
    probes::ProbeSpec spec;
    spec.address = {address, o.target.port};
    spec.expect = config::Expect::kHttps;
    spec.server_name = o.server_name;
    spec.timeout = o.timeout;
    spec.tls_context = context;
    // Any answer below 500 means HTTP works through TLS (a 404 or 401 on / is normal for an
    // API) and is shown; a 5xx means the application or the proxy's backend behind it fails.
    spec.http.expect_status = {{100, 499}};
    auto r = run_on(io, probes::run_probe(spec, resolver));
    add_probe_checks(r, where, checks);
    per_address.emplace_back(where, std::move(r));
  }

  // 3. Do the addresses agree? One that fails or serves another certificate is a load
  //    balancer member or DNS record pointing at a stale host.
  if (per_address.size() > 1) {
    const auto disagreement = addresses_disagree(per_address);
    checks.push_back({"addresses_agree", "", disagreement ? Reason::kPathMismatch : Reason::kOk,
                      disagreement ? "the addresses disagree: " + *disagreement
                                   : "all " + std::to_string(per_address.size()) +
                                         " addresses answer alike",
                      disagreement.has_value()});
  }

  // 4. The plain HTTP port on the same host: answered? redirected to https?
  if (!endpoints.empty() && o.http_port != o.target.port) {
    const std::string address = endpoints.front().address().to_string();
    const std::string where = config::format_host_port({address, o.http_port});
    progress(o, "checking http://" + where);
    probes::ProbeSpec spec;
    spec.address = {address, o.http_port};
    spec.expect = config::Expect::kHttp;
    spec.server_name = o.server_name;
    spec.timeout = o.timeout;
    spec.tls_context = context;
    spec.http.redirect_to_https = true;
    const auto r = run_on(io, probes::run_probe(spec, resolver));
    Check c{"http_redirect", where, r.reason, r.detail, !r.ok(), o.http_port};
    if (r.ok() && r.http) {
      c.detail = r.http->status_line + " → " + r.http->location;
    } else if (r.reason == Reason::kConnectionRefused) {
      // Fine for an HTTPS-only service; worth knowing for users who type http://.
      c.problem = false;
      c.detail = "nothing answers on port " + std::to_string(o.http_port) +
                 ": http:// URLs fail (fine for an HTTPS-only service)";
    }
    checks.push_back(std::move(c));
  }

  // 5. On this host: who owns the port, and does it listen beyond loopback?
  bool local = false;
  bool public_address = false;
  for (const auto& e : endpoints) {
    const std::string a = e.address().to_string();
    local = local || is_local_address(a);
    public_address = public_address || !e.address().is_loopback();
  }
  if (local) {
    progress(o, "looking up the local owner of port " + std::to_string(o.target.port));
    std::string bound;
    bool only_loopback = false;
    bool any = false;
    try {
      const std::string owners = owners_text(o.target.port, &bound, &only_loopback, &any);
      if (!any) {
        checks.push_back({"local_listener", "", Reason::kConnectionRefused,
                          "nothing listens on port " + std::to_string(o.target.port) +
                              " on this host",
                          true});
      } else if (only_loopback && public_address) {
        checks.push_back({"local_listener", "", Reason::kConnectionRefused,
                          "port " + std::to_string(o.target.port) + " listens only on " + bound +
                              ": other hosts are refused (" + owners + ")",
                          true});
      } else {
        checks.push_back({"local_listener", "", Reason::kOk,
                          "listening on " + bound + ": " + owners, false});
      }
    } catch (const std::exception& e) {
      checks.push_back({"local_listener", "", Reason::kProbeError, e.what(), false});
    }
  }

  // 6. The server's configuration, when we can read it.
  std::vector<AuditFinding> findings;
  std::string audited;
  // The port asked about must speak TLS too (it is diagnosed as HTTPS).
  const std::set<int> tls_ports{443, 8443, o.target.port};
  if (!o.nginx_config.empty()) {
    progress(o, "auditing " + o.nginx_config);
    findings = audit_nginx_file(o.nginx_config, tls_ports);
    audited = o.nginx_config;
  } else if (geteuid() == 0 && access("/usr/sbin/nginx", X_OK) == 0) {
    progress(o, "auditing nginx -T");
    if (FILE* p = popen("/usr/sbin/nginx -T 2>/dev/null", "r")) {
      std::string dump;
      char buf[4096];
      size_t n;
      while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) {
        dump.append(buf, n);
      }
      if (pclose(p) == 0) {
        findings = audit_nginx_dump(dump, tls_ports);
        audited = "nginx -T";
      }
    }
  }
  auto report = [&](const std::string& name, const std::vector<AuditFinding>& found,
                    const std::string& source) {
    for (const auto& f : found) {
      checks.push_back({name, f.file + ":" + std::to_string(f.line), f.reason,
                        f.file + ":" + std::to_string(f.line) + ": " + f.detail, true,
                        static_cast<uint16_t>(f.port)});
    }
    if (!source.empty() && found.empty()) {
      checks.push_back({name, "", Reason::kOk, source + ": no port or TLS mistakes found", false});
    }
  };
  report("nginx_config", findings, audited);
  // Apache where present: the given file, or as root the Debian layout's main file.
  std::string apache = o.apache_config;
  if (apache.empty() && geteuid() == 0 && access("/etc/apache2/apache2.conf", R_OK) == 0) {
    apache = "/etc/apache2/apache2.conf";
  }
  if (!apache.empty()) {
    progress(o, "auditing " + apache);
    report("apache_config", audit_apache_file(apache, tls_ports), apache);
  }
  end_progress(o);
  return checks;
}

}  // namespace

std::optional<std::string> addresses_disagree(
    const std::vector<std::pair<std::string, probes::ProbeResult>>& per_address) {
  std::set<std::string> outcomes;
  std::string detail;
  for (const auto& [where, r] : per_address) {
    const std::string fp = r.tls && r.tls->leaf ? r.tls->leaf->fingerprint_sha256 : "";
    outcomes.insert(std::string(probes::reason_name(r.reason)) + "/" + fp);
    detail += (detail.empty() ? "" : "; ") + where + ": " +
              std::string(probes::reason_name(r.reason)) +
              (fp.empty() ? "" : " sha256 " + fp.substr(0, 16) + "…");
  }
  if (outcomes.size() <= 1) {
    return std::nullopt;
  }
  return detail;
}

int run_diagnose(const std::vector<std::string>& args) {
  Options o;
  std::string server_name;
  for (size_t i = 1; i < args.size(); ++i) {
    const std::string& a = args[i];
    auto value = [&]() -> std::optional<std::string> {
      if (i + 1 >= args.size()) {
        return std::nullopt;
      }
      return args[++i];
    };
    if (a == "--json") {
      o.json = true;
    } else if (a == "--timeout") {
      auto v = value();
      auto d = v ? config::parse_duration(*v) : std::nullopt;
      if (!d || d->count() <= 0) {
        return usage("--timeout needs a duration like 5s");
      }
      o.timeout = *d;
    } else if (a == "--ca-file" || a == "--server-name" || a == "--nginx-config" ||
               a == "--apache-config") {
      auto v = value();
      if (!v || v->empty()) {
        return usage(a + " needs a value");
      }
      (a == "--ca-file"         ? o.ca_file
       : a == "--server-name"   ? server_name
       : a == "--nginx-config"  ? o.nginx_config
                                : o.apache_config) = *v;
    } else if (a == "--http-port") {
      auto v = value();
      std::string error;
      auto hp = v ? config::parse_host_port("x:" + *v, &error) : std::nullopt;
      if (!hp) {
        return usage("--http-port needs a port 1-65535");
      }
      o.http_port = hp->port;
    } else if (!a.empty() && a[0] == '-') {
      return usage("unknown option \"" + a + "\"");
    } else if (o.input.empty()) {
      o.input = a;
    } else {
      return usage("only one HOST[:PORT] is diagnosed at a time");
    }
  }
  if (o.input.empty()) {
    return usage("missing HOST[:PORT]");
  }
  if (!o.ca_file.empty() && access(o.ca_file.c_str(), R_OK) != 0) {
    return usage("cannot read --ca-file " + o.ca_file);
  }
  // HOST, HOST:PORT, [v6]:PORT or a bare IPv6 address; 443 by default.
  const std::string& in = o.input;
  const size_t colons = static_cast<size_t>(std::count(in.begin(), in.end(), ':'));
  std::string with_port = in;
  if (in.front() != '[' && colons == 0) {
    with_port = in + ":443";
  } else if (in.front() != '[' && colons > 1) {
    with_port = "[" + in + "]:443";
  } else if (in.front() == '[' && in.back() == ']') {
    with_port = in + ":443";
  }
  std::string error;
  auto hp = config::parse_host_port(with_port, &error);
  if (!hp) {
    return usage(error);
  }
  o.target = *hp;
  o.server_name = server_name.empty() ? hp->host : server_name;

  std::vector<Check> checks;
  try {
    checks = run_checks(o);
  } catch (const std::exception& e) {
    return usage(e.what());
  }
  const bool healthy =
      std::none_of(checks.begin(), checks.end(), [](const Check& c) { return c.problem; });
  const auto remedy = [&](const Check& c) {
    return c.reason == Reason::kOk ? std::string()
                                   : probes::reason_remedy_for(c.reason, o.target.host,
                                                               c.port != 0 ? c.port : o.target.port,
                                                               o.server_name);
  };
  if (o.json) {
    std::string out = "{\"input\":" + json_quote(o.input) +
                      ",\"host\":" + json_quote(o.target.host) +
                      ",\"port\":" + std::to_string(o.target.port) +
                      ",\"server_name\":" + json_quote(o.server_name) +
                      ",\"ok\":" + (healthy ? "true" : "false") + ",\"checks\":[";
    for (size_t i = 0; i < checks.size(); ++i) {
      const auto& c = checks[i];
      out += (i ? "," : "") + std::string("{\"name\":") + json_quote(c.name) +
             ",\"address\":" + json_quote(c.address) +
             ",\"reason\":" + json_quote(probes::reason_name(c.reason)) +
             ",\"problem\":" + (c.problem ? "true" : "false") +
             ",\"detail\":" + json_quote(c.detail) + ",\"remedy\":" + json_quote(remedy(c)) + "}";
    }
    std::cout << out << "]}\n";
    return healthy ? 0 : 1;
  }
  const bool color = isatty(STDOUT_FILENO) != 0;
  auto paint = [&](const char* code, const std::string& text) {
    return color ? std::string("\033[") + code + "m" + text + "\033[0m" : text;
  };
  std::cout << "portsentinel diagnose " << config::format_host_port(o.target) << " (server name "
            << o.server_name << ")\n";
  for (const auto& c : checks) {
    const std::string mark = c.problem                  ? paint("31", "✘")
                             : c.reason != Reason::kOk ? paint("33", "•")
                                                       : paint("32", "✔");
    std::string line = "  " + mark + " " + c.name;
    line.resize(std::max<size_t>(line.size(), color ? 31 : 22), ' ');
    if (!c.address.empty() && c.name != "nginx_config") {
      line += " " + c.address;
    }
    if (c.reason != Reason::kOk) {
      line += " " + paint("1", std::string(probes::reason_name(c.reason))) + ":";
    }
    std::cout << line << " " << c.detail << "\n";
    if (c.problem) {
      std::cout << "      fix: " << remedy(c) << "\n";
    }
  }
  std::cout << (healthy ? paint("32", "No problem found.") : paint("31", "Problems found."))
            << "\n";
  return healthy ? 0 : 1;
}

}  // namespace portsentinel::daemon
